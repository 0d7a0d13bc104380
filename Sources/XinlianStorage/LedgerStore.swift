import Foundation
import XinlianCore
import XinlianCrypto
import XinlianMerkle

/// The state changes of one block, computed before it is committed.
public struct PreparedState: Sendable {
    public var heads: [USCC: Hash32]
    public var update: SMTUpdate
    public var stateRoot: Hash32 { update.root }

    public init(heads: [USCC: Hash32], update: SMTUpdate) {
        self.heads = heads
        self.update = update
    }
}

/// A node's ledger on disk: the block log (source of truth) and the SQLite index derived from it.
/// Not thread-safe; owned by one actor.
public final class LedgerStore {
    /// How many blocks at the tail are re-verified (hash links and certificates) on every start.
    public static let tailCheckBlocks = 16

    public let consortium: Consortium
    public let dataDirectory: String
    public private(set) var height: UInt64 = 0
    public private(set) var lastHeader: BlockHeader?
    public private(set) var lastBlockHash: Hash32
    /// Set when opening cut a torn record off the end of the log.
    public let recoveredTornTail: TornTail?
    /// Set when opening found an index of another schema version (the value) and rebuilt it from the block log.
    public let rebuiltIndex: Int64?
    /// Set when the index could not follow the log; every later write refuses until the store is reopened.
    public private(set) var failure: StorageError?

    let log: BlockLog
    let index: LedgerIndex
    let tree: SparseMerkleTree
    /// Personal data beside the blocks, erasable (``PersonalStore``).
    public let personal: PersonalStore

    public static func blocksDirectory(_ data: String) -> String { data + "/blocks" }
    public static func indexPath(_ data: String) -> String { data + "/index.sqlite" }

