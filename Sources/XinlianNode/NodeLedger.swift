import CoreMetrics
import Foundation
import Logging
import Synchronization
import XinlianConsensus
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianStorage

/// The node's ledger as its replica sees it (``ReplicaLedger``): the block log and index, the mempool and the
/// memory of refusals, with the one admission and the one commit path every origin goes through.
///
/// Owned by its ``NodeEngine`` and used only on the engine's executor (it is not `Sendable`).
final class NodeLedger: ReplicaLedger {
    let consortium: Consortium
    let store: LedgerStore
    let metrics: NodeMetrics
    let logger: Logger
    let now: @Sendable () -> UInt64
    /// Height and hash, readable without entering the engine (the network's status frames use it).
    let tip: ChainTip
    var mempool: Mempool
    private var rejected: [Hash32: VerificationError] = [:]
    private var rejectedOrder: [Hash32] = []
    /// The first storage fault a reference lookup met since it was last taken (``committedTransaction(_:)``): the
    /// rules saw "not committed", which must not be taken for a verdict on the transaction or its block.
    private var lookupFault: (any Error)?
    /// Prepared state of blocks built or validated at the current height, newest last.
    private var prepared: [(hash: Hash32, state: PreparedState, personal: [Hash32: PersonalData])] = []
    var heightWaiters: [(ticket: UUID, height: UInt64, continuation: CheckedContinuation<Void, Never>)] = []

    /// Rejections remembered for status queries.
    static let rejectedMemoryLimit = 10_000
    /// Prepared states kept per height (each holds the block's new state-tree nodes).
    static let preparedLimit = 16
    /// Distinct committed transactions one submission may reference (each costs an index lookup and a read).
    static let committedReferencesLimit = 256
    /// Threads that check the signatures of a block's transactions this node has not admitted itself (a synced
    /// block, a proposal of transactions it never saw): every core, the engine's thread among them.
    let signatureWorkers = max(1, ProcessInfo.processInfo.activeProcessorCount)

    init(consortium: Consortium, store: LedgerStore, mempool: Mempool, metrics: NodeMetrics, logger: Logger,
         now: @escaping @Sendable () -> UInt64) {
        self.consortium = consortium
        self.store = store
        self.mempool = mempool
        self.metrics = metrics
        self.logger = logger
        self.now = now
        tip = ChainTip(PeerStatus(height: store.height, lastBlockHash: store.lastBlockHash))
    }

    var suite: CryptoSuite { consortium.suite }

    // MARK: ReplicaLedger

    var height: UInt64 { store.height }
    var lastBlockHash: Hash32 { store.lastBlockHash }
    var lastBlockTimeMs: UInt64 { store.lastHeader?.timeMs ?? consortium.genesis.genesisTimeMs }
    var pendingCount: Int { mempool.count }

    func pending(maxCount: Int, maxBytes: Int) -> [Transaction] {
        mempool.batch(maxCount: maxCount, maxBytes: maxBytes).map(\.transaction)
    }

    func buildBlock(height: UInt64, timeMs: UInt64, proposer: ValidatorID) -> Block? {
        guard height == store.height + 1 else { return nil }
        expire()
        let parameters = consortium.genesis.parameters
        // A transaction dated past the block's time plus the skew (this node's clock stepped back since it was
        // admitted) would make every validator refuse the block: it waits in the mempool for a later block.
        let latest = TransactionRules.latestTimeMs(clockMs: timeMs)
        let entries = mempool.batch(maxCount: Int(parameters.maxBlockTransactions), maxBytes: Int(parameters.maxBlockBytes))
            .filter { $0.transaction.body.timeMs <= latest }
        var transactions = entries.map(\.transaction)
        // What other validators would refuse (a reference that no longer resolves) leaves the mempool now.
        _ = takeLookupFault()
        let failures = creditFailures(transactions)
        if let fault = takeLookupFault() {
            // Nothing is refused on a lookup this node could not do: no block from here this round.
            logger.error("building a block failed", metadata: ["height": "\(height)", "error": "\(fault)"])
            return nil
        }
        if !failures.isEmpty {
            for index in failures.keys.sorted() {
                recordRejection(entries[index].id, failures[index] ?? VerificationError(code: "invalid", message: ""))
            }
            mempool.remove(failures.keys.map { entries[$0].id })
            transactions = entries.indices.filter { failures[$0] == nil }.map { entries[$0].transaction }
        }
        do {
            let state = try store.prepareState(transactions)
            let header = BlockHeader(
                chainID: consortium.chainID, height: height, timeMs: timeMs, previousHash: store.lastBlockHash,
                transactionsRoot: Block.transactionsRoot(transactions, suite: suite), stateRoot: state.stateRoot,
                validatorSetHash: consortium.validators.hash, proposer: proposer,
                transactionCount: UInt32(transactions.count))
            let block = Block(header: header, transactions: transactions)
            remember(state, for: header.hash(suite), block: block)
            return block
        } catch {
            logger.error("building a block failed", metadata: ["height": "\(height)", "error": "\(error)"])
            return nil
        }
    }

