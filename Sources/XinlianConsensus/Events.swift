import XinlianCore
import XinlianCrypto

/// The step inside a round. Raw values match the storage double-sign guard's steps
/// (`SignerState.Step`: proposal 1, prevote 2, precommit 3).
public enum ConsensusStep: UInt8, Sendable, Hashable, Comparable, CustomStringConvertible {
    case propose = 1
    case prevote = 2
    case precommit = 3

    public static func < (lhs: ConsensusStep, rhs: ConsensusStep) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .propose: "propose"
        case .prevote: "prevote"
        case .precommit: "precommit"
        }
    }
}

/// A timer the core asked for; the shell hands it back as ``ConsensusEvent/timeout(_:)`` when it fires.
public struct Timeout: Hashable, Sendable, CustomStringConvertible {
    public var height: UInt64
    public var round: UInt32
    public var step: ConsensusStep

    public init(height: UInt64, round: UInt32, step: ConsensusStep) {
        self.height = height
        self.round = round
        self.step = step
    }

    public var description: String { "timeout(h\(height) r\(round) \(step))" }
}

/// Round timeouts: each grows linearly with the round, `base + round * delta`.
public struct TimeoutConfig: Hashable, Sendable {
    public var proposeMs: UInt64
    public var proposeDeltaMs: UInt64
    public var prevoteMs: UInt64
    public var prevoteDeltaMs: UInt64
    public var precommitMs: UInt64
    public var precommitDeltaMs: UInt64

    /// Values for a LAN consortium (CometBFT's defaults, scaled down).
    public static let standard = TimeoutConfig(proposeMs: 3_000, proposeDeltaMs: 500, prevoteMs: 1_000,
                                               prevoteDeltaMs: 500, precommitMs: 1_000, precommitDeltaMs: 500)

    public init(proposeMs: UInt64, proposeDeltaMs: UInt64, prevoteMs: UInt64, prevoteDeltaMs: UInt64,
                precommitMs: UInt64, precommitDeltaMs: UInt64) {
        self.proposeMs = proposeMs
        self.proposeDeltaMs = proposeDeltaMs
        self.prevoteMs = prevoteMs
        self.prevoteDeltaMs = prevoteDeltaMs
        self.precommitMs = precommitMs
        self.precommitDeltaMs = precommitDeltaMs
    }

    /// The duration of `step`'s timeout in `round`.
    public func durationMs(_ step: ConsensusStep, round: UInt32) -> UInt64 {
        let (base, delta) = switch step {
        case .propose: (proposeMs, proposeDeltaMs)
        case .prevote: (prevoteMs, prevoteDeltaMs)
        case .precommit: (precommitMs, precommitDeltaMs)
        }
        return base &+ UInt64(round) &* delta
    }
}

/// Something the core wants signed. The shell records (height, round, step) durably before signing.
public enum SignRequest: Hashable, Sendable {
    case proposal(Proposal)
    case vote(Vote)

    public var height: UInt64 {
        switch self {
        case .proposal(let proposal): proposal.height
        case .vote(let vote): vote.height
        }
    }

    public var round: UInt32 {
        switch self {
        case .proposal(let proposal): proposal.round
        case .vote(let vote): vote.round
        }
    }

    public var step: ConsensusStep {
        switch self {
        case .proposal: .propose
        case .vote(let vote): vote.kind == .prevote ? .prevote : .precommit
        }
    }

    /// The exact bytes to sign (domain tag included).
    public var signingBytes: [UInt8] {
        switch self {
        case .proposal(let proposal): proposal.signingBytes
        case .vote(let vote): vote.signingBytes
        }
    }
}

/// A message the shell signed for the core, fed back with ``ConsensusEvent/signed(_:)``.
public enum SignedMessage: Hashable, Sendable {
    case proposal(SignedProposal)
    case vote(SignedVote)
}

/// Proof that one validator signed two conflicting messages at one (height, round, step).
public enum Equivocation: Hashable, Sendable {
    /// Two votes of one kind for different block hashes (or one for nil).
    case votes(SignedVote, SignedVote)
    /// Two proposals for different blocks.
    case proposals(SignedProposal, SignedProposal)

    /// The validator that signed both.
    public var validator: ValidatorID {
        switch self {
        case .votes(let first, _): first.vote.validator
        case .proposals(let first, _): first.proposal.proposer
        }
    }
}

/// Inputs to ``ConsensusCore/step(_:)``.
public enum ConsensusEvent: Hashable, Sendable {
    /// Begin `height` (after genesis, after a commit, or after block sync), with that height's validators.
    case start(height: UInt64, validators: ValidatorSet, previousBlockHash: Hash32)
    /// A proposal and its block, from the network.
    case proposal(SignedProposal, Block)
    /// A vote, from the network.
    case vote(SignedVote)
    /// A timer from ``ConsensusAction/scheduleTimeout(_:durationMs:)`` fired.
    case timeout(Timeout)
    /// The answer to ``ConsensusAction/buildBlock(height:round:)``.
    case blockBuilt(Block)
    /// The answer to ``ConsensusAction/validateBlock(_:)``.
    case blockValidated(hash: Hash32, valid: Bool)
    /// The answer to ``ConsensusAction/sign(_:)``, after the shell recorded and signed it.
    case signed(SignedMessage)
}

/// Outputs of ``ConsensusCore/step(_:)``, to be carried out in order.
public enum ConsensusAction: Hashable, Sendable {
    /// Build a block for this height; answer with ``ConsensusEvent/blockBuilt(_:)``.
    case buildBlock(height: UInt64, round: UInt32)
    /// Check the block's transactions and header against the ledger; answer with ``ConsensusEvent/blockValidated(hash:valid:)``.
    case validateBlock(Block)
    /// Durably record (height, round, step), sign, then answer with ``ConsensusEvent/signed(_:)``.
    case sign(SignRequest)
    /// Send the proposal and its block to every peer.
    case broadcastProposal(SignedProposal, Block)
    /// Send the vote to every peer.
    case broadcastVote(SignedVote)
    /// Hand the timeout back after `durationMs`.
    case scheduleTimeout(Timeout, durationMs: UInt64)
    /// The block is final: persist it with its certificate, then send ``ConsensusEvent/start(height:validators:previousBlockHash:)``.
    case commit(Block, CommitCertificate)
    /// A validator equivocated; keep the proof.
    case evidence(Equivocation)
}
