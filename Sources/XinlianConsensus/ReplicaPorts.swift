import XinlianCore
import XinlianCrypto

// The replica's ports: what it needs from the outside, kept small so that the node (real files, NIO, the wall
// clock) and the simulator (memory, a seeded network, simulated time) run the same ``Replica``. Each is called
// synchronously from the replica's owner (the node's engine actor, or the simulator's single thread).

/// The consensus write-ahead journal of the height being decided (the node's `ConsensusJournal`).
public protocol ReplicaJournal: AnyObject {
    /// Appends one record; with `sync` it is durable when this returns. A failed append leaves no partial record.
    func append(_ record: [UInt8], sync: Bool) throws
    /// Makes every record appended so far durable.
    func sync() throws
    /// Empties the journal (its height was decided).
    func reset() throws
}

/// The double-sign guard with the validator's key (the node's `SignerState`): records the (height, round, step)
/// durably before the signature exists, and refuses to sign a different message at or before it.
public protocol ReplicaSigner: AnyObject {
    /// Throws ``SignerRefusal`` when the guard refuses (it signed something else at or after that position); any
    /// other error means the position could not be recorded, and the replica halts.
    func sign(_ request: SignRequest) throws -> [UInt8]
}

/// The double-sign guard refused a request: this validator already signed a different message at or after it.
public struct SignerRefusal: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The replica's clock: wall time in production, simulated time (with per-node skew) in the simulator.
public protocol ReplicaClock: AnyObject {
    var nowMs: UInt64 { get }
}

/// The committed chain and the pending transactions (the node's block log, index and mempool).
///
/// Every origin of a block meets the same checks here: a block the replica built, a proposal it validates, a
/// block decided by consensus, a block from sync.
public protocol ReplicaLedger: AnyObject {
    var height: UInt64 { get }
    var lastBlockHash: Hash32 { get }
    /// The last block's time (genesis's time before the first block).
    var lastBlockTimeMs: UInt64 { get }
    /// Transactions waiting to be decided.
    var pendingCount: Int { get }
    /// Pending transactions in block order, within the bounds (what re-gossip sends to a silent peer).
    func pending(maxCount: Int, maxBytes: Int) -> [Transaction]
    /// A block of pending transactions on top of the chain, timed `timeMs`, or nil when none can be built.
    func buildBlock(height: UInt64, timeMs: UInt64, proposer: ValidatorID) -> Block?
    /// Everything a validator checks of a proposed block before it prevotes for it, except the clock (the
    /// replica checks that): links and genesis's limits, each transaction's signature, time, uniqueness and
    /// credit rules, and the state root.
    func validate(_ block: Block, hash: Hash32) throws(VerificationError)
    /// Verifies a certified block as ``validate(_:hash:)`` does (unless this ledger validated or built it), checks
    /// its certificate, and appends it durably. A `VerificationError` means the block is at fault; any other error
    /// is this node's own storage.
    func commit(_ record: CommittedBlock) throws
    /// A committed block, or nil when this ledger does not hold that height.
    func record(at height: UInt64) -> CommittedBlock?
    /// Admits transactions a peer gossiped, through the same admission as the API's (origin: a node); returns
    /// how many became pending.
    func admitGossiped(_ transactions: [Transaction]) -> Int
    /// Heights at or above `from` of committed blocks with personal data this ledger never received and the chain
    /// has not erased (a block synced from a peer that left it out, or decided on a certificate alone), lowest
    /// first, at most `limit`.
    func heightsLackingPersonalData(from: UInt64, limit: Int) -> [UInt64]
    /// Keeps the personal data a peer's copy of the committed block at `record`'s height carries for the
    /// transactions noted as lacking it, where it matches the commitment their signed payloads name; returns how
    /// many transactions' data was kept. Nothing else of `record` is used.
    func fillPersonalData(from record: CommittedBlock) -> Int
}

