import Foundation
import XinlianCore
import XinlianCrypto
import XinlianMerkle

/// Where a committed transaction sits.
public struct TransactionLocation: Sendable, Hashable, Codable {
    public var height: UInt64
    public var index: Int

    public init(height: UInt64, index: Int) {
        self.height = height
        self.index = index
    }
}

/// Where a committed transaction's bytes lie in its block's record (the block log's payload), with their CRC32C:
/// reading one transaction then costs one `pread` of its own bytes, however large its block.
public struct TransactionBytes: Sendable, Hashable {
    public var offset: Int
    public var length: Int
    public var checksum: UInt32

    public init(offset: Int, length: Int, checksum: UInt32) {
        self.offset = offset
        self.length = length
        self.checksum = checksum
    }
}

/// The SQLite index: derived entirely from the block log, rebuildable, never trusted over it.
/// Holds transactions by id, enterprise and reporter, each enterprise's record head, and the
/// content-addressed nodes of the state tree.
public final class LedgerIndex {
    /// 2: transactions' byte ranges (`record_offset`, `record_length`, `checksum`). An index of another version is
    /// rebuilt from the block log when the store opens (``LedgerStore/rebuiltIndex``), never migrated in place.
    public static let schemaVersion: Int64 = 2

    let db: SQLiteDatabase

    /// Page cache of the index's connection, in KiB. Transactions, enterprises and state-tree nodes are keyed by
    /// hashes, so every block touches pages all over the file: with SQLite's default 2 MiB cache nearly each touch is
    /// a read, and the bytes read and written per transaction grow with the ledger (docs/performance.md).
    public static let cacheKiB = 65_536
    /// WAL pages written before SQLite copies them into the database file (its default is 1,000): a page that
    /// several blocks change in between is copied once.
    public static let checkpointPages = 8_192

    public init(path: String) throws {
        db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA cache_size=-\(Self.cacheKiB); PRAGMA wal_autocheckpoint=\(Self.checkpointPages);")
        try createSchema()
    }

    private func createSchema() throws {
        try db.execute("""
            CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS blocks(
                height INTEGER PRIMARY KEY, hash BLOB NOT NULL, time_ms INTEGER NOT NULL,
                tx_count INTEGER NOT NULL, state_root BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS transactions(
                id BLOB PRIMARY KEY, height INTEGER NOT NULL, position INTEGER NOT NULL,
                kind TEXT NOT NULL, reporter TEXT NOT NULL, subject TEXT, time_ms INTEGER NOT NULL,
                record_offset INTEGER NOT NULL, record_length INTEGER NOT NULL, checksum INTEGER NOT NULL) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS transactions_by_subject ON transactions(subject, height, position);
            CREATE INDEX IF NOT EXISTS transactions_by_reporter ON transactions(reporter, height, position);
            CREATE TABLE IF NOT EXISTS enterprises(
                uscc TEXT PRIMARY KEY, head BLOB NOT NULL, tx_count INTEGER NOT NULL, last_height INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS smt_nodes(hash BLOB PRIMARY KEY, node BLOB NOT NULL) WITHOUT ROWID;
            """)
        try createReportSchema()
        let version = try metaValue("schema_version")
        if version == nil {
            try setMeta("schema_version", Self.schemaVersion)
        } else if version != Self.schemaVersion {
            throw StorageError.corrupt(file: "index.sqlite", offset: 0,
                                       reason: "index schema \(version ?? 0) is not \(Self.schemaVersion); run xinlian reindex")
        }
    }

    /// What an index file at `path` says about itself, whatever its schema version: nil when there is none.
    public struct Stored: Sendable, Equatable {
        /// Its schema version (nil: none recorded, as after a crash while it was being created).
        public var version: Int64?
        /// The height it had indexed, and the block hash it recorded there.
        public var height: UInt64
        public var hash: Hash32?
    }

