import XinlianCore
import XinlianCrypto

/// Who this core is and how it times rounds.
public struct ConsensusConfiguration: Sendable, Hashable {
    public var chainID: ChainID
    public var suite: CryptoSuite
    /// This node's validator id; `nil` (or an id outside the set) makes the core a non-voting observer.
    public var localValidator: ValidatorID?
    public var timeouts: TimeoutConfig

    public init(chainID: ChainID, suite: CryptoSuite, localValidator: ValidatorID?, timeouts: TimeoutConfig = .standard) {
        self.chainID = chainID
        self.suite = suite
        self.localValidator = localValidator
        self.timeouts = timeouts
    }
}

/// Where the core stands, for status pages and tests.
public struct ConsensusStatus: Sendable, Hashable {
    public var phase: ConsensusCore.Phase
    public var height: UInt64
    public var round: UInt32
    public var step: ConsensusStep
    public var lockedRound: UInt32?
    public var lockedBlockHash: Hash32?
    public var validRound: UInt32?
    public var validBlockHash: Hash32?
}

/// Tendermint BFT (Buchman, Kwon, Milosevic 2018, Algorithm 1) as a pure state machine.
///
/// Feed it ``ConsensusEvent``s with ``step(_:)`` and carry out the returned ``ConsensusAction``s in order. It never
/// signs, reads a clock, draws randomness or does I/O; it verifies signatures through a ``SignatureVerifier``.
/// Memory is bounded: at most ``futureHeightsLimit`` heights ahead are buffered, rounds outside
/// `[round - retainedPastRounds, round + futureRoundsLimit]` are dropped, and each round keeps at most
/// ``proposalsPerRoundLimit`` proposals and one vote of each kind per validator. See `docs/consensus.md`.
public struct ConsensusCore: Sendable {
    /// Heights above the current one whose messages are buffered.
    public static let futureHeightsLimit: UInt64 = 2
    /// Rounds above the current one whose messages are kept (for future heights: rounds `0...futureRoundsLimit`).
    public static let futureRoundsLimit: UInt32 = 8
    /// Rounds below the current one whose messages are kept.
    public static let retainedPastRounds: UInt32 = 8
    /// Proposals kept per round: the first, and one conflicting one (so a quorum for it can still commit).
    public static let proposalsPerRoundLimit = 2
    /// Buffered messages per future height (each (round, kind, validator) slot is kept once anyway).
    public static let futureMessagesPerHeightLimit = 32_768
    /// Bound on rule-evaluation passes after one event; each pass that changes nothing ends the loop.
    static let evaluationPassLimit = 64

    /// `idle` before the first start, `running` while deciding, `decided` after commit until the next start.
    public enum Phase: Sendable, Hashable { case idle, running, decided }

    public let configuration: ConsensusConfiguration
    let verifier: any SignatureVerifier
    public internal(set) var phase: Phase = .idle
    public internal(set) var height: UInt64 = 0
    public internal(set) var round: UInt32 = 0
    public internal(set) var step: ConsensusStep = .propose
    var context: HeightContext?
    var locked: RoundValue?
    var valid: RoundValue?
    var rounds: [UInt32: RoundMessages] = [:]
    var blocks: [Hash32: Block] = [:]
    var validity: [Hash32: Bool] = [:]
    var pendingValidation: Set<Hash32> = []
    var ownBlock: Block?
    var fired: Set<Trigger> = []
    var future: [UInt64: [BufferKey: ConsensusMessage]] = [:]

    public init(configuration: ConsensusConfiguration, verifier: any SignatureVerifier = DirectSignatureVerifier()) {
        self.configuration = configuration
        self.verifier = verifier
    }

    public var status: ConsensusStatus {
        ConsensusStatus(phase: phase, height: height, round: round, step: step, lockedRound: locked?.round,
                        lockedBlockHash: locked?.hash, validRound: valid?.round, validBlockHash: valid?.hash)
    }

    /// The proposer of (`height`, `round`) under the current validator set; `nil` before the first start.
    public func proposer(round: UInt32) -> ValidatorID? {
        context?.schedule.proposer(height: height, round: round)
    }

    /// Every proposal and vote held for the current height, in a fixed order: what a gossip layer re-sends to
    /// peers that may have missed them (Tendermint's liveness assumes every message an honest node holds
    /// eventually reaches every honest node).
    public var heldMessages: [ConsensusMessage] {
        var messages: [ConsensusMessage] = []
        for round in rounds.keys.sorted() {
            guard let entry = rounds[round] else { continue }
            for proposal in entry.proposals {
                // Only with the personal data it signed (an equivocating proposer's twin may have left another).
                if let block = blocks[proposal.proposal.blockHash],
                   proposal.proposal.carriesSignedPersonalData(block, suite: configuration.suite) {
                    messages.append(.proposal(proposal, block))
                }
            }
            messages += (entry.prevotes.allVotes + entry.precommits.allVotes).map(ConsensusMessage.vote)
        }
        return messages
    }

    /// Removes and returns the messages buffered for `height` (before the core started it), in the order
    /// `start` would replay them. A shell that journals its inputs takes them before sending `start` and feeds
    /// them back one by one, so that each is journalled like any other peer message.
    public mutating func takeBuffered(height target: UInt64) -> [ConsensusMessage] {
        guard let buffered = future.removeValue(forKey: target) else { return [] }
        return buffered.keys.sorted().compactMap { buffered[$0] }
    }