/// A timer the replica asked its owner to fire later (``Replica/fire(_:)``). Timers are never cancelled; one that
/// is stale when it fires does nothing.
public enum ReplicaTimer: Hashable, Sendable {
    /// A consensus step's timeout.
    case consensus(Timeout)
    /// Re-send what is held for an undecided height (``Replica/regossipMs``).
    case regossip(height: UInt64, round: UInt32)
    /// The block interval passed or a heartbeat is due: start the next height if there is something to decide.
    case startWake
    /// Warn when a height stays undecided (``Replica/stallWarningMs``).
    case stallCheck(height: UInt64)
    /// A block-sync request went unanswered (``Replica/syncTimeoutMs``).
    case syncTimeout(serial: UInt64)
    /// Ask a peer for personal data this ledger lacks, or give up on an unanswered request
    /// (``Replica/personalRepairMs``).
    case personalRepair(serial: UInt64)
}

/// What the replica asks its owner to do, in order. The owner carries these out after each call.
public enum ReplicaEffect: Sendable {
    case send(WireMessage, to: ValidatorID)
    case broadcast(WireMessage)
    /// Drop the connection to a peer that broke the protocol (it may come back later).
    case disconnect(ValidatorID, reason: String)
    case schedule(ReplicaTimer, afterMs: UInt64)
    /// Something to log or count; nothing to do.
    case note(ReplicaNote)
}

/// Observations for the owner's logs, metrics and (in the simulator) trace. Carrying them out changes nothing.
public enum ReplicaNote: Sendable {
    case replayed(height: UInt64, entries: Int, round: UInt32, lockedRound: UInt32?)
    /// Something a validator signed or a peer sent was refused (`culprit` signed or sent it).
    case refused(culprit: ValidatorID, reason: String)
    /// A proposed block failed validation: this replica prevotes nil for it.
    case proposalRefused(proposer: ValidatorID, height: UInt64, reason: String)
    /// A message for a height already decided here (a replay, or a slow peer); ignored.
    case stale(signer: ValidatorID, height: UInt64)
    /// The journal budget of `signer` at `height` is spent: further such messages are dropped at this height.
    case journalBudgetSpent(height: UInt64, signer: ValidatorID)
    case journalWriteFailed(error: String)
    case signed(SignedMessage)
    case signRefused(SignRequest, reason: String)
    case evidence(Equivocation)
    case committed(CommittedBlock, syncedFrom: ValidatorID?)
    /// Blocks from one sync reply were verified and committed; the ledger is now at `height`.
    case synced(peer: ValidatorID, count: Int, height: UInt64)
    case syncRequested(peer: ValidatorID, fromHeight: UInt64, count: UInt32, peerHeight: UInt64)
    case syncUnanswered(peer: ValidatorID)
    /// A peer was asked for the personal data of committed blocks from `fromHeight` that this ledger lacks.
    case personalDataRequested(peer: ValidatorID, fromHeight: UInt64, count: UInt32)
    /// A peer's reply to that request gave `kept` transactions' personal data (0: it did not hold it, or withheld
    /// it; the next peer is asked later).
    case personalDataReceived(peer: ValidatorID, kept: Int)
    /// A peer did not answer that request in time, or disconnected first.
    case personalDataUnanswered(peer: ValidatorID)
    /// This node's own storage failed while applying a synced block (nobody is blamed).
    case syncFailedHere(height: UInt64, error: String)
    case stalled(ConsensusStatusReport)
    /// Consensus stopped on this node: it signs nothing more until restarted.
    case halted(reason: String)
}

/// Where consensus stands, for `/v1/status`.
public struct ConsensusStatusReport: Sendable, Codable, Equatable {
    public var height: UInt64
    public var round: UInt32
    public var step: String
    public var lockedRound: UInt32?
    public var peers: [String]
    /// Voting power of this validator plus its connected peers, and the total.
    public var connectedPower: UInt64
    public var totalPower: UInt64
    public var equivocations: Int
    public var syncingFrom: String?
    /// Why consensus stopped on this node, if it did (restart it after fixing the cause).
    public var halted: String?
}

/// Why a replica cannot start.
public struct ReplicaError: Error, Sendable, CustomStringConvertible {
    /// The index of the journal record that does not decode.
    public var record: Int
    public var description: String
}
