import CoreMetrics
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import XinlianConsensus
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianMerkle
import XinlianNetwork
import XinlianStorage

/// Where a transaction stands, as the API reports it.
public enum TransactionState: Sendable, Equatable {
    case pending
    case committed(TransactionLocation)
    case rejected(VerificationError)
    case unknown
}

/// Outcome of admitting one transaction.
public struct Admission: Sendable, Equatable {
    public var id: Hash32
    public var state: TransactionState
}

/// A summary of the node for `/v1/status`.
public struct NodeStatus: Sendable, Codable, Equatable {
    public var chainId: String
    public var cryptoSuite: String
    public var genesisHash: String
    public var validator: String
    public var height: UInt64
    public var lastBlockHash: String
    public var lastBlockTimeMs: UInt64
    public var stateRoot: String
    public var mempoolSize: Int
    public var syncing: Bool
    /// Where consensus stands (present once the replica runs; a one-validator consortium has no peers).
    public var consensus: ConsensusStatusReport?
}

/// The node: its ledger (``NodeLedger``) and its replica (``Replica``), on one storage thread.
///
/// Every consortium runs the replica, a one-validator consortium included (its heights decide at once). The
/// engine carries the replica's effects out with the real parts: the peer link, timers on the wall clock, the
/// log and the metrics (`NodeReplica.swift`).
public actor NodeEngine {
    /// Threads outside Swift's cooperative pool on which engines run, each engine on one of them: the block
    /// log's fsync, SQLite and the block checks (signatures of proposed blocks included) block that thread, never
    /// the threads that serve the API. Several, so that engines sharing a process (tests, simulations) do not
    /// stall one another.
    public static let storageThreads = MultiThreadedEventLoopGroup(numberOfThreads: 4)

    private nonisolated let storageLoop: any EventLoop
    public nonisolated var unownedExecutor: UnownedSerialExecutor { storageLoop.executor.asUnownedSerialExecutor() }

    public nonisolated let consortium: Consortium
    public nonisolated let validatorID: ValidatorID
    public nonisolated let metrics: NodeMetrics
    nonisolated let logger: Logger
    let ledger: NodeLedger
    let signer: SignerState
    /// Refused requests and used signed requests (``AccessRecords``).
    let access: AccessRecords
    let dataDirectory: String
    /// The replica, once ``startConsensus(link:timeouts:)`` ran.
    var replica: Replica?
    var journal: ConsensusJournal?
    var link: (any PeerLink)?
    /// Height and hash, readable without entering the actor (the network's status frames use it).
    public nonisolated let tip: ChainTip
    nonisolated let now: @Sendable () -> UInt64
    /// How far ahead of this node's clock a reporter's claimed time may be.
    public static let clockSkewLimitMs = TransactionRules.clockSkewLimitMs
    /// Rejections remembered for status queries.
    public static let rejectedMemoryLimit = NodeLedger.rejectedMemoryLimit
    /// Distinct committed transactions one submission may reference (each costs an index lookup and a read of its bytes).
    public static let committedReferencesLimit = NodeLedger.committedReferencesLimit

    /// `personalDataKey`: the key of the personal data at rest; by default `personal.key` beside the data
    /// directory, created there (`0600`) when absent.
    public init(consortium: Consortium, validatorID: ValidatorID, validatorKey: SigningKey, dataDirectory: String,
                personalDataKey: PersonalDataKey? = nil,
                mempool: Mempool = Mempool(), metrics: NodeMetrics, logger: Logger,
                now: @escaping @Sendable () -> UInt64 = NodeEngine.wallClockMs) throws {
        guard let member = consortium.validators.member(validatorID) else {
            throw VerificationError(code: "not_a_validator", message: "\(validatorID) is not a validator in genesis")
        }
        guard member.publicKey == validatorKey.publicKey else {
            throw VerificationError(code: "invalid_key_file", message: "validator key does not match genesis for \(validatorID)")
        }
        self.storageLoop = Self.storageThreads.next()
        self.consortium = consortium
        self.validatorID = validatorID
        self.metrics = metrics
        self.logger = logger
        self.now = now
        self.dataDirectory = dataDirectory
        let key: PersonalDataKey
        if let personalDataKey { key = personalDataKey } else {
            let path = PersonalDataKey.defaultPath(forDataDirectory: dataDirectory)
            let loaded = try PersonalDataKey.loadOrCreate(path: path, dataDirectory: dataDirectory)
            if loaded.created { logger.info("created the personal data key", metadata: ["path": "\(path)"]) }
            key = loaded.key
        }
        let store = try LedgerStore(dataDirectory: dataDirectory, consortium: consortium, personalDataKey: key)
        let ledger = NodeLedger(consortium: consortium, store: store, mempool: mempool, metrics: metrics, logger: logger,
                                now: now)
        self.ledger = ledger
        self.tip = ledger.tip
        self.signer = try SignerState(path: dataDirectory + "/signer-state.json", key: validatorKey)
        self.access = try AccessRecords(dataDirectory: dataDirectory, nowMs: now())
        if let torn = store.recoveredTornTail {
            logger.warning("truncated a torn block-log tail", metadata: ["tail": "\(torn)"])
        }
        if let version = store.rebuiltIndex {
            logger.notice("rebuilt the index from the block log", metadata: [
                "from_schema": "\(version)", "to_schema": "\(LedgerIndex.schemaVersion)", "height": "\(store.height)"])
        }
        metrics.height.record(Int64(clamping: store.height))
    }

    public static let wallClockMs: @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) }

    var store: LedgerStore { ledger.store }

    // MARK: Admission

    /// Stateless checks, run outside the actor so that many requests verify signatures in parallel.
    public nonisolated func check(_ transaction: Transaction) throws(VerificationError) {
        try TransactionRules.check(transaction, consortium: consortium)
        try TransactionRules.checkSubmission(transaction, consortium: consortium)
        // "Not in the future" rules of the credit model are judged against the transaction's own time.
        try TransactionRules.checkTime(transaction, clockMs: now())
    }

    /// Admits an already-checked batch, all or nothing (``NodeLedger/admit(_:origin:)``): one transaction refused
    /// by the credit model's rules refuses the batch (the result says which, nothing is added), and a full
    /// mempool refuses it with `mempool_full`. With `relay`, newly admitted transactions are forwarded once to
    /// every peer (transactions that came from a peer are not forwarded again: every validator is connected to
    /// every other). `origin` is `.node` for transactions met in gossip (a query record may come that way).
    public func admit(_ transactions: [Transaction], relay: Bool = true,
                      origin: CreditRules.Origin = .api) throws(VerificationError) -> [Admission] {
        let (results, fresh) = try ledger.admit(transactions, origin: origin)
        admitted(fresh.map(\.transaction), relay: relay)
        return results
    }

    /// Puts entries built here (the node's own query records) in the mempool and gets them decided.
    func enqueue(_ entries: [Mempool.Entry], relay: Bool) throws(VerificationError) {
        try ledger.insert(entries)
        admitted(entries.map(\.transaction), relay: relay)
    }

    private func admitted(_ transactions: [Transaction], relay: Bool) {
        guard !transactions.isEmpty else { return }
        withReplica { $0.transactionsAdmitted(transactions, relay: relay) }
    }

    var mempool: Mempool { ledger.mempool }

    /// Which of `ids` are pending or committed here.
    public func knownTransactions(_ ids: [Hash32]) -> Set<Hash32> {
        Set(ids.filter { ledger.mempool.contains($0) || ((try? store.contains($0)) ?? false) })
    }

    /// Whether the transaction `id` is committed, and the height, read together.
    func commitState(of id: Hash32) -> (committed: Bool, height: UInt64) {
        if case .committed = ledger.stateOf(id) { return (true, store.height) }
        return (false, store.height)
    }

    /// A pending transaction, if this node holds it.
    public func pendingTransaction(_ id: Hash32) -> Transaction? { ledger.mempool.transaction(id) }

    func committedTransaction(_ id: Hash32) -> Transaction? { ledger.committedTransaction(id) }

    /// Remembers why a transaction was refused, so its status can say so.
    public func recordRejection(_ id: Hash32, _ error: VerificationError) { ledger.recordRejection(id, error) }

    public func stateOf(_ id: Hash32) -> TransactionState { ledger.stateOf(id) }

    // MARK: Reading

    public func status() -> NodeStatus {
        NodeStatus(chainId: consortium.chainID.value, cryptoSuite: consortium.suite.id.rawValue,
                   genesisHash: consortium.genesisHash.hex, validator: validatorID.value, height: store.height,
                   lastBlockHash: store.lastBlockHash.hex, lastBlockTimeMs: ledger.lastBlockTimeMs,
                   stateRoot: store.stateRoot.hex, mempoolSize: ledger.mempool.count,
                   syncing: replica?.isSyncing ?? false,
                   consensus: replica?.statusReport())
    }

    public var height: UInt64 { store.height }

    /// Returns once the ledger reaches `target` (at once if it has). Wrap it in a timeout where that matters.
    /// Cancelling the waiting task ends the wait.
    public func waitUntilHeight(_ target: UInt64) async {
        guard store.height < target else { return }
        let ticket = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if Task.isCancelled { return continuation.resume() }
                ledger.heightWaiters.append((ticket, target, continuation))
            }
        } onCancel: {
            Task { await self.endWait(ticket) }
        }
    }

    /// Committed statements whose personal data this node holds, and those whose personal data it never received
    /// (not erased; fetched from peers).
    public func personalDataCounts() throws -> (held: Int, lacking: Int) {
        (try store.personal.count(), try store.personal.missingCount())
    }

    private func endWait(_ ticket: UUID) {
        for waiter in ledger.heightWaiters where waiter.ticket == ticket { waiter.continuation.resume() }
        ledger.heightWaiters.removeAll { $0.ticket == ticket }
    }

    public func record(at height: UInt64) throws -> CommittedBlock { try store.record(at: height) }

    public func location(of id: Hash32) throws -> TransactionLocation? { try store.location(of: id) }

    /// A committed transaction with everything needed to check its inclusion offline. Built outside the
    /// actor: hashing a large block's leaves must not hold up consensus.
    public nonisolated func inclusion(of id: Hash32) async throws -> InclusionProof? {
        guard let location = try await location(of: id) else { return nil }
        let record = try await record(at: location.height)
        let leaves = Block.leafHashes(record.block.transactions, suite: consortium.suite)
        let path = try MerkleTree.inclusionProof(index: location.index, leafHashes: leaves,
                                                 hasher: MerkleHasher(suite: consortium.suite))
        return InclusionProof(chainId: consortium.chainID.value, height: location.height, leafIndex: location.index,
                              treeSize: leaves.count, path: path.map(\.hex), leafHash: leaves[location.index].hex,
                              transaction: Data(record.block.transactions[location.index].canonicalBytes).base64EncodedString(),
                              header: Data(record.block.header.canonicalBytes).base64EncodedString(),
                              certificate: Data(record.certificate.canonicalBytes).base64EncodedString())
    }

    // MARK: Access

    /// Records a refused request of an institution whose signature verified (durably, before it is answered).
    public func recordRefusal(_ refusal: Refusal) {
        do {
            let recorded = try access.recordRefusal(refusal, nowMs: now())
            metrics.refusals.increment()
            logger.notice("request refused", metadata: [
                "institution": "\(recorded.institution)", "code": "\(recorded.code)", "target": "\(recorded.target)",
            ])
        } catch {
            logger.error("recording a refusal failed", metadata: ["error": "\(error)"])
        }
    }

    /// Refusals after `sequence`, oldest first.
    public func refusals(after sequence: UInt64, limit: Int) -> [Refusal] { access.refusals(after: sequence, limit: limit) }

    /// Marks a signed request used; false when it was used before within its validity window (a replay).
    func useSignedRequest(_ signature: [UInt8], timeMs: UInt64) throws -> Bool {
        try access.use(request: consortium.suite.hash(signature), expiresMs: timeMs &+ Self.clockSkewLimitMs, nowMs: now())
    }

    func wasRefused(query id: Hash32) -> Bool { access.wasRefused(query: id, nowMs: now()) }

    public func shutdown() {
        for waiter in ledger.heightWaiters { waiter.continuation.resume() }
        ledger.heightWaiters = []
        journal?.close()
        journal = nil
        access.close()
        replica = nil
        link = nil
        store.close()
    }
}
