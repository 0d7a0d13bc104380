import XinlianConsensus
import XinlianCore
import XinlianCredit
import XinlianCrypto

// The simulator's implementations of the replica's ports: memory instead of files, simulated time. Each is durable
// across a simulated crash exactly as its real counterpart is (the journal keeps what was synced, the signer guard
// and the chain everything, the mempool nothing).

/// A journal in memory. Records appended without `sync` are lost, wholly or in part, by a crash (a torn write);
/// an append may be made to fail (a full disk), leaving nothing behind, as the real journal guarantees.
final class SimJournal: ReplicaJournal {
    private(set) var records: [[UInt8]] = []
    private(set) var syncedCount = 0
    /// The next append fails.
    var failNextAppend = false

    struct InjectedFailure: Error, CustomStringConvertible {
        var description: String { "injected journal write failure" }
    }

    func append(_ record: [UInt8], sync: Bool) throws {
        if failNextAppend {
            failNextAppend = false
            throw InjectedFailure()
        }
        records.append(record)
        if sync { syncedCount = records.count }
    }

    func sync() throws { syncedCount = records.count }

    func reset() throws {
        records = []
        syncedCount = 0
    }

    /// A crash: of the records not yet synced, the first `keptUnsynced` reached the disk, the rest did not.
    func crash(keptUnsynced: Int) {
        records = Array(records.prefix(syncedCount + max(0, min(keptUnsynced, records.count - syncedCount))))
        syncedCount = records.count
        failNextAppend = false
    }

    var unsyncedCount: Int { records.count - syncedCount }
}

/// The double-sign guard in memory, with the rules of the node's `SignerState`: never sign a different message at
/// or before the last (height, round, step) signed; the identical message is signed again.
final class SimSigner: ReplicaSigner {
    let key: SigningKey
    private(set) var last: (height: UInt64, round: UInt32, step: ConsensusStep, bytes: [UInt8], signature: [UInt8])?

    /// The process dies inside the next signature, after the guard recorded its position and before the signature
    /// is returned: the window where the guard is ahead of the journal.
    var crashInsideNextSign = false
    /// Set when that crash happened (the world then crashes the node, discarding what the step would have done).
    private(set) var crashedInside = false

    struct CrashedInside: Error, CustomStringConvertible {
        var description: String { "the process died inside the signer" }
    }

    init(key: SigningKey) {
        self.key = key
    }

    func sign(_ request: SignRequest) throws -> [UInt8] {
        let bytes = request.signingBytes
        if let last {
            let position = (last.height, last.round, last.step.rawValue)
            let requested = (request.height, request.round, request.step.rawValue)
            if requested == position {
                guard last.bytes == bytes else { throw SignerRefusal("a second message at \(position)") }
                return last.signature
            }
            guard requested > position else { throw SignerRefusal("\(requested) is before \(position)") }
        }
        let signature = try key.sign(bytes)
        last = (request.height, request.round, request.step, bytes, signature)
        if crashInsideNextSign {
            crashInsideNextSign = false
            crashedInside = true
            throw CrashedInside()
        }
        return signature
    }

    /// Signs without the guard: what a Byzantine validator does.
    func rawSign(_ bytes: [UInt8]) -> [UInt8] {
        (try? key.sign(bytes)) ?? []
    }

    /// After the simulated crash: the guard's record is durable, the flag is not.
    func restarted() { crashedInside = false }

    var position: String {
        guard let last else { return "nothing" }
        return "h\(last.height) r\(last.round) \(last.step)"
    }
}

/// Simulated time as one node sees it: the world's clock plus this node's skew.
final class SimClock: ReplicaClock {
    var worldMs: UInt64 = 0
    let skewMs: Int64

    init(skewMs: Int64) {
        self.skewMs = skewMs
    }

    var nowMs: UInt64 {
        let base = SimulatedConsortium.genesisTimeMs &+ worldMs
        return skewMs >= 0 ? base &+ UInt64(skewMs) : base &- UInt64(-skewMs)
    }
}

/// A ledger in memory: the chain, the committed transactions, and a mempool. Admission and block checks are the
/// node's (``LedgerRules``, `TransactionRules`, `BlockVerifier`); only the state tree is left out (blocks carry a
/// zero state root).
final class SimLedger: ReplicaLedger {
    let consortium: Consortium
    private(set) var chain: [CommittedBlock] = []
    private var committed: [Hash32: Transaction] = [:]
    private var mempool: [Hash32: Transaction] = [:]
    private var order: [Hash32] = []
    /// Blocks built or validated here at the current height, with the personal data they carried (by transaction).
    private var checked: [Hash32: [Hash32: PersonalData]] = [:]
    /// Verified records, shared by every ledger of a run (verification is a pure function).
    let verified: VerifiedRecords

