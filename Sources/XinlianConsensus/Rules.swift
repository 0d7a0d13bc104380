import XinlianCore
import XinlianCrypto

/// The `upon` rules of Algorithm 1, evaluated against the held state after every event until nothing changes.
extension ConsensusCore {
    private struct Marker: Equatable {
        var phase: Phase
        var round: UInt32
        var step: ConsensusStep
        var fired: Int
    }

    private var marker: Marker { Marker(phase: phase, round: round, step: step, fired: fired.count) }

    mutating func evaluate(_ out: inout [ConsensusAction]) {
        for _ in 0..<Self.evaluationPassLimit {
            guard phase == .running else { return }
            let before = marker
            skipToLaterRound(&out)
            if commitIfDecided(&out) { return }
            applyProposalRules(&out)
            applyPrevoteRules(&out)
            applyPrecommitRules(&out)
            if marker == before { return }
        }
    }

    func isQuorum(_ power: UInt64) -> Bool { context?.validators.isQuorum(power) ?? false }

    /// Lines 55–56: messages from more than a third of the power in a later round move us there.
    mutating func skipToLaterRound(_ out: inout [ConsensusAction]) {
        guard let validators = context?.validators else { return }
        for later in rounds.keys.filter({ $0 > round }).sorted(by: >) {
            let power = rounds[later]?.participants.reduce(UInt64(0)) { $0 + (validators.member($1)?.power ?? 0) } ?? 0
            if power * 3 > validators.totalPower {
                return startRound(later, &out)
            }
        }
    }

    /// Lines 49–54: a block with precommits from more than two thirds of the power in any round is decided.
    /// Validity is not re-asked: such a quorum holds at least one honest validator that validated it.
    mutating func commitIfDecided(_ out: inout [ConsensusAction]) -> Bool {
        guard let validators = context?.validators else { return false }
        for decidedRound in rounds.keys.sorted() {
            guard let tally = rounds[decidedRound]?.precommits, let hash = tally.quorumBlockHash(validators),
                let block = knownBlock(hash)
            else { continue }
            let certificate = CommitCertificate(height: height, round: decidedRound, blockHash: hash,
                                                signatures: tally.signatures(for: hash))
            phase = .decided
            out.append(.commit(block, certificate))
            return true
        }
        return false
    }

    func knownBlock(_ hash: Hash32) -> Block? {
        if let block = blocks[hash] { return block }
        if locked?.hash == hash { return locked?.block }
        return valid?.hash == hash ? valid?.block : nil
    }

    /// Lines 22–33: prevote on the round's proposal once its validity is known.
    mutating func applyProposalRules(_ out: inout [ConsensusAction]) {
        guard step == .propose, let signed = rounds[round]?.proposals.first else { return }
        let hash = signed.proposal.blockHash
        guard let isValid = validity[hash] else { return }
        guard let polRound = signed.proposal.polRound else {
            let acceptable = isValid && (locked == nil || locked?.hash == hash)
            return castVote(.prevote, acceptable ? hash : nil, &out)
        }
        guard polRound < round, let prevotes = rounds[polRound]?.prevotes, isQuorum(prevotes.power(for: hash)) else {
            return
        }
        let acceptable = isValid && ((locked.map { $0.round <= polRound } ?? true) || locked?.hash == hash)
        castVote(.prevote, acceptable ? hash : nil, &out)
    }

    /// Lines 34–46: prevote timeout, lock on a proposal with a prevote quorum, precommit nil on a nil quorum.
    mutating func applyPrevoteRules(_ out: inout [ConsensusAction]) {
        guard step >= .prevote, let entry = rounds[round] else { return }
        let prevotes = entry.prevotes
        if step == .prevote, isQuorum(prevotes.totalPower),
            fired.insert(Trigger(rule: .prevoteTimeout, round: round)).inserted {
            out.append(.scheduleTimeout(Timeout(height: height, round: round, step: .prevote),
                                        durationMs: configuration.timeouts.durationMs(.prevote, round: round)))
        }
        let lockTrigger = Trigger(rule: .lock, round: round)
        if !fired.contains(lockTrigger),
            let hash = entry.proposals.map(\.proposal.blockHash).first(where: { isQuorum(prevotes.power(for: $0)) }),
            validity[hash] == true, let block = blocks[hash] {
            fired.insert(lockTrigger)
            let value = RoundValue(block: block, hash: hash, round: round)
            if step == .prevote {
                locked = value
                castVote(.precommit, hash, &out)
            }
            valid = value
        }
        if step == .prevote, isQuorum(prevotes.power(for: nil)) {
            castVote(.precommit, nil, &out)
        }
    }

    /// Lines 47–48: precommits from more than two thirds of the power (for anything) arm the precommit timeout.
    mutating func applyPrecommitRules(_ out: inout [ConsensusAction]) {
        guard let precommits = rounds[round]?.precommits, isQuorum(precommits.totalPower),
            fired.insert(Trigger(rule: .precommitTimeout, round: round)).inserted
        else { return }
        out.append(.scheduleTimeout(Timeout(height: height, round: round, step: .precommit),
                                    durationMs: configuration.timeouts.durationMs(.precommit, round: round)))
    }
}
