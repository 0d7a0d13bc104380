import XinlianConsensus
import XinlianCore
import XinlianCrypto

/// The simulated network and the fault injector.
extension World {
    /// Sends one message; while faults are active it may be partitioned away, dropped, delayed or duplicated.
    mutating func send(_ message: NetworkMessage, from: Int, to: Int) {
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

    mutating func broadcast(_ message: NetworkMessage, from: Int) {
        for peer in nodes.indices where peer != from { send(message, from: from, to: peer) }
    }

    func isPartitioned(_ a: Int, _ b: Int) -> Bool {
        guard let partition else { return false }
        return partition[a] != partition[b]
    }

    /// One fault injection: start or heal a partition, or crash an honest node for a while.
    mutating func chaos() {
        guard !healed else { return }
        let faults = configuration.faults
        switch random.below(3) {
        case 0 where faults.partitions && partition == nil:
            let sides = nodes.indices.map { _ in Int(random.below(2)) }
            partition = sides
            record("partition \(sides)")
            queue.push(.healPartition, at: nowMs + random.inRange(Self.downtimeMs))
        case 1 where faults.crashes:
            crashSomeone()
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
        nodes[victim].core = nil
        nodes[victim].gate = nil
        nodes[victim].incarnation += 1
        record("n\(victim) crash (chain \(nodes[victim].chain.count), signed \(describe(nodes[victim].lastSigned)))")
        queue.push(.restart(node: victim), at: nowMs + random.inRange(Self.downtimeMs))
    }

    func describe(_ position: SignedPosition?) -> String {
        guard let position else { return "nothing" }
        return "h\(position.height) r\(position.round) \(position.step)"
    }

    /// Hands a message to a running node.
    mutating func deliver(_ message: NetworkMessage, from: Int, to: Int) {
        guard nodes[to].isUp else { return }
        switch message {
        case .consensus(let consensus):
            record("n\(to) <- n\(from) \(describe(consensus))")
            if consensus.height >= UInt64(nodes[to].chain.count + 2) { requestSync(to, from: from) }
            guard admit(consensus, at: to) else { return }
            drive(to, ConsensusEvent(consensus))
            nodes[to].gate?.take(consensus)
        case .status(let height):
            if height > UInt64(nodes[to].chain.count) { requestSync(to, from: from) }
        case .syncRequest(let fromHeight):
            answerSync(to, peer: from, fromHeight: fromHeight)
        case .syncResponse(let records):
            record("n\(to) <- n\(from) sync \(records.count) block(s)")
            applySync(to, records, from: from)
        }
    }

    /// The node's own gate (``PeerGate``): usable heights only, proposals on schedule and within genesis's limits,
    /// and room in the message's slot. Refusals at honest nodes are counted.
    mutating func admit(_ message: ConsensusMessage, at index: Int) -> Bool {
        let next = UInt64(nodes[index].chain.count + 1)
        let signer = PeerGate.Slot(message).signer
        guard let gate = nodes[index].gate, let core = nodes[index].core else { return false }
        guard PeerGate.isUsable(message, next: next, core: core) else {
            // Stale heights are refused; a round the core does not keep yet is simply not taken now.
            if message.height < next { refuse(at: index, from: signer, "height \(message.height) is decided (next \(next))") }
            return false
        }
        if let reason = gate.rules.refusal(message) {
            refuse(at: index, from: signer, reason)
            return false
        }
        guard gate.hasRoom(for: message, core: core) else {
            if !gate.holds(message) { refuse(at: index, from: signer, "slot full: \(describe(message))") }
            return false
        }
        return true
    }

    /// An honest node refusing something signed or sent by `culprit`; counted when the culprit is Byzantine
    /// (an honest peer's stale re-gossip is refused too, and is no attack).
    mutating func refuse(at index: Int, from culprit: ValidatorID, _ reason: String) {
        guard nodes[index].isHonest else { return }
        record("n\(index) refuses: \(reason)")
        if nodes.contains(where: { $0.id == culprit && !$0.isHonest }) { refusedByHonest += 1 }
    }

    /// Sends what a Byzantine validator adds on its own to every peer, counting it.
    mutating func hostile(_ message: NetworkMessage, from index: Int) {
        hostileSent += nodes.count - 1
        broadcast(message, from: index)
    }

    func describe(_ message: ConsensusMessage) -> String {
        switch message {
        case .proposal(let signed, _):
            let proposal = signed.proposal
            let pol = proposal.polRound.map { " pol \($0)" } ?? ""
            return "proposal h\(proposal.height) r\(proposal.round) \(short(proposal.blockHash))\(pol) by \(proposal.proposer)"
        case .vote(let signed):
            let vote = signed.vote
            return "\(vote.kind) h\(vote.height) r\(vote.round) \(vote.blockHash.map(short) ?? "nil") by \(vote.validator)"
        }
    }

    func short(_ hash: Hash32) -> String { String(hash.hex.prefix(8)) }

    /// Status and gossip: tells one random peer its height and re-sends every message it holds for this height.
    mutating func tick(_ index: Int) {
        guard nodes.count > 1 else { return }
        var peer = Int(random.below(UInt64(nodes.count - 1)))
        if peer >= index { peer += 1 }
        if nodes[index].behaviour == .lyingSync {
            hostileSent += 1
            send(.status(height: UInt64(nodes[index].chain.count) + Self.inflatedHeights), from: index, to: peer)
        } else {
            send(.status(height: UInt64(nodes[index].chain.count)), from: index, to: peer)
        }
        guard nodes[index].behaviour != .silent else { return }
        for message in nodes[index].core?.heldMessages ?? [] { send(.consensus(message), from: index, to: peer) }
        if nodes[index].behaviour == .replayer {
            hostileSent += nodes[index].replay.count
            for message in nodes[index].replay { send(.consensus(message), from: index, to: peer) }
        }
    }
}
