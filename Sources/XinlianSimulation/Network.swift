import XinlianConsensus
import XinlianCore
import XinlianCrypto

/// The simulated network, the fault injector, and how a node's effects are carried out.
extension World {
    /// Sends one message; while faults are active it may be partitioned away, dropped, delayed or duplicated.
    mutating func send(_ message: WireMessage, from: Int, to: Int) {
        let faults = configuration.faults
        guard healed || !isPartitioned(from, to) else { return }
        guard healed || !random.chance(perMille: faults.dropPerMille) else { return }
        let maximum = healed ? faults.healedDelayMaxMs : faults.delayMaxMs
        let delays = faults.delayMinMs...max(faults.delayMinMs, maximum)
        queue.push(.deliver(from: from, to: to, message), at: nowMs + random.inRange(delays))
        if !healed, random.chance(perMille: faults.duplicatePerMille) {
            queue.push(.deliver(from: from, to: to, message), at: nowMs + random.inRange(delays))
        }
    }

    mutating func broadcast(_ message: WireMessage, from: Int) {
        for peer in nodes.indices where peer != from { send(message, from: from, to: peer) }
    }

    func isPartitioned(_ a: Int, _ b: Int) -> Bool {
        guard let partition else { return false }
        return partition[a] != partition[b]
    }

    func index(of id: ValidatorID) -> Int? { nodes.firstIndex { $0.id == id } }

    /// One fault injection: start or heal a partition, crash an honest node for a while, or make an honest node's
    /// next journal write fail.
    mutating func chaos() {
        guard !healed else { return }
        let faults = configuration.faults
        switch random.below(5) {
        case 0 where faults.partitions && partition == nil:
            let sides = nodes.indices.map { _ in Int(random.below(2)) }
            partition = sides
            record("partition \(sides)")
            queue.push(.healPartition, at: nowMs + random.inRange(Self.downtimeMs))
        case 1 where faults.crashes:
            crashSomeone()
        case 2 where faults.journalFailures:
            let running = honest.filter { nodes[$0].isUp }
            guard !running.isEmpty else { break }
            let victim = running[Int(random.below(UInt64(running.count)))]
            record("n\(victim) next journal write fails")
            nodes[victim].journal.failNextAppend = true
        case 3 where faults.crashes:
            // A crash inside the signer: the guard recorded its position, the journal does not know the signature.
            let running = honest.filter { nodes[$0].isUp }
            let down = honest.count - running.count
            guard down < max(1, (nodes.count - 1) / 3), !running.isEmpty else { break }
            let victim = running[Int(random.below(UInt64(running.count)))]
            record("n\(victim) will crash inside its next signature")
            nodes[victim].signer.crashInsideNextSign = true
        default:
            break
        }
        queue.push(.chaos, at: nowMs + random.inRange(Self.chaosIntervalMs))
    }

    /// Crashes a random running honest node, keeping at most f (by count) honest nodes down at once.
    mutating func crashSomeone() {
        let running = honest.filter { nodes[$0].isUp }
        let down = honest.count - running.count
        guard down < max(1, (nodes.count - 1) / 3), !running.isEmpty else { return }
        let victim = running[Int(random.below(UInt64(running.count)))]
        crash(victim)
        queue.push(.restart(node: victim), at: nowMs + random.inRange(Self.downtimeMs))
    }

    /// The process dies: the replica and the mempool are gone; of the journal's unsynced records a random prefix
    /// reached the disk (a torn write); peers see the connection drop.
    mutating func crash(_ index: Int) {
        let journal = nodes[index].journal
        let kept = Int(random.below(UInt64(journal.unsyncedCount) + 1))
        record("n\(index) crash (chain \(nodes[index].ledger.height), journal \(journal.records.count) with \(journal.unsyncedCount) unsynced, \(kept) kept; signed \(nodes[index].signer.position))")
        journal.crash(keptUnsynced: kept)
        nodes[index].signer.crashInsideNextSign = false
        nodes[index].ledger.crash()
        nodes[index].replica = nil
        nodes[index].incarnation += 1
        let id = nodes[index].id
        for peer in nodes.indices where peer != index { step(peer) { $0.disconnected(id) } }
    }