    /// Opens (creating if needed) the ledger in `dataDirectory`: repairs a torn tail, checks the
    /// tail's links and certificates, and brings the index up to the log. `personalDataKey` encrypts the personal
    /// data beside the blocks; without it (tools and tests that need none) no personal data is kept or read, and
    /// appending a block that carries some fails.
    public init(dataDirectory: String, consortium: Consortium, personalDataKey: PersonalDataKey? = nil) throws {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: Int(FileProtection.directoryMode)])
        self.consortium = consortium
        self.dataDirectory = dataDirectory
        self.lastBlockHash = consortium.genesisHash
        self.tree = SparseMerkleTree(suite: consortium.suite)
        self.log = try BlockLog(directory: Self.blocksDirectory(dataDirectory),
                                options: BlockLog.Options(recordSizeLimitBytes: Limits.recordBytes))
        self.recoveredTornTail = log.recoveredTornTail
        let tail = try Self.checkTail(log: log, consortium: consortium)
        (self.height, self.lastHeader, self.lastBlockHash) = (tail.height, tail.header, tail.hash)
        let indexPath = Self.indexPath(dataDirectory)
        if let stored = try LedgerIndex.stored(path: indexPath), stored.version != LedgerIndex.schemaVersion {
            // The index is derived from the log: one of another version (or of none: a crash while it was created)
            // is rebuilt, never migrated in place — after the same check as any index, that it describes this log.
            try Self.checkIndexDescribesLog(height: stored.height, hash: stored.hash, log: log, consortium: consortium)
            try Self.removeIndex(path: indexPath)
            self.rebuiltIndex = stored.version ?? 0
        } else {
            self.rebuiltIndex = nil
        }
        self.index = try Self.openIndex(path: indexPath, log: log, consortium: consortium)
        self.personal = try PersonalStore(path: PersonalStore.path(dataDirectory), key: personalDataKey)
        // Data written by an older version (0644 in 0755) is tightened too; SQLite gives its later -wal and -shm
        // files the index file's mode.
        try FileProtection.restrict(dataDirectory)
        try catchUpIndex()
        // Personal data written for a block a crash kept out of the log goes; an erasure a crash interrupted
        // after the last block was appended is done now.
        try personal.drop(above: height)
        if height > 0 { try eraseDue(try record(at: height)) }
        try scanForMissingPersonalData()
    }

    /// Notes the personal data of committed blocks that the personal data store has not looked at yet: all of them
    /// for a store that never noted what was missing (written by an older version, or moved aside after its key
    /// was lost: the node then fetches it all from peers), the last few after a crash. The chain's erasures are
    /// replayed as it goes, so what was erased is not asked for.
    private func scanForMissingPersonalData() throws {
        let scanned = try personal.scannedThrough() ?? 0
        if scanned < height {
            for at in (scanned + 1)...height {
                let committed = try record(at: at)
                try personal.scan(committed, suite: consortium.suite)
                try eraseDue(committed)
            }
        }
        try personal.setScanned(height)
    }

    /// Erases the personal data that committing `record` makes due (retention, erasure orders in it).
    private func eraseDue(_ record: CommittedBlock) throws {
        let orders = record.block.transactions.compactMap { $0.body.kind == .erasureOrder ? $0.body.subject : nil }
        try personal.erase(dueAt: record.block.header, retention: consortium.genesis.parameters, orders: orders)
    }

    /// The block at `height` with the personal data this node still holds attached to its transactions.
    public func recordWithPersonalData(at height: UInt64) throws -> CommittedBlock {
        var record = try record(at: height)
        record.block.transactions = try personal.attach(record.block.transactions, suite: consortium.suite)
        return record
    }

    public var stateRoot: Hash32 { lastHeader?.stateRoot ?? .zero }

    private static func checkTail(log: BlockLog, consortium: Consortium) throws
        -> (height: UInt64, header: BlockHeader?, hash: Hash32) {
        let count = UInt64(log.count)
        guard count > 0 else { return (0, nil, consortium.genesisHash) }
        let first = count > UInt64(tailCheckBlocks) ? count - UInt64(tailCheckBlocks) + 1 : 1
        var previous = first == 1
            ? consortium.genesisHash : try readRecord(log: log, height: first - 1).block.header.hash(consortium.suite)
        var header: BlockHeader?
        for height in first...count {
            let record = try readRecord(log: log, height: height)
            do {
                try BlockVerifier.checkStructure(record, height: height, previousHash: previous, consortium: consortium)
            } catch {
                let location = log.location(Int(height - 1))
                throw StorageError.corrupt(file: location.file, offset: location.offset,
                                           reason: "block \(height) fails verification: \(error)")
            }
            previous = record.block.header.hash(consortium.suite)
            header = record.block.header
        }
        return (count, header, previous)
    }

    /// Opens the index and checks that it describes this log. The log is fsynced before the index is
    /// updated, so an index ahead of the log means committed blocks vanished from the log: that is
    /// refused, not repaired (`xinlian reindex` accepts the log as it is, deliberately).
    private static func openIndex(path: String, log: BlockLog, consortium: Consortium) throws -> LedgerIndex {
        let index = try LedgerIndex(path: path)
        let indexed = try index.height()
        try checkIndexDescribesLog(height: indexed, hash: indexed > 0 ? try index.blockHash(at: indexed) : nil, log: log,
                                   consortium: consortium)
        return index
    }

    /// An index that has indexed `height` blocks, recording `hash` at the last, describes `log`: it is not ahead of it
    /// (committed blocks vanished from the log) and not of another chain. Refused otherwise, never repaired.
    private static func checkIndexDescribesLog(height indexed: UInt64, hash: Hash32?, log: BlockLog,
                                               consortium: Consortium) throws {
        guard indexed <= UInt64(log.count) else {
            throw StorageError.corrupt(file: "blocks", offset: 0, reason: "the index has \(indexed) blocks but the block log "
                + "only \(log.count): committed blocks are missing from the log; restore it, or run xinlian reindex to accept it")
        }
        if indexed > 0 {
            let logHash = try readRecord(log: log, height: indexed).block.header.hash(consortium.suite)
            guard hash == logHash else {
                throw StorageError.corrupt(file: "index.sqlite", offset: 0,
                                           reason: "the index describes another chain at height \(indexed); run xinlian reindex")
            }
        }
    }

    private static func removeIndex(path: String) throws {
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            try FileManager.default.removeItem(atPath: path + suffix)
        }
    }

    private func catchUpIndex() throws {
        var indexed = try index.height()
        var root = indexed == 0 ? Hash32.zero : try record(at: indexed).block.header.stateRoot
        while indexed < height {
            indexed += 1
            let bytes = try log.read(Int(indexed - 1))
            let record = try Self.decodeRecord(bytes, log: log, height: indexed)
            try applyToIndex(record, encoded: bytes, baseRoot: root)
            root = record.block.header.stateRoot
        }
    }

    private func applyToIndex(_ record: CommittedBlock, encoded: [UInt8], baseRoot: Hash32) throws {
        let prepared = try prepareState(record.block.transactions, baseRoot: baseRoot)
        guard prepared.stateRoot == record.block.header.stateRoot else {
            throw StorageError.corrupt(file: "blocks", offset: 0,
                                       reason: "block \(record.block.header.height) state root \(record.block.header.stateRoot) but replay gives \(prepared.stateRoot)")
        }
        try index.apply(record, encoded: encoded, suite: consortium.suite, heads: prepared.heads, nodes: prepared.update.newNodes)
    }

    // MARK: Reading

    public func record(at height: UInt64) throws -> CommittedBlock {
        try Self.readRecord(log: log, height: height)
    }

    static func readRecord(log: BlockLog, height: UInt64) throws -> CommittedBlock {
        guard height >= 1, height <= UInt64(log.count) else {
            throw StorageError.notFound("block \(height)")
        }
        return try decodeRecord(try log.read(Int(height - 1)), log: log, height: height)
    }

    private static func decodeRecord(_ bytes: [UInt8], log: BlockLog, height: UInt64) throws -> CommittedBlock {
        do {
            return try CommittedBlock(canonicalBytes: bytes, limit: Limits.recordBytes)
        } catch {
            let location = log.location(Int(height - 1))
            throw StorageError.corrupt(file: location.file, offset: location.offset, reason: "block \(height): \(error)")
        }
    }

    /// The block at `height` read lazily (header, certificate, where each transaction lies): for reading a few
    /// transactions of a large block.
    public func recordIndex(at height: UInt64) throws -> BlockRecordIndex {
        guard height >= 1, height <= UInt64(log.count) else { throw StorageError.notFound("block \(height)") }
        let bytes = try log.read(Int(height - 1))
        do { return try BlockRecordIndex(record: bytes) } catch {
            let location = log.location(Int(height - 1))
            throw StorageError.corrupt(file: location.file, offset: location.offset, reason: "block \(height): \(error)")
        }
    }

    /// The committed transaction `indexed` names, read from its own bytes in the block log (the frame's checksum is
    /// not read: the index's checksum of those bytes is checked instead), with its id checked against the index's.
    public func transaction(_ indexed: IndexedTransaction) throws -> Transaction {
        let height = indexed.location.height
        guard height >= 1, height <= UInt64(log.count) else { throw StorageError.notFound("block \(height)") }
        let range = indexed.bytes
        let bytes = try log.read(Int(height - 1), payloadOffset: range.offset, length: range.length)
        func corrupt(_ reason: String) -> StorageError {
            let location = log.location(Int(height - 1))
            return .corrupt(file: location.file, offset: location.payloadOffset &+ UInt64(clamping: range.offset),
                            reason: "block \(height) transaction \(indexed.location.index): \(reason)")
        }
        guard CRC32C.checksum(bytes) == range.checksum else { throw corrupt("checksum mismatch") }
        let transaction: Transaction
        do { transaction = try Transaction(canonicalBytes: bytes, limit: Limits.transactionBytes) } catch {
            throw corrupt("\(error)")
        }
        let id = transaction.id(consortium.suite)
        guard id == indexed.id else {
            throw corrupt("the index names \(indexed.id) but the block log holds \(id) there; run xinlian reindex")
        }
        return transaction
    }

    /// Where the committed transaction `id` lies, nil when it is not committed.
    public func indexedTransaction(_ id: Hash32) throws -> IndexedTransaction? { try index.indexedTransaction(id) }

    public func location(of id: Hash32) throws -> TransactionLocation? { try index.location(of: id) }
    public func head(of subject: USCC) throws -> Hash32? { try index.head(of: subject) }
    public func locations(subject: USCC) throws -> [TransactionLocation] { try index.locations(subject: subject) }
    public func indexDump() throws -> [String] { try index.dump() }

    /// A proof that `subject`'s record head is (or is absent) under the current state root.
    public func stateProof(subject: USCC) throws -> SMTProof {
        try tree.prove(root: stateRoot, key: EnterpriseState.key(subject, suite: consortium.suite), source: index)
    }

    // MARK: Writing

    /// New enterprise heads and state-tree nodes for a block of `transactions` on top of the current state.
    public func prepareState(_ transactions: [Transaction]) throws -> PreparedState {
        try prepareState(transactions, baseRoot: stateRoot)
    }

    private func prepareState(_ transactions: [Transaction], baseRoot: Hash32) throws -> PreparedState {
        let suite = consortium.suite
        let heads = try EnterpriseState.heads(after: transactions, suite: suite) { try index.head(of: $0) }
        let changes = heads.map { (key: EnterpriseState.key($0.key, suite: suite), value: $0.value) }
        let update = try tree.update(root: baseRoot, changes: changes, source: index)
        return PreparedState(heads: heads, update: update)
    }

    /// Appends a block that consensus made final. Durable (fsynced) when this returns.
    public func append(_ record: CommittedBlock, prepared: PreparedState) throws {
        if let failure { throw failure }
        let header = record.block.header
        guard header.height == height + 1, header.previousHash == lastBlockHash else {
            throw StorageError.invalidArgument("block \(header.height) does not extend height \(height)")
        }
        guard header.stateRoot == prepared.stateRoot else {
            throw StorageError.invalidArgument("block \(header.height): prepared state does not match the state root")
        }
        let bytes = record.canonicalBytes
        // Paired assertion: what is written must read back as the same block.
        guard (try? CommittedBlock(canonicalBytes: bytes, limit: Limits.recordBytes)) == record else {
            throw StorageError.invalidArgument("block \(header.height) does not survive its own encoding")
        }
        // Personal data first: once the block is in the log, what it carried must not be lost to a crash.
        try personal.put(record, suite: consortium.suite)
        _ = try log.append(bytes)
        height = header.height
        lastHeader = header
        lastBlockHash = header.hash(consortium.suite)
        do {
            try index.apply(record, encoded: bytes, suite: consortium.suite, heads: prepared.heads, nodes: prepared.update.newNodes)
        } catch {
            // The block is durable in the log but not indexed: refuse further writes; the next start replays it.
            let failed = StorageError.poisoned(reason: "index update failed after block \(header.height) was logged: \(error)")
            failure = failed
            throw failed
        }
        do { try eraseDue(record) } catch {
            // The erasure this block makes due is redone when the store is reopened (the block is then the tip).
            let failed = StorageError.poisoned(reason: "erasing personal data after block \(header.height) failed: \(error)")
            failure = failed
            throw failed
        }
    }

    /// Whether `id` is already committed.
    public func contains(_ id: Hash32) throws -> Bool { try index.location(of: id) != nil }

    public func close() {
        try? personal.setScanned(height)
        log.close()
    }

    /// Deletes the index and rebuilds it from the block log. Returns the height reached.
    public static func reindex(dataDirectory: String, consortium: Consortium) throws -> UInt64 {
        try removeIndex(path: indexPath(dataDirectory))
        let store = try LedgerStore(dataDirectory: dataDirectory, consortium: consortium)
        defer { store.close() }
        return try store.index.height()
    }
}
