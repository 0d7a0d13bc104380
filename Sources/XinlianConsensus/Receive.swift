import XinlianCore
import XinlianCrypto

extension ConsensusCore {
    /// Rounds of the current height whose messages are kept.
    func accepts(round candidate: UInt32) -> Bool {
        let (ceiling, overflow) = round.addingReportingOverflow(Self.futureRoundsLimit)
        return (overflow || candidate <= ceiling) && candidate &+ Self.retainedPastRounds >= round
    }

    mutating func receiveProposal(_ signed: SignedProposal, _ block: Block, _ out: inout [ConsensusAction]) {
        let proposal = signed.proposal
        guard phase != .idle, proposal.chainID == configuration.chainID else { return }
        if proposal.height > height {
            // Only the scheduled proposer's block is worth buffering (judged with the current set): anyone else
            // could otherwise park a full block per future round.
            guard let context, proposal.proposer == context.schedule.proposer(height: proposal.height, round: proposal.round)
            else { return }
            let key = BufferKey(round: proposal.round, slot: 0, validator: proposal.proposer)
            return buffer(.proposal(signed, block), key: key, signer: proposal.proposer,
                          signature: signed.signature, message: proposal.signingBytes)
        }
        guard phase == .running, proposal.height == height, accepts(round: proposal.round),
            proposal.polRound.map({ $0 < proposal.round }) ?? true, let context,
            proposal.proposer == context.schedule.proposer(height: height, round: proposal.round),
            let member = context.validators.member(proposal.proposer)
        else { return }
        var entry = rounds[proposal.round] ?? RoundMessages()
        guard !entry.proposals.contains(where: { $0.proposal == proposal }),
            entry.proposals.count < Self.proposalsPerRoundLimit,
            block.header.hash(configuration.suite) == proposal.blockHash,
            // Validity may depend only on what the proposer signed: personal data it did not sign is not taken.
            proposal.carriesSignedPersonalData(block, suite: configuration.suite),
            verifier.isValid(signature: signed.signature, message: proposal.signingBytes, key: member.publicKey)
        else { return }
        if let first = entry.proposals.first { out.append(.evidence(.proposals(first, signed))) }
        entry.proposals.append(signed)
        rounds[proposal.round] = entry
        // The first copy stays: an equivocating twin with other personal data must not replace what was validated.
        if blocks[proposal.blockHash] == nil { blocks[proposal.blockHash] = block }
        requestValidation(block, hash: proposal.blockHash, &out)
    }

    /// Asks the shell to validate a block once; header fields the core knows are checked here.
    mutating func requestValidation(_ block: Block, hash: Hash32, _ out: inout [ConsensusAction]) {
        guard validity[hash] == nil, !pendingValidation.contains(hash), let context else { return }
        let header = block.header
        guard header.height == height, header.chainID == configuration.chainID,
            header.previousHash == context.previousBlockHash
        else {
            validity[hash] = false
            return
        }
        pendingValidation.insert(hash)
        out.append(.validateBlock(block))
    }

    mutating func receiveVote(_ signed: SignedVote, _ out: inout [ConsensusAction]) {
        let vote = signed.vote
        guard phase != .idle, vote.chainID == configuration.chainID else { return }
        if vote.height > height {
            let key = BufferKey(round: vote.round, slot: vote.kind.rawValue, validator: vote.validator)
            return buffer(.vote(signed), key: key, signer: vote.validator, signature: signed.signature,
                          message: vote.signingBytes)
        }
        guard phase == .running, vote.height == height, accepts(round: vote.round),
            let member = context?.validators.member(vote.validator)
        else { return }
        var entry = rounds[vote.round] ?? RoundMessages()
        var tally = entry[vote.kind]
        // Same content (a re-signed identical vote included) is a duplicate: no signature check.
        guard !tally.holds(vote) else { return }
        guard let existing = tally.votes[vote.validator] else {
            guard isGenuine(signed, key: member.publicKey) else { return }
            tally.add(signed, power: member.power)
            entry[vote.kind] = tally
            rounds[vote.round] = entry
            return
        }
        let firstConflict = !tally.reported.contains(vote.validator)
        let matters = vote.blockHash.map { relevantValues(round: vote.round).contains($0) } ?? true
        guard firstConflict || matters, isGenuine(signed, key: member.publicKey) else { return }
        if firstConflict {
            tally.reported.insert(vote.validator)
            out.append(.evidence(.votes(existing, signed)))
        }
        if matters { tally.addConflicting(signed, power: member.power) }
        entry[vote.kind] = tally
        rounds[vote.round] = entry
    }

    /// Whether the core would keep `signed` even as a validator's second conflicting vote of a step: it is for the
    /// height being decided and for nothing, or for a value that can decide something in its round (a proposal's
    /// block, or one a later proposal names with that round as its proof-of-lock round).
    public func isRelevant(_ signed: SignedVote) -> Bool {
        let vote = signed.vote
        guard phase == .running, vote.height == height, vote.chainID == configuration.chainID, accepts(round: vote.round),
              context?.validators.member(vote.validator) != nil
        else { return false }
        return vote.blockHash.map { relevantValues(round: vote.round).contains($0) } ?? true
    }

    /// Whether the core kept `message` (in its round at the height being decided, or buffered for a later height).
    /// A shell remembers as seen only what the core kept, so that a copy of a message the core dropped (a
    /// buffered slot already taken, a conflicting vote that did not matter then) can still be taken later.
    public func holds(_ message: ConsensusMessage) -> Bool {
        switch message {
        case .proposal(let signed, _):
            let proposal = signed.proposal
            if phase == .running, proposal.height == height {
                return rounds[proposal.round]?.proposals.contains(signed) == true
            }
            let key = BufferKey(round: proposal.round, slot: 0, validator: proposal.proposer)
            return future[proposal.height]?[key] == message
        case .vote(let signed):
            let vote = signed.vote
            if phase == .running, vote.height == height {
                return rounds[vote.round]?[vote.kind].holds(vote) == true
            }
            let key = BufferKey(round: vote.round, slot: vote.kind.rawValue, validator: vote.validator)
            return future[vote.height]?[key] == message
        }
    }

    func isGenuine(_ signed: SignedVote, key: PublicKey) -> Bool {
        verifier.isValid(signature: signed.signature, message: signed.vote.signingBytes, key: key)
    }

    /// Block hashes whose votes in `round` can decide something: the round's proposals, and proposals that
    /// name `round` as their proof-of-lock round.
    func relevantValues(round target: UInt32) -> Set<Hash32> {
        var values = Set(rounds[target]?.proposals.map(\.proposal.blockHash) ?? [])
        for entry in rounds.values {
            for signed in entry.proposals where signed.proposal.polRound == target {
                values.insert(signed.proposal.blockHash)
            }
        }
        return values
    }

    /// Keeps a verified message for a height at most ``futureHeightsLimit`` ahead, one per slot.
    /// Signatures are checked against the current set; `start` checks them again against that height's set.
    mutating func buffer(_ message: ConsensusMessage, key: BufferKey, signer: ValidatorID, signature: [UInt8],
                         message bytes: [UInt8]) {
        let target = message.height
        guard target <= height + Self.futureHeightsLimit, key.round <= Self.futureRoundsLimit,
            future[target]?[key] == nil, (future[target]?.count ?? 0) < Self.futureMessagesPerHeightLimit,
            let member = context?.validators.member(signer),
            verifier.isValid(signature: signature, message: bytes, key: member.publicKey)
        else { return }
        future[target, default: [:]][key] = message
    }
}