    /// Reads `meta` (and the recorded hash at its height) of the index at `path`, of any schema version; nil when
    /// there is no index file or it has no `meta` table.
    public static func stored(path: String) throws -> Stored? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let db = try SQLiteDatabase(path: path)
        defer { db.close() }
        func exists(_ table: String) throws -> Bool {
            let statement = try db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
            defer { statement.reset() }
            try statement.bind([.text(table)])
            return try statement.step()
        }
        guard try exists("meta") else { return nil }
        func meta(_ key: String) throws -> Int64? {
            let statement = try db.prepare("SELECT value FROM meta WHERE key = ?")
            defer { statement.reset() }
            try statement.bind([.text(key)])
            return try statement.step() ? statement.int64(0) : nil
        }
        let height = UInt64(clamping: try meta("height") ?? 0)
        var hash: Hash32?
        if height > 0, try exists("blocks") {
            let statement = try db.prepare("SELECT hash FROM blocks WHERE height = ?")
            defer { statement.reset() }
            try statement.bind([.integer(Int64(clamping: height))])
            if try statement.step() { hash = Hash32(bytes: statement.blob(0)) }
        }
        return Stored(version: try meta("schema_version"), height: height, hash: hash)
    }

    /// Height of the last block applied to the index (0 when empty).
    public func height() throws -> UInt64 { UInt64(clamping: try metaValue("height") ?? 0) }

    func metaValue(_ key: String) throws -> Int64? {
        let statement = try db.prepare("SELECT value FROM meta WHERE key = ?")
        defer { statement.reset() }
        try statement.bind([.text(key)])
        return try statement.step() ? statement.int64(0) : nil
    }

    func setMeta(_ key: String, _ value: Int64) throws {
        let statement = try db.prepare("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        defer { statement.reset() }
        try statement.bind([.text(key), .integer(value)])
        _ = try statement.step()
    }

    /// Applies one committed block in a single SQLite transaction: its transactions (with where each lies in
    /// `encoded`, the record as the block log holds it), the new enterprise heads and the new state-tree nodes.
    public func apply(_ record: CommittedBlock, encoded: [UInt8], suite: CryptoSuite, heads: [USCC: Hash32],
                      nodes: [Hash32: SMTNode]) throws {
        let header = record.block.header
        let ranges = try BlockRecordIndex(record: encoded).ranges
        guard ranges.count == record.block.transactions.count else {
            throw StorageError.invalidArgument("block \(header.height): its record does not hold its transactions")
        }
        try db.transaction {
            try insertBlock(header, suite: suite)
            for (position, transaction) in record.block.transactions.enumerated() {
                let range = ranges[position]
                let bytes = TransactionBytes(offset: range.lowerBound, length: range.count,
                                             checksum: CRC32C.checksum(encoded[range]))
                try insertTransaction(transaction, id: transaction.id(suite), height: header.height, position: position,
                                      bytes: bytes)
            }
            try updateEnterprises(record.block.transactions, heads: heads, height: header.height)
            try insertReportLinks(record, suite: suite)
            try insertNodes(nodes)
            try setMeta("height", Int64(clamping: header.height))
        }
    }

    private func insertBlock(_ header: BlockHeader, suite: CryptoSuite) throws {
        let statement = try db.prepare("INSERT INTO blocks(height, hash, time_ms, tx_count, state_root) VALUES(?, ?, ?, ?, ?)")
        defer { statement.reset() }
        try statement.bind([.integer(Int64(clamping: header.height)), .blob(header.hash(suite).bytes), .integer(Int64(clamping: header.timeMs)),
                            .integer(Int64(clamping: header.transactionCount)), .blob(header.stateRoot.bytes)])
        _ = try statement.step()
    }

    private func insertTransaction(_ transaction: Transaction, id: Hash32, height: UInt64, position: Int,
                                   bytes: TransactionBytes) throws {
        let statement = try db.prepare("""
            INSERT INTO transactions(id, height, position, kind, reporter, subject, time_ms, record_offset, record_length, checksum)
            VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        defer { statement.reset() }
        let body = transaction.body
        try statement.bind([.blob(id.bytes), .integer(Int64(clamping: height)), .integer(Int64(clamping: position)), .text(body.kind.rawValue),
                            .text(body.reporter.value), body.subject.map { .text($0.code) } ?? .null,
                            .integer(Int64(clamping: body.timeMs)), .integer(Int64(bytes.offset)), .integer(Int64(bytes.length)),
                            .integer(Int64(bytes.checksum))])
        _ = try statement.step()
    }

    private func updateEnterprises(_ transactions: [Transaction], heads: [USCC: Hash32], height: UInt64) throws {
        var counts: [USCC: Int64] = [:]
        for transaction in transactions {
            if let subject = transaction.body.subject { counts[subject, default: 0] += 1 }
        }
        let statement = try db.prepare("""
            INSERT INTO enterprises(uscc, head, tx_count, last_height) VALUES(?, ?, ?, ?)
            ON CONFLICT(uscc) DO UPDATE SET head = excluded.head, tx_count = tx_count + excluded.tx_count,
                last_height = excluded.last_height
            """)
        for (subject, count) in counts.sorted(by: { $0.key < $1.key }) {
            guard let head = heads[subject] else { continue }
            defer { statement.reset() }
            try statement.bind([.text(subject.code), .blob(head.bytes), .integer(count), .integer(Int64(clamping: height))])
            _ = try statement.step()
        }
    }

    private func insertNodes(_ nodes: [Hash32: SMTNode]) throws {
        let statement = try db.prepare("INSERT OR IGNORE INTO smt_nodes(hash, node) VALUES(?, ?)")
        for (hash, node) in nodes {
            defer { statement.reset() }
            try statement.bind([.blob(hash.bytes), .blob(node.encoded)])
            _ = try statement.step()
        }
    }

    // MARK: Queries

    public func location(of id: Hash32) throws -> TransactionLocation? {
        let statement = try db.prepare("SELECT height, position FROM transactions WHERE id = ?")
        defer { statement.reset() }
        try statement.bind([.blob(id.bytes)])
        guard try statement.step() else { return nil }
        return TransactionLocation(height: UInt64(clamping: statement.int64(0)), index: Int(clamping: statement.int64(1)))
    }

    /// The head of an enterprise's transaction chain, nil when it has no records.
    public func head(of subject: USCC) throws -> Hash32? {
        let statement = try db.prepare("SELECT head FROM enterprises WHERE uscc = ?")
        defer { statement.reset() }
        try statement.bind([.text(subject.code)])
        guard try statement.step() else { return nil }
        guard let head = Hash32(bytes: statement.blob(0)) else {
            throw StorageError.corrupt(file: "index.sqlite", offset: 0, reason: "enterprise \(subject) has a malformed head")
        }
        return head
    }

    /// The hash the index recorded for the block at `height`.
    public func blockHash(at height: UInt64) throws -> Hash32? {
        let statement = try db.prepare("SELECT hash FROM blocks WHERE height = ?")
        defer { statement.reset() }
        try statement.bind([.integer(Int64(clamping: height))])
        guard try statement.step() else { return nil }
        return Hash32(bytes: statement.blob(0))
    }

    /// Transactions about `subject`, oldest first.
    public func locations(subject: USCC, limit: Int = 10_000) throws -> [TransactionLocation] {
        try locations("SELECT height, position FROM transactions WHERE subject = ? ORDER BY height, position LIMIT ?",
                      [.text(subject.code), .integer(Int64(clamping: limit))])
    }

    /// Transactions by `reporter`, oldest first.
    public func locations(reporter: InstitutionID, limit: Int = 10_000) throws -> [TransactionLocation] {
        try locations("SELECT height, position FROM transactions WHERE reporter = ? ORDER BY height, position LIMIT ?",
                      [.text(reporter.value), .integer(Int64(clamping: limit))])
    }

    private func locations(_ sql: String, _ values: [SQLiteValue]) throws -> [TransactionLocation] {
        let statement = try db.prepare(sql)
        defer { statement.reset() }
        try statement.bind(values)
        var result: [TransactionLocation] = []
        while try statement.step() {
            result.append(TransactionLocation(height: UInt64(clamping: statement.int64(0)), index: Int(clamping: statement.int64(1))))
        }
        return result
    }

    /// Every row of every table in a fixed order: two indexes are equal when their dumps are.
    public func dump() throws -> [String] {
        var rows: [String] = []
        let tables = [
            "SELECT key, value FROM meta ORDER BY key",
            "SELECT height, hex(hash), time_ms, tx_count, hex(state_root) FROM blocks ORDER BY height",
            "SELECT hex(id), height, position, kind, reporter, subject, time_ms, record_offset, record_length, checksum FROM transactions ORDER BY id",
            "SELECT uscc, hex(head), tx_count, last_height FROM enterprises ORDER BY uscc",
            "SELECT hex(hash), hex(node) FROM smt_nodes ORDER BY hash",
            "SELECT party, hex(id) FROM counterparties ORDER BY party, id",
            "SELECT hex(target), hex(id) FROM transaction_refs ORDER BY target, id",
        ]
        for sql in tables {
            let statement = try db.prepare(sql)
            defer { statement.reset() }
            while try statement.step() {
                rows.append((0..<statement.columnCount).map { statement.isNull($0) ? "NULL" : statement.text($0) }
                    .joined(separator: "|"))
            }
        }
        return rows
    }
}

extension LedgerIndex: SMTNodeSource {
    public func smtNode(_ hash: Hash32) throws -> SMTNode? {
        let statement = try db.prepare("SELECT node FROM smt_nodes WHERE hash = ?")
        defer { statement.reset() }
        try statement.bind([.blob(hash.bytes)])
        guard try statement.step() else { return nil }
        return try SMTNode(decoding: statement.blob(0))
    }
}
