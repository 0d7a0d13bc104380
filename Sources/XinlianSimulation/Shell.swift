import XinlianConsensus
import XinlianCore
import XinlianCrypto

/// Each node's shell: carries out its core's actions, the way a real node would.
extension World {
    /// Internal answers (built, validated, signed) chained from one outside event.
    static let chainedEventLimit = 1_024

    /// Feeds `event` to the node's core and carries out the actions, feeding answers back in order.
    mutating func drive(_ index: Int, _ event: ConsensusEvent) {
        var pending = [event]
        var cursor = 0
        while cursor < pending.count, cursor < Self.chainedEventLimit {
            let next = pending[cursor]
            cursor += 1
            guard let actions = nodes[index].core?.step(next) else { return }
            for action in actions { perform(action, node: index, pending: &pending) }
        }
    }

    mutating func perform(_ action: ConsensusAction, node index: Int, pending: inout [ConsensusEvent]) {
        switch action {
        case .buildBlock:
            pending.append(.blockBuilt(setup.block(on: nodes[index].chain, proposer: nodes[index].id, nowMs: nowMs,
                                                   variant: 0)))
        case .validateBlock(let block):
            let hash = block.header.hash(setup.suite)
            let valid = setup.isValid(block, on: nodes[index].chain)
            if !valid {
                refuse(at: index, from: block.header.proposer, "proposed block \(short(hash)) by \(block.header.proposer) is invalid")
            }
            pending.append(.blockValidated(hash: hash, valid: valid))
        case .sign(let request):
            if let signature = nodes[index].guardedSign(request) {
                let message = signedMessage(request, signature)
                record("n\(index) signs \(describe(message))")
                if case .vote(let vote) = message { nodes[index].remember(vote) }
                pending.append(.signed(message))
            } else {
                record("n\(index) guard refused h\(request.height) r\(request.round) \(request.step)")
            }
        case .broadcastProposal(let signed, let block):
            broadcastProposal(signed, block, from: index)
        case .broadcastVote(let signed):
            broadcastVote(signed, from: index)
        case .scheduleTimeout(let timeout, let durationMs):
            queue.push(.timeout(node: index, incarnation: nodes[index].incarnation, timeout), at: nowMs + durationMs)
        case .commit(let block, let certificate):
            if nodes[index].behaviour == .replayer {
                nodes[index].replay = Array((nodes[index].core?.heldMessages ?? []).suffix(Self.replayKeptLimit))
            }
            if append(CommittedBlock(block: block, certificate: certificate), to: index, via: "consensus") {
                pending.append(startEvent(index))
            }
        case .evidence(let equivocation):
            noteEvidence(equivocation, reporter: index)
        }
    }

    func describe(_ message: SignedMessage) -> String {
        switch message {
        case .proposal(let signed): describe(.proposal(signed, Block(header: placeholderHeader, transactions: [])))
        case .vote(let signed): describe(ConsensusMessage.vote(signed))
        }
    }

    var placeholderHeader: BlockHeader {
        BlockHeader(chainID: SimulatedConsortium.chainID, height: 0, timeMs: 0, previousHash: .zero, transactionsRoot: .zero,
                    stateRoot: .zero, validatorSetHash: .zero, proposer: nodes[0].id, transactionCount: 0)
    }

    func signedMessage(_ request: SignRequest, _ signature: [UInt8]) -> SignedMessage {
        switch request {
        case .proposal(let proposal): .proposal(SignedProposal(proposal: proposal, signature: signature))
        case .vote(let vote): .vote(SignedVote(vote: vote, signature: signature))
        }
    }

    mutating func broadcastProposal(_ signed: SignedProposal, _ block: Block, from index: Int) {
        switch nodes[index].behaviour {
        case .oversizedBlock, .poisonedTransactions:
            // Its own block replaced by one every honest validator must refuse, signed past the guard.
            let included = nodes[index].behaviour == .oversizedBlock ? setup.transactions : [setup.poisoned]
            let bad = setup.block(on: nodes[index].chain, proposer: nodes[index].id, nowMs: nowMs, transactions: included)
            var proposal = signed.proposal
            proposal.blockHash = bad.header.hash(setup.suite)
            return hostile(.consensus(.proposal(SignedProposal(proposal: proposal,
                                                               signature: nodes[index].rawSign(proposal.signingBytes)), bad)),
                           from: index)
        case .equivocatingProposer:
            break
        default:
            return broadcast(.consensus(.proposal(signed, block)), from: index)
        }
        // A second block and proposal for the same round, signed past the guard.
        let other = setup.block(on: nodes[index].chain, proposer: nodes[index].id, nowMs: nowMs, variant: 1)
        var proposal = signed.proposal
        proposal.blockHash = other.header.hash(setup.suite)
        let forged = SignedProposal(proposal: proposal, signature: nodes[index].rawSign(proposal.signingBytes))
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

    mutating func broadcastVote(_ signed: SignedVote, from index: Int) {
        switch nodes[index].behaviour {
        case .doubleVoter:
            break
        case .voteFlooder:
            broadcast(.consensus(.vote(signed)), from: index)
            for n in 0..<Self.floodVotesPerStep {
                var vote = signed.vote
                vote.blockHash = setup.suite.hash(Array("flood \(vote.height) \(vote.round) \(vote.kind) \(n)".utf8))
                hostile(.consensus(.vote(SignedVote(vote: vote, signature: nodes[index].rawSign(vote.signingBytes)))),
                        from: index)
            }
            return
        case .offScheduleProposer:
            broadcast(.consensus(.vote(signed)), from: index)
            let vote = signed.vote
            guard vote.kind == .prevote,
                  nodes[index].gate?.rules.schedule.proposer(height: vote.height, round: vote.round) != nodes[index].id
            else { return }
            let block = setup.block(on: nodes[index].chain, proposer: nodes[index].id, nowMs: nowMs, variant: 2)
            let proposal = Proposal(chainID: SimulatedConsortium.chainID, height: vote.height, round: vote.round,
                                    blockHash: block.header.hash(setup.suite), polRound: nil, proposer: nodes[index].id)
            return hostile(.consensus(.proposal(SignedProposal(proposal: proposal,
                                                               signature: nodes[index].rawSign(proposal.signingBytes)), block)),
                           from: index)
        default:
            return broadcast(.consensus(.vote(signed)), from: index)
        }
        var vote = signed.vote
        vote.blockHash = vote.blockHash == nil ? setup.suite.hash(Array("forged \(vote.round)".utf8)) : nil
        let forged = SignedVote(vote: vote, signature: nodes[index].rawSign(vote.signingBytes))
        for peer in nodes.indices where peer != index {
            hostileSent += 1
            let pair = random.below(2) == 0 ? [signed, forged] : [forged, signed]
            for item in pair { send(.consensus(.vote(item)), from: index, to: peer) }
        }
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
