import XinlianConsensus
import XinlianCore

/// How a Byzantine validator misbehaves. Its replica is honest; its shell lies, with the real keys.
public enum ByzantineBehaviour: String, Sendable, Hashable, CaseIterable {
    /// Proposes two different blocks in each of its rounds, one to each half of its peers.
    case equivocatingProposer
    /// Signs a conflicting second vote for every vote and sends both to every peer, in random order.
    case doubleVoter
    /// Never sends anything.
    case silent
    /// With every vote, also sends distinct signed votes for the same step with random block hashes.
    case voteFlooder
    /// Signs and sends a proposal with a block in every round it votes in, scheduled to propose or not.
    case offScheduleProposer
    /// Proposes blocks with more transactions than genesis's `maxBlockTransactions`.
    case oversizedBlock
    /// Proposes blocks carrying a transaction every honest validator must refuse (dated past `Int64.max`, a bad
    /// signature, a query record in another institution's name, a member's supervision query), and gossips them.
    case poisonedTransactions
    /// Answers block sync with forged blocks, and claims heights it does not have.
    case lyingSync
    /// Re-sends the messages of heights already decided.
    case replayer
    /// Serves block sync (catching up, or asked for personal data) without the personal data beside the blocks:
    /// the blocks are genuine, so nobody can refuse them, and whoever synced from it must get the data elsewhere.
    case sidecarStripper
}

/// Network and process faults, active from the start until ``faultyPeriodMs``; after that the network is
/// synchronous (delays within ``healedDelayMaxMs``, no drops, no partitions) and every crashed node restarts.
public struct FaultConfig: Sendable, Hashable {
    public var dropPerMille: UInt32
    public var duplicatePerMille: UInt32
    public var delayMinMs: UInt64
    public var delayMaxMs: UInt64
    public var healedDelayMaxMs: UInt64
    public var partitions: Bool
    public var crashes: Bool
    /// An honest node's next journal write fails now and then (a full disk): a peer's message is dropped, an own
    /// entry halts the replica, which is restarted as an operator would.
    public var journalFailures: Bool
    /// Each node's clock is off the world's by up to this much, either way (fixed for the run).
    public var clockSkewMaxMs: UInt64
    public var faultyPeriodMs: UInt64

    /// A synchronous network with no faults.
    public static let none = FaultConfig(dropPerMille: 0, duplicatePerMille: 0, delayMinMs: 1, delayMaxMs: 20,
                                         healedDelayMaxMs: 20, partitions: false, crashes: false, journalFailures: false,
                                         clockSkewMaxMs: 0, faultyPeriodMs: 0)
    /// Drops, duplicates, long delays (so reordering), partitions, crashes with torn journal writes, failed journal
    /// writes and clocks up to 1.5 s apart, for six simulated seconds.
    public static let standard = FaultConfig(dropPerMille: 100, duplicatePerMille: 50, delayMinMs: 1, delayMaxMs: 400,
                                             healedDelayMaxMs: 40, partitions: true, crashes: true, journalFailures: true,
                                             clockSkewMaxMs: 1_500, faultyPeriodMs: 6_000)

    public init(dropPerMille: UInt32, duplicatePerMille: UInt32, delayMinMs: UInt64, delayMaxMs: UInt64,
                healedDelayMaxMs: UInt64, partitions: Bool, crashes: Bool, journalFailures: Bool = false,
                clockSkewMaxMs: UInt64 = 0, faultyPeriodMs: UInt64) {
        self.dropPerMille = dropPerMille
        self.duplicatePerMille = duplicatePerMille
        self.delayMinMs = delayMinMs
        self.delayMaxMs = delayMaxMs
        self.healedDelayMaxMs = healedDelayMaxMs
        self.partitions = partitions
        self.crashes = crashes
        self.journalFailures = journalFailures
        self.clockSkewMaxMs = clockSkewMaxMs
        self.faultyPeriodMs = faultyPeriodMs
    }
}

/// One simulated run. Everything random is drawn from ``seed``.
public struct SimulationConfig: Sendable, Hashable {
    public var seed: UInt64
    public var validators: Int
    /// Voting power per validator; `nil` gives every validator power 10.
    public var powers: [UInt64]?
    /// Behaviours of the last `byzantine.count` validators.
    public var byzantine: [ByzantineBehaviour]
    public var faults: FaultConfig
    /// Every honest node must commit at least this many heights.
    public var heights: UInt64
    /// After the faults end, every honest node must commit this many heights beyond the highest
    /// height any honest node had then ...
    public var progressHeights: UInt64
    /// ... within this much simulated time.
    public var progressBoundMs: UInt64
    public var timeouts: TimeoutConfig
    /// Keep every trace line in the result (for replay comparisons); otherwise only a digest and a tail.
    public var recordsFullTrace: Bool

    public init(seed: UInt64, validators: Int, powers: [UInt64]? = nil, byzantine: [ByzantineBehaviour] = [],
                faults: FaultConfig = .standard, heights: UInt64 = 4, progressHeights: UInt64 = 2,
                progressBoundMs: UInt64 = 60_000, timeouts: TimeoutConfig = SimulationConfig.fastTimeouts,
                recordsFullTrace: Bool = false) {
        self.seed = seed
        self.validators = validators
        self.powers = powers
        self.byzantine = byzantine
        self.faults = faults
        self.heights = heights
        self.progressHeights = progressHeights
        self.progressBoundMs = progressBoundMs
        self.timeouts = timeouts
        self.recordsFullTrace = recordsFullTrace
    }

    /// Timeouts scaled to the simulated network's delays.
    public static let fastTimeouts = TimeoutConfig(proposeMs: 400, proposeDeltaMs: 100, prevoteMs: 200,
                                                   prevoteDeltaMs: 100, precommitMs: 200, precommitDeltaMs: 100)
}

/// An invariant that failed.
public struct Violation: Sendable, Hashable, CustomStringConvertible {
    /// `agreement`, `validity`, `progress`, `false_evidence`, `halt` (an honest replica stopped other than on an
    /// injected disk failure), `restart`, `workload`.
    public var invariant: String
    public var message: String
    public var timeMs: UInt64

    public var description: String { "\(invariant) at t=\(timeMs)ms: \(message)" }
}

/// What a run produced.
public struct SimulationResult: Sendable {
    public var seed: UInt64
    public var violations: [Violation]
    /// Each node's committed chain at the end (durable state), honest and Byzantine.
    public var chains: [[CommittedBlock]]
    /// Indices of honest nodes.
    public var honest: [Int]
    public var evidence: [Equivocation]
    /// Events processed.
    public var eventCount: Int
    public var endTimeMs: UInt64
    /// FNV-1a 64 over every trace line: equal digests mean identical runs.
    public var traceDigest: UInt64
    /// The last trace lines (always kept).
    public var traceTail: [String]
    /// Every trace line, when the configuration asked for it.
    public var fullTrace: [String]
    /// Messages the Byzantine validators sent beyond what their honest cores asked for.
    public var hostileMessages: Int
    /// Proposals, votes, blocks and sync replies signed or sent by Byzantine validators that the honest validators
    /// refused (the gate, stale heights, block validation, block sync verification).
    public var refusedByHonest: Int
    /// Transactions whose personal data an honest node got from a peer after committing their block without it.
    public var personalDataRepaired: Int

    /// A report naming the seed, the violations and the trace tail, for a failing test.
    public var failureReport: String {
        let header = "seed \(seed): \(violations.count) violation(s)\n" + violations.map { "  \($0)" }.joined(separator: "\n")
        return header + "\ntrace tail:\n" + traceTail.joined(separator: "\n")
    }
}