    /// Pending transactions kept (as the node's mempool, bounded).
    static let mempoolLimit = 1_024

    /// The node's clock, for admission.
    let clock: SimClock

    init(consortium: Consortium, verified: VerifiedRecords, clock: SimClock) {
        self.consortium = consortium
        self.verified = verified
        self.clock = clock
    }

    var suite: CryptoSuite { consortium.suite }
    var height: UInt64 { UInt64(chain.count) }
    var lastBlockHash: Hash32 { chain.last?.block.header.hash(suite) ?? consortium.genesisHash }
    var lastBlockTimeMs: UInt64 { chain.last?.block.header.timeMs ?? consortium.genesis.genesisTimeMs }
    var pendingCount: Int { mempool.count }

    func pending(maxCount: Int, maxBytes: Int) -> [Transaction] {
        var picked: [Transaction] = []
        var bytes = 0
        for id in order {
            guard picked.count < maxCount, let transaction = mempool[id] else { break }
            let size = transaction.carriedBytes
            guard bytes + size <= maxBytes else { break }
            bytes += size
            picked.append(transaction)
        }
        return picked
    }

    func buildBlock(height: UInt64, timeMs: UInt64, proposer: ValidatorID) -> Block? {
        guard height == self.height + 1 else { return nil }
        let parameters = consortium.genesis.parameters
        let latest = TransactionRules.latestTimeMs(clockMs: timeMs)
        let candidates = pending(maxCount: Int(parameters.maxBlockTransactions), maxBytes: Int(parameters.maxBlockBytes))
            .filter { $0.body.timeMs <= latest }
        let failures = LedgerRules.creditFailures(candidates, consortium: consortium, committed: { self.committed[$0] })
        for index in failures.keys { remove(candidates[index].id(suite)) }
        let transactions = candidates.indices.filter { failures[$0] == nil }.map { candidates[$0] }
        let block = makeBlock(height: height, timeMs: timeMs, proposer: proposer, transactions: transactions)
        checked[block.header.hash(suite)] = personalData(of: block)
        return block
    }

    /// A block over `transactions` on top of this chain (hostile validators build theirs with it too).
    func makeBlock(height: UInt64, timeMs: UInt64, proposer: ValidatorID, transactions: [Transaction]) -> Block {
        let header = BlockHeader(chainID: consortium.chainID, height: height, timeMs: timeMs, previousHash: lastBlockHash,
                                 transactionsRoot: Block.transactionsRoot(transactions, suite: suite), stateRoot: .zero,
                                 validatorSetHash: consortium.validators.hash, proposer: proposer,
                                 transactionCount: UInt32(transactions.count))
        return Block(header: header, transactions: transactions)
    }

    func validate(_ block: Block, hash: Hash32) throws(VerificationError) {
        try BlockVerifier.checkBlock(block, height: height + 1, previousHash: lastBlockHash,
                                     previousTimeMs: lastBlockTimeMs, consortium: consortium)
        try checkContents(block)
        checked[hash] = personalData(of: block)
    }

    private func personalData(of block: Block) -> [Hash32: PersonalData] {
        var personal: [Hash32: PersonalData] = [:]
        for transaction in block.transactions { if let data = transaction.personal { personal[transaction.id(suite)] = data } }
        return personal
    }

    private func checkContents(_ block: Block, personalRequired: Bool = true) throws(VerificationError) {
        try LedgerRules.checkTransactions(block.transactions, consortium: consortium, personalRequired: personalRequired,
                                          alreadyChecked: { id, transaction in
                                              self.mempool[id] == transaction || self.verified.checked(transaction)
                                          },
                                          isCommitted: { self.committed[$0] != nil }, committed: { self.committed[$0] })
        guard block.header.stateRoot == .zero else {
            throw VerificationError(code: "bad_state_root", message: "state root does not match the transactions")
        }
    }

