import XinlianConsensus
import XinlianCore
import XinlianCrypto

/// The shell of a Byzantine validator: its replica is the honest one, and what the replica sends is rewritten here
/// with the validator's real key, past its double-sign guard.
extension World {
    /// Sends what a node's replica asked to send (to `to`, or to every peer), through the node's shell.
    mutating func output(_ message: WireMessage, to: Int?, from index: Int) {
        let own = nodes[index].id
        switch (nodes[index].behaviour, message) {
        case (nil, _), (.silent, _):
            return emit(message, to: to, from: index)
        case (.equivocatingProposer, .consensus(.proposal(let signed, let block))) where signed.proposal.proposer == own:
            equivocate(signed, block, from: index)
        case (.doubleVoter, .consensus(.vote(let signed))) where signed.vote.validator == own:
            var vote = signed.vote
            vote.blockHash = vote.blockHash == nil ? setup.suite.hash(Array("forged \(vote.round)".utf8)) : nil
            let forged = SignedVote(vote: vote, signature: nodes[index].signer.rawSign(vote.signingBytes))
            for peer in nodes.indices where peer != index && (to == nil || to == peer) {
                hostileSent += 1
                let pair = random.below(2) == 0 ? [signed, forged] : [forged, signed]
                for item in pair { send(.consensus(.vote(item)), from: index, to: peer) }
            }
        case (.voteFlooder, .consensus(.vote(let signed))) where signed.vote.validator == own:
            emit(message, to: to, from: index)
            for n in 0..<Self.floodVotesPerStep {
                var vote = signed.vote
                vote.blockHash = setup.suite.hash(Array("flood \(vote.height) \(vote.round) \(vote.kind) \(n)".utf8))
                hostile(.consensus(.vote(SignedVote(vote: vote, signature: nodes[index].signer.rawSign(vote.signingBytes)))),
                        to: to, from: index)
            }
        case (.offScheduleProposer, .consensus(.vote(let signed))) where signed.vote.validator == own:
            emit(message, to: to, from: index)
            let vote = signed.vote
            guard vote.kind == .prevote, rules.schedule.proposer(height: vote.height, round: vote.round) != own else { return }
            let ledger = nodes[index].ledger
            guard vote.height == ledger.height + 1 else { return }
            let block = ledger.makeBlock(height: vote.height, timeMs: max(nodes[index].clock.nowMs, ledger.lastBlockTimeMs),
                                         proposer: own, transactions: [])
            hostile(.consensus(proposal(block, round: vote.round, by: index)), to: to, from: index)
        case (.oversizedBlock, .consensus(.proposal(let signed, let block))) where signed.proposal.proposer == own,
             (.poisonedTransactions, .consensus(.proposal(let signed, let block))) where signed.proposal.proposer == own:
            // Its own block replaced by one every honest validator must refuse, signed past the guard.
            let included = nodes[index].behaviour == .oversizedBlock
                ? (0..<UInt64(SimulatedConsortium.maxBlockTransactions) + 1).compactMap {
                    try? setup.transaction(1_000_000 + $0, timeMs: block.header.timeMs)
                }
                : [setup.poisoned[Int(signed.proposal.round) % setup.poisoned.count]]
            let bad = nodes[index].ledger.makeBlock(height: block.header.height, timeMs: block.header.timeMs,
                                                    proposer: own, transactions: included)
            hostile(.consensus(proposal(bad, round: signed.proposal.round, by: index)), to: to, from: index)
        case (.lyingSync, .syncResponse(let fromHeight, var records)) where !records.isEmpty:
            // The first block's header is altered: its certificate no longer signs it.
            var header = records[0].block.header
            header.timeMs &+= 1
            records[0] = CommittedBlock(block: Block(header: header, transactions: records[0].block.transactions),
                                        certificate: records[0].certificate)
            hostile(.syncResponse(fromHeight: fromHeight, blocks: records), to: to, from: index)
        case (.sidecarStripper, .syncResponse(let fromHeight, let records))
            where records.contains(where: { $0.block.transactions.contains { $0.personal != nil } }):
            let stripped = records.map { record in
                var record = record
                record.block.transactions = record.block.transactions.map(\.withoutPersonalData)
                return record
            }
            hostile(.syncResponse(fromHeight: fromHeight, blocks: stripped), to: to, from: index)
        case (.replayer, .consensus(let consensus)):
            if PeerGate.Slot(consensus).signer == own {
                nodes[index].sent.append(consensus)
                if nodes[index].sent.count > Self.replayKeptLimit { nodes[index].sent.removeFirst() }
            }
            emit(message, to: to, from: index)
        default:
            emit(message, to: to, from: index)
        }
    }

    /// What hostile validators send on their own, with each status tick.
    mutating func hostileTick(_ index: Int, peer: Int) {
        switch nodes[index].behaviour {
        case .replayer:
            let next = nodes[index].ledger.height + 1
            let old = nodes[index].sent.filter { $0.height < next }
            hostileSent += old.count
            for message in old { send(.consensus(message), from: index, to: peer) }
        case .poisonedTransactions:
            hostileSent += 1
            send(.transactions(setup.poisoned), from: index, to: peer)
        default:
            break
        }
    }

    /// A proposal for `block`, signed past the guard.
    func proposal(_ block: Block, round: UInt32, by index: Int) -> ConsensusMessage {
        let proposal = Proposal(chainID: SimulatedConsortium.chainID, height: block.header.height, round: round,
                                blockHash: block.header.hash(setup.suite), polRound: nil, proposer: nodes[index].id)
        return .proposal(SignedProposal(proposal: proposal, signature: nodes[index].signer.rawSign(proposal.signingBytes)),
                         block)
    }

    /// Two blocks and proposals for the same round: each peer gets one, the other or both.
    mutating func equivocate(_ signed: SignedProposal, _ block: Block, from index: Int) {
        var header = block.header
        header.timeMs &+= 1
        let other = Block(header: header, transactions: block.transactions)
        var proposal = signed.proposal
        proposal.blockHash = other.header.hash(setup.suite)
        let forged = SignedProposal(proposal: proposal, signature: nodes[index].signer.rawSign(proposal.signingBytes))
        record("n\(index) equivocates: \(short(signed.proposal.blockHash)) and \(short(proposal.blockHash))")
        for peer in nodes.indices where peer != index {
            let choice = random.below(3)
            if choice != 1 { send(.consensus(.proposal(signed, block)), from: index, to: peer) }
            if choice != 0 {
                hostileSent += 1
                send(.consensus(.proposal(forged, other)), from: index, to: peer)
            }
        }
    }

    /// Sends as an honest shell would.
    mutating func emit(_ message: WireMessage, to: Int?, from index: Int) {
        if let to { send(message, from: index, to: to) } else { broadcast(message, from: index) }
    }

    /// Sends what a Byzantine validator adds on its own, counting it.
    mutating func hostile(_ message: WireMessage, to: Int?, from index: Int) {
        hostileSent += to == nil ? nodes.count - 1 : 1
        emit(message, to: to, from: index)
    }
}