    func validate(_ block: Block, hash: Hash32) throws(VerificationError) {
        try BlockVerifier.checkBlock(block, height: store.height + 1, previousHash: store.lastBlockHash,
                                     previousTimeMs: lastBlockTimeMs, consortium: consortium)
        // A proposal must carry the personal data of its transactions: every validator checks it as the API does.
        do { remember(try checkContents(block, personalRequired: true), for: hash, block: block) } catch let error as VerificationError {
            throw error
        } catch {
            // This node cannot tell whether the block is valid: it prevotes nil (the log says why).
            logger.error("validating a proposed block failed here", metadata: ["error": "\(error)"])
            throw VerificationError(code: "storage_unavailable", message: "this node could not read its ledger: \(error)")
        }
    }

    func commit(_ record: CommittedBlock) throws {
        let hash = record.block.header.hash(suite)
        // Personal data that does not match its commitment (a sync peer's junk) is dropped before anything else.
        var record = record
        record.block.transactions = withHeldPersonalData(record.block.transactions.map { $0.keepingMatchingPersonalData(suite) })
        try BlockVerifier.checkStructure(record, height: store.height + 1, previousHash: store.lastBlockHash,
                                         previousTimeMs: lastBlockTimeMs, consortium: consortium)
        // A block built or validated here passed every check then; any other (decided on a proposal this node
        // never validated, or synced) meets them now: a quorum that certified a block breaking the rules is not
        // followed.
        // A certified block may reach this node without some personal data (a proposer that sent it to others
        // only, a peer that no longer holds it): it is committed, and the data is shown as not held here.
        let kept = prepared.last(where: { $0.hash == hash })
        // Personal data of a block this node built or validated (it held all of it then) is kept, even when the
        // certified copy came without it: a proposer that kept the decision to itself and synced everyone a
        // stripped copy leaves every validator that validated its block holding the data.
        if let personal = kept?.personal, !personal.isEmpty {
            record.block.transactions = record.block.transactions.map { transaction in
                guard transaction.personal == nil, let data = personal[transaction.id(suite)] else { return transaction }
                var carried = transaction
                carried.personal = data
                return carried
            }
        }
        let state = try kept?.state ?? checkContents(record.block, personalRequired: false)
        try append(record, prepared: state)
    }

    /// `transactions` with personal data they lack taken from the identical transactions in the mempool.
    private func withHeldPersonalData(_ transactions: [Transaction]) -> [Transaction] {
        transactions.map { transaction in
            guard transaction.personal == nil, let pending = mempool.transaction(transaction.id(suite)),
                  pending == transaction, pending.personal != nil else { return transaction }
            return pending
        }
    }

    /// A committed block as peers get it (block sync): with the personal data this node still holds.
    func record(at height: UInt64) -> CommittedBlock? {
        guard height >= 1, height <= store.height else { return nil }
        return try? store.recordWithPersonalData(at: height)
    }

    func heightsLackingPersonalData(from: UInt64, limit: Int) -> [UInt64] {
        do {
            let heights = try store.personal.missingHeights(from: from, limit: limit)
            metrics.personalDataLacking.record(heights.isEmpty ? 0 : try store.personal.missingCount())
            return heights
        } catch {
            logger.error("reading which personal data this node lacks failed", metadata: ["error": "\(error)"])
            return []
        }
    }

    func fillPersonalData(from record: CommittedBlock) -> Int {
        do {
            let kept = try store.personal.fill(record.block.transactions, height: record.block.header.height, suite: suite)
            if kept > 0 { metrics.personalDataLacking.record(try store.personal.missingCount()) }
            return kept
        } catch {
            logger.error("keeping personal data a peer gave failed", metadata: ["error": "\(error)"])
            return 0
        }
    }

    func admitGossiped(_ transactions: [Transaction]) -> Int {
        var admitted = 0
        for transaction in transactions {
            // One at a time: one refused transaction does not refuse the others a peer forwarded with it.
            guard let (_, fresh) = try? admit([transaction], origin: .node) else { continue }
            admitted += fresh.count
        }
        return admitted
    }

    // MARK: Admission