    func commit(_ record: CommittedBlock) throws {
        let hash = record.block.header.hash(suite)
        if !verified.contains(record) {
            try BlockVerifier.checkStructure(record, height: height + 1, previousHash: lastBlockHash,
                                             previousTimeMs: lastBlockTimeMs, consortium: consortium)
            verified.insert(record)
        } else {
            try BlockVerifier.checkBlock(record.block, height: height + 1, previousHash: lastBlockHash,
                                         previousTimeMs: lastBlockTimeMs, consortium: consortium)
        }
        // A certified block may come without some personal data (a sync peer left it out), as at the node.
        if checked[hash] == nil { try checkContents(record.block, personalRequired: false) }
        // As at the node: what a block came without is taken from the mempool's copy, or from the copy this ledger
        // built or validated.
        var record = record
        let validated = checked[hash] ?? [:]
        record.block.transactions = record.block.transactions.map { transaction in
            var kept = transaction.keepingMatchingPersonalData(suite)
            guard kept.personal == nil else { return kept }
            let id = transaction.id(suite)
            if let pending = mempool[id], pending.personal != nil { return pending }
            kept.personal = validated[id]
            return kept
        }
        let ids = record.block.transactions.map { $0.id(suite) }
        try LedgerRules.checkUnique(ids, isCommitted: { self.committed[$0] != nil })
        for (id, transaction) in zip(ids, record.block.transactions)
        where transaction.personal == nil && transaction.personalCommitment != nil {
            lacking[id] = UInt64(chain.count + 1)
        }
        chain.append(record)
        for (id, transaction) in zip(ids, record.block.transactions) {
            committed[id] = transaction
            remove(id)
        }
        checked = [:]
    }

    func record(at height: UInt64) -> CommittedBlock? {
        guard height >= 1, height <= self.height else { return nil }
        return chain[Int(height - 1)]
    }

    func admitGossiped(_ transactions: [Transaction]) -> Int {
        transactions.reduce(0) { $0 + (admit($1, origin: .node) ? 1 : 0) }
    }

    /// Committed transactions whose personal data this ledger never received, by id: their heights.
    private(set) var lacking: [Hash32: UInt64] = [:]

    func heightsLackingPersonalData(from: UInt64, limit: Int) -> [UInt64] {
        Array(Set(lacking.values.filter { $0 >= from }).sorted().prefix(limit))
    }

    func fillPersonalData(from record: CommittedBlock) -> Int {
        let height = record.block.header.height
        guard height >= 1, height <= self.height else { return 0 }
        var kept = 0
        for transaction in record.block.transactions {
            let matching = transaction.keepingMatchingPersonalData(suite)
            let id = transaction.id(suite)
            guard matching.personal != nil, lacking[id] == height,
                  let index = chain[Int(height - 1)].block.transactions.firstIndex(where: { $0.id(suite) == id }) else { continue }
            chain[Int(height - 1)].block.transactions[index] = matching
            committed[id] = matching
            lacking[id] = nil
            kept += 1
        }
        return kept
    }

    /// The node's admission (signature checked by the caller or here, then ``LedgerRules/checkPending``): true when
    /// the transaction became pending.
    func admit(_ transaction: Transaction, origin: CreditRules.Origin) -> Bool {
        let id = transaction.id(suite)
        guard mempool[id] == nil, committed[id] == nil, mempool.count < Self.mempoolLimit else { return false }
        do {
            try verified.check(transaction, consortium: consortium)
            try LedgerRules.checkPending(transaction, consortium: consortium, clockMs: clock.nowMs,
                                         origin: origin, referenced: { self.mempool[$0] ?? self.committed[$0] })
        } catch {
            return false
        }
        mempool[id] = transaction
        order.append(id)
        return true
    }

    private func remove(_ id: Hash32) {
        guard mempool.removeValue(forKey: id) != nil else { return }
        order.removeAll { $0 == id }
    }

    /// A crash: the mempool is memory only.
    func crash() {
        mempool = [:]
        order = []
        checked = [:]
    }
}

/// What was verified once in a run, shared by every node of it (verification is a pure function, so this cannot
/// change a run; it only spares the simulator repeating signature checks): committed records whose certificates
/// verified, and transactions that passed `TransactionRules.check`.
final class VerifiedRecords {
    private var records: Set<CommittedBlock> = []
    private var transactions: Set<Transaction> = []
    func contains(_ record: CommittedBlock) -> Bool { records.contains(record) }
    func insert(_ record: CommittedBlock) { records.insert(record) }

    /// `TransactionRules.check`, once per distinct transaction.
    func check(_ transaction: Transaction, consortium: Consortium, index: Int? = nil) throws(VerificationError) {
        guard !transactions.contains(transaction) else { return }
        try TransactionRules.check(transaction, consortium: consortium, index: index)
        transactions.insert(transaction)
    }

    func checked(_ transaction: Transaction) -> Bool { transactions.contains(transaction) }
}