    /// Hands a message to a running node: first what the node's event pump checks (signatures, the gate's rules),
    /// then its replica.
    mutating func deliver(_ message: WireMessage, from: Int, to: Int) {
        guard nodes[to].isUp else { return }
        if case .consensus(let consensus) = message { record("n\(to) <- n\(from) \(describe(consensus))") }
        if case .syncResponse(let height, let blocks) = message { record("n\(to) <- n\(from) sync \(blocks.count) block(s) from \(height)") }
        if let reason = frameRefusal(message, to: to) {
            let culprit = if case .consensus(let consensus) = message { PeerGate.Slot(consensus).signer } else { nodes[from].id }
            refuse(at: to, from: culprit, reason)
            return disconnect(to, from)
        }
        let sender = nodes[from].id
        step(to) { _ = $0.receive(message, from: sender) }
    }

    /// The node's event pump (``PeerGate/Rules/frameRefusal(_:consortium:verifier:)``), with transaction signatures
    /// checked once per run.
    func frameRefusal(_ message: WireMessage, to index: Int) -> String? {
        guard case .transactions(let transactions) = message else {
            return rules.frameRefusal(message, consortium: setup.consortium, verifier: verifier)
        }
        let verified = nodes[index].ledger.verified
        for (position, transaction) in transactions.enumerated() {
            do { try verified.check(transaction, consortium: setup.consortium) } catch {
                return "gossiped transaction \(position) refused: \(error)"
            }
        }
        return nil
    }

    /// Carries out a node's effects: sends through its shell (which a hostile validator's rewrites), timers on
    /// the event queue, disconnections, and notes into the trace and the invariants.
    mutating func perform(_ effects: [ReplicaEffect], node index: Int) {
        for effect in effects {
            switch effect {
            case .send(let message, let peer):
                guard let to = self.index(of: peer) else { continue }
                output(message, to: to, from: index)
            case .broadcast(let message):
                output(message, to: nil, from: index)
            case .disconnect(let peer, _):
                guard let other = self.index(of: peer) else { continue }
                disconnect(index, other)
            case .schedule(let timer, let ms):
                queue.push(.timer(node: index, incarnation: nodes[index].incarnation, timer), at: nowMs + ms)
            case .note(let note):
                observe(note, at: index)
            }
        }
    }

    mutating func observe(_ note: ReplicaNote, at index: Int) {
        switch note {
        case .signed(let message):
            record("n\(index) signs \(describe(message))")
        case .signRefused(let request, _):
            record("n\(index) guard refused h\(request.height) r\(request.round) \(request.step)")
        case .committed(let block, let peer):
            committed(block, at: index, via: peer.map { "sync from \($0)" } ?? "consensus")
        case .evidence(let equivocation):
            noteEvidence(equivocation, reporter: index)
        case .refused(let culprit, let reason):
            refuse(at: index, from: culprit, reason)
        case .proposalRefused(let proposer, let height, let reason):
            refuse(at: index, from: proposer, "proposed block at height \(height): \(reason)")
        case .stale(let signer, let height):
            refuse(at: index, from: signer, "height \(height) is decided")
        case .replayed(let height, let entries, let round, _):
            record("n\(index) replayed \(entries) journal record(s) of height \(height), round \(round)")
        case .halted(let reason):
            record("n\(index) halts: \(reason)")
        case .personalDataReceived(let peer, let kept) where kept > 0:
            if nodes[index].isHonest { personalDataRepaired += kept }
            record("n\(index) kept personal data of \(kept) transaction(s) from \(peer)")
        case .journalBudgetSpent, .journalWriteFailed, .synced, .syncRequested, .syncUnanswered, .syncFailedHere,
             .stalled, .personalDataRequested, .personalDataReceived, .personalDataUnanswered:
            break
        }
    }