    /// Admits an already-checked batch, all or nothing: one transaction refused by the credit model's rules
    /// refuses the batch (the result says which, nothing is added), and a full mempool refuses it with
    /// `mempool_full`. Transactions already pending or committed are reported as such, not added twice.
    /// References (corrections, updates, releases) may point at committed transactions, pending ones, or
    /// earlier ones in the same batch. Returns each transaction's state and the entries newly pending.
    func admit(_ transactions: [Transaction], origin: CreditRules.Origin) throws(VerificationError)
        -> (results: [Admission], fresh: [Mempool.Entry]) {
        expire()
        _ = takeLookupFault()
        var results: [Admission] = []
        var fresh: [Mempool.Entry] = []
        var batch: [Hash32: Transaction] = [:]
        var committedLookups = 0
        let admittedMs = now()
        for transaction in transactions {
            let id = transaction.id(suite)
            let state = stateOf(id)
            switch state {
            case .pending, .committed:
                results.append(Admission(id: id, state: state))
                continue
            case .unknown, .rejected:
                break
            }
            if batch[id] == nil {
                let statement: CreditStatement
                do {
                    // Whatever the origin (API, gossip, the node's own query record), a pending transaction is
                    // judged against this node's clock: nothing dated past it enters the mempool or a block.
                    statement = try LedgerRules.checkPending(transaction, consortium: consortium, clockMs: admittedMs, origin: origin,
                                                 referenced: { id in
                        if let pending = batch[id] ?? mempool.transaction(id) { return pending }
                        // Bounded: each committed reference is an index lookup and a read on the storage thread.
                        guard committedLookups < Self.committedReferencesLimit else { return nil }
                        committedLookups += 1
                        return committedTransaction(id)
                    })
                } catch {
                    if let fault = takeLookupFault() {
                        // The node could not read a referenced statement: the submitter is told to retry, and
                        // nothing is remembered as refused.
                        throw VerificationError(code: "storage_unavailable", message: "this node could not read its ledger: \(fault)")
                    }
                    results.append(Admission(id: id, state: .rejected(error)))
                    continue
                }
                batch[id] = transaction
                fresh.append(Mempool.Entry(id: id, transaction: transaction, sizeBytes: transaction.carriedBytes,
                                           admittedMs: admittedMs, statement: statement))
            }
            results.append(Admission(id: id, state: .pending))
        }
        let refused = results.compactMap { if case .rejected(let error) = $0.state { ($0.id, error) } else { nil } }
        guard refused.isEmpty else {
            for (id, error) in refused { recordRejection(id, error) }
            return (results, [])
        }
        try insert(fresh)
        return (results, fresh)
    }

    /// Drops transactions that waited longer than the mempool's expiry; their status says `expired`.
    func expire() {
        let expired = mempool.expire(nowMs: now())
        guard !expired.isEmpty else { return }
        for entry in expired {
            recordRejection(entry.id, VerificationError(code: "expired",
                                                        message: "not decided within \(mempool.expiryMs / 1000) s; submit it again"))
        }
        metrics.mempoolSize.record(Int64(mempool.count))
        logger.notice("expired pending transactions", metadata: ["count": "\(expired.count)"])
    }

    /// Puts admitted entries in the mempool, or refuses them all with `mempool_full` (the whole mempool, or the
    /// reporter's share of it).
    func insert(_ entries: [Mempool.Entry]) throws(VerificationError) {
        if let refusal = mempool.refusal(entries) {
            metrics.rejected.increment(by: Int64(entries.count))
            throw VerificationError(code: "mempool_full", message: refusal)
        }
        for entry in entries {
            rejected[entry.id] = nil
            mempool.insert(entry)
        }
        metrics.mempoolSize.record(Int64(mempool.count))
    }

    /// The committed transaction `id` (without personal data), read from its own bytes in the block log; nil when it
    /// is not committed, or when this node cannot read it (the fault is kept for ``takeLookupFault()`` and logged).
    func committedTransaction(_ id: Hash32) -> Transaction? {
        do {
            guard let indexed = try store.indexedTransaction(id) else { return nil }
            return try store.transaction(indexed)
        } catch {
            if lookupFault == nil {
                logger.error("reading a committed transaction failed", metadata: ["id": "\(id)", "error": "\(error)"])
                lookupFault = error
            }
            return nil
        }
    }

    /// The storage fault a reference lookup met since the last call, cleared: a refusal made while it was set
    /// says nothing about the transaction (this node could not read what it references).
    func takeLookupFault() -> (any Error)? {
        defer { lookupFault = nil }
        return lookupFault
    }

    /// Remembers why a transaction was refused, so its status can say so.
    func recordRejection(_ id: Hash32, _ error: VerificationError) {
        if rejected[id] == nil { rejectedOrder.append(id) }
        rejected[id] = error
        metrics.rejected.increment()
        if rejectedOrder.count > Self.rejectedMemoryLimit {
            let excess = rejectedOrder.count - Self.rejectedMemoryLimit
            for id in rejectedOrder[..<excess] { rejected[id] = nil }
            rejectedOrder.removeFirst(excess)
        }
    }