    /// Applies one event and returns what the shell must do, in order.
    public mutating func step(_ event: ConsensusEvent) -> [ConsensusAction] {
        var out: [ConsensusAction] = []
        switch event {
        case .start(let newHeight, let validators, let previousBlockHash):
            start(height: newHeight, validators: validators, previousBlockHash: previousBlockHash, &out)
        case .proposal(let signed, let block):
            receiveProposal(signed, block, &out)
        case .vote(let signed):
            receiveVote(signed, &out)
        case .timeout(let timeout):
            onTimeout(timeout, &out)
        case .blockBuilt(let block):
            onBlockBuilt(block, &out)
        case .blockValidated(let hash, let isValid):
            if pendingValidation.remove(hash) != nil { validity[hash] = isValid }
        case .signed(let message):
            onSigned(message, &out)
        }
        evaluate(&out)
        return out
    }

    // MARK: Heights and rounds

    mutating func start(height newHeight: UInt64, validators: ValidatorSet, previousBlockHash: Hash32,
                        _ out: inout [ConsensusAction]) {
        guard phase == .idle || newHeight > height else { return }
        let schedule = context.flatMap { $0.schedule.validatorSetHash == validators.hash ? $0.schedule : nil }
            ?? ProposerSchedule(validators)
        context = HeightContext(validators: validators, schedule: schedule, previousBlockHash: previousBlockHash)
        phase = .running
        height = newHeight
        locked = nil
        valid = nil
        rounds = [:]
        blocks = [:]
        validity = [:]
        pendingValidation = []
        fired = []
        let buffered = future[newHeight] ?? [:]
        future = future.filter { $0.key > newHeight && $0.key <= newHeight + Self.futureHeightsLimit }
        startRound(0, &out)
        for key in buffered.keys.sorted() {
            switch buffered[key] {
            case .proposal(let signed, let block): receiveProposal(signed, block, &out)
            case .vote(let signed): receiveVote(signed, &out)
            case nil: break
            }
        }
    }

    /// The paper's StartRound: reset the step, arm the propose timeout, and propose if it is our turn.
    mutating func startRound(_ newRound: UInt32, _ out: inout [ConsensusAction]) {
        round = newRound
        step = .propose
        ownBlock = nil
        prune()
        out.append(.scheduleTimeout(Timeout(height: height, round: newRound, step: .propose),
                                    durationMs: configuration.timeouts.durationMs(.propose, round: newRound)))
        guard isLocalProposer else { return }
        if let valid {
            propose(valid.block, hash: valid.hash, polRound: valid.round, &out)
        } else {
            out.append(.buildBlock(height: height, round: newRound))
        }
    }

    var isLocalProposer: Bool {
        guard let local = configuration.localValidator, let context else { return false }
        return context.schedule.proposer(height: height, round: round) == local
    }

    mutating func propose(_ block: Block, hash: Hash32, polRound: UInt32?, _ out: inout [ConsensusAction]) {
        guard let local = configuration.localValidator else { return }
        ownBlock = block
        validity[hash] = true
        let proposal = Proposal(chainID: configuration.chainID, height: height, round: round, blockHash: hash,
                                polRound: polRound, proposer: local,
                                personalDigest: PersonalSidecars.digest(block.transactions, suite: configuration.suite))
        out.append(.sign(.proposal(proposal)))
    }

    /// Drops rounds older than ``retainedPastRounds`` and the blocks only they referenced.
    mutating func prune() {
        guard round > Self.retainedPastRounds else { return }
        let oldest = round - Self.retainedPastRounds
        rounds = rounds.filter { $0.key >= oldest }
        let referenced = Set(rounds.values.flatMap { $0.proposals.map(\.proposal.blockHash) })
        blocks = blocks.filter { referenced.contains($0.key) }
        validity = validity.filter { referenced.contains($0.key) || $0.key == locked?.hash || $0.key == valid?.hash }
    }

    mutating func onTimeout(_ timeout: Timeout, _ out: inout [ConsensusAction]) {
        guard phase == .running, timeout.height == height, timeout.round == round else { return }
        switch timeout.step {
        case .propose where step == .propose:
            castVote(.prevote, nil, &out)
        case .prevote where step == .prevote:
            castVote(.precommit, nil, &out)
        case .precommit where round < UInt32.max:
            startRound(round + 1, &out)
        default:
            break
        }
    }

    mutating func onBlockBuilt(_ block: Block, _ out: inout [ConsensusAction]) {
        guard phase == .running, step == .propose, ownBlock == nil, isLocalProposer, let context else { return }
        let header = block.header
        guard header.height == height, header.chainID == configuration.chainID,
            header.previousHash == context.previousBlockHash
        else { return }
        propose(block, hash: header.hash(configuration.suite), polRound: nil, &out)
    }

    mutating func onSigned(_ message: SignedMessage, _ out: inout [ConsensusAction]) {
        guard phase != .idle, let local = configuration.localValidator else { return }
        switch message {
        case .proposal(let signed):
            let proposal = signed.proposal
            guard phase == .running, proposal.proposer == local, proposal.height == height, proposal.round == round,
                let block = ownBlock, block.header.hash(configuration.suite) == proposal.blockHash
            else { return }
            out.append(.broadcastProposal(signed, block))
            receiveProposal(signed, block, &out)
        case .vote(let signed):
            guard signed.vote.validator == local, signed.vote.height == height else { return }
            out.append(.broadcastVote(signed))
            receiveVote(signed, &out)
        }
    }

    /// Records the step change and asks the shell to sign the vote (only a member of the set votes).
    mutating func castVote(_ kind: VoteKind, _ blockHash: Hash32?, _ out: inout [ConsensusAction]) {
        step = kind == .prevote ? .prevote : .precommit
        guard let local = configuration.localValidator, context?.validators.member(local) != nil else { return }
        let vote = Vote(chainID: configuration.chainID, kind: kind, height: height, round: round, blockHash: blockHash,
                        validator: local)
        out.append(.sign(.vote(vote)))
    }
}