    /// Counts a refusal at an honest node of something a Byzantine validator signed or sent.
    mutating func refuse(at index: Int, from culprit: ValidatorID, _ reason: String) {
        guard nodes[index].isHonest else { return }
        record("n\(index) refuses: \(reason)")
        if nodes.contains(where: { $0.id == culprit && !$0.isHonest }) { refusedByHonest += 1 }
    }

    func describe(_ message: ConsensusMessage) -> String {
        switch message {
        case .proposal(let signed, let block):
            let proposal = signed.proposal
            let pol = proposal.polRound.map { " pol \($0)" } ?? ""
            return "proposal h\(proposal.height) r\(proposal.round) \(short(proposal.blockHash))\(pol) by \(proposal.proposer) (\(block.transactions.count) tx)"
        case .vote(let signed):
            let vote = signed.vote
            return "\(vote.kind) h\(vote.height) r\(vote.round) \(vote.blockHash.map(short) ?? "nil") by \(vote.validator)"
        }
    }

    func describe(_ message: SignedMessage) -> String {
        switch message {
        case .proposal(let signed):
            "proposal h\(signed.proposal.height) r\(signed.proposal.round) \(short(signed.proposal.blockHash))"
        case .vote(let signed): describe(ConsensusMessage.vote(signed))
        }
    }

    func short(_ hash: Hash32) -> String { String(hash.hex.prefix(8)) }

    /// The transport's periodic status frame to one random peer (a `lyingSync` validator inflates it), and what
    /// hostile validators add on their own timers.
    mutating func tick(_ index: Int) {
        guard nodes.count > 1 else { return }
        var peer = Int(random.below(UInt64(nodes.count - 1)))
        if peer >= index { peer += 1 }
        let ledger = nodes[index].ledger
        var height = ledger.height
        if nodes[index].behaviour == .lyingSync {
            hostileSent += 1
            height += Self.inflatedHeights
        }
        send(.status(PeerStatus(height: height, lastBlockHash: ledger.lastBlockHash)), from: index, to: peer)
        hostileTick(index, peer: peer)
    }

    // MARK: Invariants

    /// Agreement and validity, for every block an honest node commits (by consensus or sync).
    mutating func committed(_ record: CommittedBlock, at index: Int, via source: String) {
        let height = record.block.header.height
        let blockHash = record.block.header.hash(setup.suite)
        self.record("n\(index) commits h\(height) \(short(blockHash)) via \(source)")
        guard nodes[index].isHonest else { return }
        // Notes are read after the replica's call returns: a sync reply may have committed several blocks by then.
        let chain = nodes[index].ledger.chain
        guard height >= 1, UInt64(chain.count) >= height, chain[Int(height - 1)] == record else {
            return fail("validity", "n\(index) reported committing height \(height), which its chain does not hold")
        }
        let previousHash = height >= 2 ? chain[Int(height - 2)].block.header.hash(setup.suite) : setup.consortium.genesisHash
        if !verifiedRecords.contains(record) {
            do {
                try BlockVerifier.checkStructure(record, height: height, previousHash: previousHash,
                                                 consortium: setup.consortium)
            } catch {
                return fail("validity", "n\(index) committed an invalid block at height \(height): \(error)")
            }
            verifiedRecords.insert(record)
        }
        if let agreed = committedHashes[height], agreed != blockHash {
            return fail("agreement", "n\(index) committed \(short(blockHash)) at height \(height), others \(short(agreed))")
        }
        committedHashes[height] = blockHash
    }

    mutating func noteEvidence(_ equivocation: Equivocation, reporter: Int) {
        let accused = equivocation.validator
        record("n\(reporter) evidence against \(accused)")
        if evidence.count < Self.evidenceKeptLimit { evidence.append(equivocation) }
        guard let culprit = nodes.first(where: { $0.id == accused }), !culprit.isHonest else {
            return fail("false_evidence", "n\(reporter) reported honest validator \(accused) for equivocation")
        }
    }
}