    func stateOf(_ id: Hash32) -> TransactionState {
        if mempool.contains(id) { return .pending }
        if let location = try? store.location(of: id) { return .committed(location) }
        if let error = rejected[id] { return .rejected(error) }
        return .unknown
    }

    // MARK: Blocks

    /// A block's transactions, whoever proposed or certified it (``LedgerRules/checkTransactions``), and its
    /// state root. Returns the prepared state. A `VerificationError` blames the block; any other error is this
    /// node's storage (block sync then blames nobody).
    private func checkContents(_ block: Block, personalRequired: Bool) throws -> PreparedState {
        let ids = block.transactions.map { $0.id(suite) }
        var committed: Set<Hash32> = []
        for id in ids where try store.contains(id) { committed.insert(id) }
        // A transaction identical to one in the mempool (body *and* signature: the id leaves the signature out)
        // was fully checked when it was admitted, so its signature is not verified a second time.
        _ = takeLookupFault()
        do {
            try LedgerRules.checkTransactions(block.transactions, consortium: consortium, personalRequired: personalRequired,
                                              workers: signatureWorkers, decoded: admittedStatement,
                                              alreadyChecked: { id, transaction in mempool.transaction(id) == transaction },
                                              isCommitted: { committed.contains($0) }, committed: committedTransaction)
        } catch {
            // A reference this node could not read is its own storage's fault, not the block's.
            if let fault = takeLookupFault() { throw fault }
            throw error
        }
        if let fault = takeLookupFault() { throw fault }
        let state = try store.prepareState(block.transactions)
        guard state.stateRoot == block.header.stateRoot else {
            throw VerificationError(code: "bad_state_root", message: "state root does not match the transactions")
        }
        return state
    }

    private func creditFailures(_ transactions: [Transaction]) -> [Int: VerificationError] {
        LedgerRules.creditFailures(transactions, consortium: consortium, decoded: admittedStatement,
                                   committed: committedTransaction)
    }

    /// The statement `transaction` decoded to when this node admitted it, if it is the identical transaction with
    /// the identical personal data (the id leaves the signature and the personal data out).
    private func admittedStatement(_ id: Hash32, _ transaction: Transaction) -> CreditStatement? {
        guard let entry = mempool.entry(id), entry.transaction == transaction,
              entry.transaction.personal == transaction.personal else { return nil }
        return entry.statement
    }

    /// Keeps a block's prepared state for its commit, bounded (a commit of a block whose state was let go
    /// checks and prepares it again).
    private func remember(_ state: PreparedState, for hash: Hash32, block: Block) {
        prepared.removeAll { $0.hash == hash }
        if prepared.count >= Self.preparedLimit { prepared.removeFirst() }
        var personal: [Hash32: PersonalData] = [:]
        for transaction in block.transactions { if let data = transaction.personal { personal[transaction.id(suite)] = data } }
        prepared.append((hash, state, personal))
    }

    /// Appends a verified block durably to the log and index, then drops its transactions from the mempool.
    private func append(_ record: CommittedBlock, prepared state: PreparedState) throws {
        let ids = record.block.transactions.map { $0.id(suite) }
        var committed: Set<Hash32> = []
        for id in ids where try store.contains(id) { committed.insert(id) }
        try LedgerRules.checkUnique(ids, isCommitted: { committed.contains($0) })
        try store.append(record, prepared: state)
        prepared = []
        tip.withLock { $0 = PeerStatus(height: store.height, lastBlockHash: store.lastBlockHash) }
        let committedMs = now()
        for id in ids {
            guard let entry = mempool.entry(id) else { continue }
            // A wall clock stepped backwards counts as zero latency rather than a negative one.
            let latencyMs = committedMs > entry.admittedMs ? committedMs - entry.admittedMs : 0
            metrics.commitLatency.recordNanoseconds(Int64(clamping: latencyMs) &* 1_000_000)
        }
        mempool.remove(ids)
        metrics.height.record(Int64(clamping: record.block.header.height))
        if !heightWaiters.isEmpty {
            let reached = store.height
            for waiter in heightWaiters where waiter.height <= reached { waiter.continuation.resume() }
            heightWaiters.removeAll { $0.height <= reached }
        }
        metrics.committed.increment(by: Int64(ids.count))
        metrics.mempoolSize.record(Int64(mempool.count))
        logger.debug("committed block", metadata: ["height": "\(record.block.header.height)", "transactions": "\(ids.count)"])
    }
}

/// The committed height and hash, readable from any thread without entering the engine.
public final class ChainTip: Sendable {
    private let state: Mutex<PeerStatus>

    init(_ status: PeerStatus) {
        state = Mutex(status)
    }

    public func withLock<Result: Sendable>(_ body: (inout PeerStatus) -> Result) -> Result {
        state.withLock { body(&$0) }
    }
}
