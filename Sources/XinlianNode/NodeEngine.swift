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
    /// Present on a node of a multi-validator consortium.
    public var consensus: ConsensusStatusReport?
}

/// The node's ledger state and its single commit path. All mutation of the ledger happens here.
///
/// With one validator, blocks are produced and certified locally (``BlockProducer``); with several, the
/// Tendermint core drives the same `commit(_:prepared:)` path (`ConsensusDriver.swift`).
public actor NodeEngine {
    /// Rejections remembered for status queries.
    public static let rejectedMemoryLimit = 10_000

    /// Threads outside Swift's cooperative pool on which engines run, each engine on one of them: the block
    /// log's fsync and SQLite block that thread, never the threads that serve the API and verify signatures.
    /// Several, so that engines sharing a process (tests, simulations) do not stall one another.
    public static let storageThreads = MultiThreadedEventLoopGroup(numberOfThreads: 4)

    private nonisolated let storageLoop: any EventLoop
    public nonisolated var unownedExecutor: UnownedSerialExecutor { storageLoop.executor.asUnownedSerialExecutor() }

    public nonisolated let consortium: Consortium
    public nonisolated let validatorID: ValidatorID
    public nonisolated let metrics: NodeMetrics
    nonisolated let logger: Logger
    let store: LedgerStore
    let signer: SignerState
    let dataDirectory: String
    /// Consensus state when the consortium has several validators (see ``startConsensus(link:timeouts:)``).
    var consensus: ConsensusRuntime?
    var connectedPeers: Set<ValidatorID> = []
    /// Height and hash, readable without entering the actor (the network's status frames use it).
    public nonisolated let tip: Mutex<PeerStatus>
    var mempool: Mempool
    private var rejected: [Hash32: VerificationError] = [:]
    private var rejectedOrder: [Hash32] = []
    var lastBlockProducedMs: UInt64 = 0
    private var recentRecords: [CommittedBlock] = []
    private var heightWaiters: [(ticket: UUID, height: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    static let recentRecordsLimit = 8
    nonisolated let now: @Sendable () -> UInt64
    /// How far ahead of this node's clock a reporter's claimed time may be.
    public static let clockSkewLimitMs = TransactionRules.clockSkewLimitMs
    /// Distinct committed transactions one submission may reference (each costs a block read).
    public static let committedReferencesLimit = 256
    private let work: AsyncStream<Void>.Continuation
    /// Signalled when transactions arrive; the block producer waits on it.
    public nonisolated let workSignal: AsyncStream<Void>

    public init(consortium: Consortium, validatorID: ValidatorID, validatorKey: SigningKey, dataDirectory: String,
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
        self.mempool = mempool
        self.now = now
        self.dataDirectory = dataDirectory
        let store = try LedgerStore(dataDirectory: dataDirectory, consortium: consortium)
        self.store = store
        self.tip = Mutex(PeerStatus(height: store.height, lastBlockHash: store.lastBlockHash))
        self.signer = try SignerState(path: dataDirectory + "/signer-state.json", key: validatorKey)
        (workSignal, work) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        if let torn = store.recoveredTornTail {
            logger.warning("truncated a torn block-log tail", metadata: ["tail": "\(torn)"])
        }
        metrics.height.record(Int64(store.height))
    }

    public static let wallClockMs: @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) }

    // MARK: Admission

    /// Stateless checks, run outside the actor so that many requests verify signatures in parallel.
    public nonisolated func check(_ transaction: Transaction) throws(VerificationError) {
        try TransactionRules.check(transaction, consortium: consortium)
        try TransactionRules.checkSubmission(transaction, consortium: consortium)
        // "Not in the future" rules of the credit model are judged against the transaction's own time.
        try TransactionRules.checkTime(transaction, clockMs: now())
    }

    /// Admits an already-checked batch, all or nothing: one transaction refused by the credit model's rules
    /// refuses the batch (the result says which, nothing is added), and a full mempool refuses it with
    /// `mempool_full`. Transactions already pending or committed are reported as such, not added twice.
    /// References (corrections, updates, releases) may point at committed transactions, pending ones, or
    /// earlier ones in the same batch.
    /// With `relay`, newly admitted transactions are forwarded once to every peer (transactions that came from a
    /// peer are not forwarded again: every validator is connected to every other).
    /// `origin` is `.node` for transactions met in gossip (a query record may come that way).
    public func admit(_ transactions: [Transaction], relay: Bool = true,
                      origin: CreditRules.Origin = .api) throws(VerificationError) -> [Admission] {
        var results: [Admission] = []
        var fresh: [Mempool.Entry] = []
        var batch: [Hash32: Transaction] = [:]
        var committedLookups = 0
        let admittedMs = now()
        for transaction in transactions {
            let id = transaction.id(consortium.suite)
            let state = stateOf(id)
            switch state {
            case .pending, .committed:
                results.append(Admission(id: id, state: state))
                continue
            case .unknown, .rejected:
                break
            }
            if batch[id] == nil {
                do {
                    // Whatever the origin (API, gossip, the node's own query record), a pending transaction is
                    // judged against this node's clock: nothing dated past it enters the mempool or a block.
                    try TransactionRules.checkTime(transaction, clockMs: admittedMs)
                    try checkCredit(transaction, batch: batch, committedLookups: &committedLookups, origin: origin)
                } catch {
                    results.append(Admission(id: id, state: .rejected(error)))
                    continue
                }
                batch[id] = transaction
                fresh.append(Mempool.Entry(id: id, transaction: transaction, sizeBytes: transaction.canonicalBytes.count,
                                           admittedMs: admittedMs))
            }
            results.append(Admission(id: id, state: .pending))
        }
        let refused = results.compactMap { if case .rejected(let error) = $0.state { ($0.id, error) } else { nil } }
        guard refused.isEmpty else {
            for (id, error) in refused { recordRejection(id, error) }
            return results
        }
        if let refusal = mempool.refusal(fresh) {
            metrics.rejected.increment(by: Int64(transactions.count))
            throw VerificationError(code: "mempool_full", message: refusal)
        }
        enqueue(fresh, relay: relay)
        return results
    }

    /// Puts admitted transactions in the mempool and gets them decided: wakes the block producer, or (with
    /// consensus) forwards them once to every peer when `relay` and starts the next height if it is waiting.
    func enqueue(_ entries: [Mempool.Entry], relay: Bool) {
        for entry in entries {
            rejected[entry.id] = nil
            mempool.insert(entry)
        }
        metrics.mempoolSize.record(Int64(mempool.count))
        guard !entries.isEmpty else { return }
        work.yield()
        guard let link = consensus?.link else { return }
        if relay { self.relay(entries.map(\.transaction), over: link) }
        maybeStartNextHeight()
    }

    /// Forwards transactions to every peer, in frames of at most ``WireLimits/transactionsPerFrame``.
    func relay(_ transactions: [Transaction], over link: any PeerLink) {
        for start in stride(from: 0, to: transactions.count, by: WireLimits.transactionsPerFrame) {
            link.broadcast(.transactions(Array(transactions[start..<min(start + WireLimits.transactionsPerFrame, transactions.count)])))
        }
    }

    /// The credit model's rules: payload schema, the reporter's role, and references to earlier statements.
    private func checkCredit(_ transaction: Transaction, batch: [Hash32: Transaction],
                             committedLookups: inout Int, origin: CreditRules.Origin) throws(VerificationError) {
        let roles = consortium.institutionRoles[transaction.body.reporter] ?? []
        var lookups = committedLookups
        defer { committedLookups = lookups }
        do {
            _ = try CreditRules.check(transaction: transaction, roles: roles, referenced: { id in
                if let pending = batch[id] ?? mempool.transaction(id) { return pending }
                // Bounded: each committed reference reads a block on the storage thread.
                guard lookups < Self.committedReferencesLimit else { return nil }
                lookups += 1
                return committedTransaction(id)
            }, origin: origin)
        } catch {
            throw VerificationError(code: error.code, message: error.description)
        }
    }

    func committedTransaction(_ id: Hash32) -> Transaction? {
        guard let location = try? store.location(of: id), let record = try? cachedRecord(at: location.height),
              record.block.transactions.indices.contains(location.index) else { return nil }
        return record.block.transactions[location.index]
    }

    /// Recently read blocks: references in a batch usually point at the same few recent blocks.
    func cachedRecord(at height: UInt64) throws -> CommittedBlock {
        if let cached = recentRecords.first(where: { $0.block.header.height == height }) { return cached }
        let record = try store.record(at: height)
        recentRecords.append(record)
        if recentRecords.count > Self.recentRecordsLimit { recentRecords.removeFirst() }
        return record
    }

    /// Remembers why a transaction was refused, so its status can say so.
    public func recordRejection(_ id: Hash32, _ error: VerificationError) {
        if rejected[id] == nil { rejectedOrder.append(id) }
        rejected[id] = error
        metrics.rejected.increment()
        if rejectedOrder.count > Self.rejectedMemoryLimit {
            let excess = rejectedOrder.count - Self.rejectedMemoryLimit
            for id in rejectedOrder[..<excess] { rejected[id] = nil }
            rejectedOrder.removeFirst(excess)
        }
    }

    public func stateOf(_ id: Hash32) -> TransactionState {
        if mempool.contains(id) { return .pending }
        if let location = try? store.location(of: id) { return .committed(location) }
        if let error = rejected[id] { return .rejected(error) }
        return .unknown
    }

    // MARK: Block production (single validator)

    /// True when a block should be produced now: work is waiting, or the heartbeat is due.
    public func hasWork() -> Bool {
        if mempool.count > 0 { return true }
        let heartbeat = consortium.genesis.parameters.heartbeatIntervalMs
        return heartbeat > 0 && now() >= lastBlockProducedMs + heartbeat
    }

    /// Builds, certifies and commits the next block from the mempool. Returns its header, or nil if there was nothing to do.
    @discardableResult
    public func produceBlock() throws -> BlockHeader? {
        guard hasWork() else { return nil }
        let parameters = consortium.genesis.parameters
        let entries = mempool.batch(maxCount: Int(parameters.maxBlockTransactions), maxBytes: Int(parameters.maxBlockBytes))
        let transactions = entries.map(\.transaction)
        let prepared = try store.prepareState(transactions)
        let header = BlockHeader(
            chainID: consortium.chainID, height: store.height + 1, timeMs: max(now(), store.lastHeader?.timeMs ?? 0),
            previousHash: store.lastBlockHash, transactionsRoot: Block.transactionsRoot(transactions, suite: consortium.suite),
            stateRoot: prepared.stateRoot, validatorSetHash: consortium.validators.hash, proposer: validatorID,
            transactionCount: UInt32(transactions.count))
        let certificate = try certify(header)
        let record = CommittedBlock(block: Block(header: header, transactions: transactions), certificate: certificate)
        try commit(record, prepared: prepared, signaturesChecked: true)
        let committedMs = now()
        for entry in entries {
            // A wall clock stepped backwards counts as zero latency rather than a negative one.
            let latencyMs = committedMs > entry.admittedMs ? committedMs - entry.admittedMs : 0
            metrics.commitLatency.recordNanoseconds(Int64(clamping: latencyMs) * 1_000_000)
        }
        return header
    }

    /// Signs this validator's precommit for `header` (through the double-sign guard) and wraps it as a certificate.
    ///
    /// If a precommit was already signed at this height (the process died between signing and the log's
    /// fsync), that signature never left the process; the block is proposed afresh in the next round, as
    /// Tendermint would, so the guard never has to sign two messages at one (height, round, step).
    private func certify(_ header: BlockHeader) throws -> CommitCertificate {
        let blockHash = header.hash(consortium.suite)
        var round: UInt32 = 0
        if let last = signer.last, last.height == header.height { round = last.round + 1 }
        let vote = Vote(chainID: consortium.chainID, kind: .precommit, height: header.height, round: round,
                        blockHash: blockHash, validator: validatorID)
        let signature = try signer.sign(vote.signingBytes, height: header.height, round: round, step: .precommit)
        return CommitCertificate(height: header.height, round: round, blockHash: blockHash,
                                 signatures: [CommitSignature(validator: validatorID, signature: signature)])
    }

    /// The one commit path: verify, append durably to the log and index, then drop the block's transactions
    /// from the mempool. `signaturesChecked` is true only for blocks built here from admitted transactions;
    /// blocks from elsewhere have every signature verified again.
    public func commit(_ record: CommittedBlock, prepared: PreparedState, signaturesChecked: Bool = false) throws {
        try BlockVerifier.checkStructure(record, height: store.height + 1, previousHash: store.lastBlockHash,
                                         previousTimeMs: store.lastHeader?.timeMs ?? consortium.genesis.genesisTimeMs,
                                         consortium: consortium)
        if !signaturesChecked {
            try BlockVerifier.checkSignatures(record.block.transactions[...], consortium: consortium)
        }
        let ids = record.block.transactions.map { $0.id(consortium.suite) }
        guard Set(ids).count == ids.count else {
            throw VerificationError(code: "duplicate_transaction", message: "a transaction appears twice in the block")
        }
        for (index, id) in ids.enumerated() where try store.contains(id) {
            throw VerificationError(code: "duplicate_transaction", message: "transaction \(id) is already committed",
                                    transactionIndex: index)
        }
        try store.append(record, prepared: prepared)
        tip.withLock { $0 = PeerStatus(height: store.height, lastBlockHash: store.lastBlockHash) }
        mempool.remove(ids)
        lastBlockProducedMs = now()
        metrics.height.record(Int64(record.block.header.height))
        if !heightWaiters.isEmpty {
            let reached = store.height
            for waiter in heightWaiters where waiter.height <= reached { waiter.continuation.resume() }
            heightWaiters.removeAll { $0.height <= reached }
        }
        metrics.committed.increment(by: Int64(ids.count))
        metrics.mempoolSize.record(Int64(mempool.count))
        logger.debug("committed block", metadata: ["height": "\(record.block.header.height)", "transactions": "\(ids.count)"])
    }

    // MARK: Reading

    public func status() -> NodeStatus {
        NodeStatus(chainId: consortium.chainID.value, cryptoSuite: consortium.suite.id.rawValue,
                   genesisHash: consortium.genesisHash.hex, validator: validatorID.value, height: store.height,
                   lastBlockHash: store.lastBlockHash.hex, lastBlockTimeMs: store.lastHeader?.timeMs ?? consortium.genesis.genesisTimeMs,
                   stateRoot: store.stateRoot.hex, mempoolSize: mempool.count, syncing: consensus?.sync != nil,
                   consensus: consensus == nil ? nil : consensusReport())
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
                heightWaiters.append((ticket, target, continuation))
            }
        } onCancel: {
            Task { await self.endWait(ticket) }
        }
    }

    private func endWait(_ ticket: UUID) {
        for waiter in heightWaiters where waiter.ticket == ticket { waiter.continuation.resume() }
        heightWaiters.removeAll { $0.ticket == ticket }
    }

    public func record(at height: UInt64) throws -> CommittedBlock { try store.record(at: height) }

    public func location(of id: Hash32) throws -> TransactionLocation? { try store.location(of: id) }

    /// A committed transaction with everything needed to check its inclusion offline. Built outside the
    /// actor: hashing a large block's leaves must not hold up block production.
    public nonisolated func inclusion(of id: Hash32) async throws -> InclusionProof? {
        guard let location = try await location(of: id) else { return nil }
        let record = try await record(at: location.height)
        let leaves = Block.leafHashes(record.block.transactions, suite: consortium.suite)
        let path = try MerkleTree.inclusionProof(index: location.index, leafHashes: leaves,
                                                 hasher: MerkleHasher(suite: consortium.suite))
        return InclusionProof(chainId: consortium.chainID.value, height: location.height, leafIndex: location.index,
                              treeSize: leaves.count, path: path.map(\.hex),
                              transaction: Data(record.block.transactions[location.index].canonicalBytes).base64EncodedString(),
                              header: Data(record.block.header.canonicalBytes).base64EncodedString(),
                              certificate: Data(record.certificate.canonicalBytes).base64EncodedString())
    }

    func signalWork() { work.yield() }

    public func shutdown() {
        work.finish()
        for waiter in heightWaiters { waiter.continuation.resume() }
        heightWaiters = []
        consensus?.journal.close()
        consensus = nil
        store.close()
    }
}
