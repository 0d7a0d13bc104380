import Foundation
import XinlianCore
import XinlianCrypto

/// The personal data of committed transactions (``PersonalData``), kept beside the block log so that it can be
/// erased: `data/personal.sqlite`, with SQLite's `secure_delete` (deleted rows are overwritten, not left in free
/// pages) and its write-ahead log truncated after every erasure, so no byte of erased data stays in a file of the
/// data directory. Rows are written with `synchronous=FULL` before the block that commits them is appended, so a
/// committed block never loses personal data this node held; rows above the log's height (a crash between the
/// two) are dropped when the store opens. Each row's data is encrypted with the node's ``PersonalDataKey``
/// (`personal.key`, outside the data directory); the store remembers which key (a check value, not the key) and
/// refuses another. Rows written by a version that did not encrypt are encrypted when the store first opens with a
/// key. Not thread-safe; owned by the ``LedgerStore``.
public final class PersonalStore {
    let db: SQLiteDatabase
    /// Nil for a store opened only to read what is not personal (tests of other parts, tools): it then keeps and
    /// reads no personal data.
    let key: PersonalDataKey?
    /// Opened without adopting a key (``init(path:key:adoptingKey:)``) a store an older version wrote: its rows are
    /// in clear.
    private(set) var inClear = false

    public static func path(_ dataDirectory: String) -> String { dataDirectory + "/personal.sqlite" }

    /// Opens (creating) the store at `path`. With `adoptingKey` (the node), a store that has no key yet takes `key`
    /// and encrypts what it holds; without (a tool reading another's data, such as `xinlian export`), nothing is
    /// re-encrypted: a store with a key must have this one, and one without is read as written, in clear.
    public init(path: String, key: PersonalDataKey?, adoptingKey: Bool = true) throws {
        self.key = key
        db = try SQLiteDatabase(path: path)
        try db.execute("""
            PRAGMA secure_delete=ON;
            PRAGMA synchronous=FULL;
            CREATE TABLE IF NOT EXISTS personal(
                id BLOB PRIMARY KEY, subject TEXT, height INTEGER NOT NULL, committed_ms INTEGER NOT NULL,
                data BLOB NOT NULL) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS personal_by_time ON personal(committed_ms);
            CREATE INDEX IF NOT EXISTS personal_by_subject ON personal(subject, height);
            CREATE TABLE IF NOT EXISTS missing(
                id BLOB PRIMARY KEY, subject TEXT, height INTEGER NOT NULL, committed_ms INTEGER NOT NULL) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS missing_by_height ON missing(height);
            CREATE INDEX IF NOT EXISTS missing_by_time ON missing(committed_ms);
            CREATE INDEX IF NOT EXISTS missing_by_subject ON missing(subject, height);
            CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
            """)
        if let key, adoptingKey { try adopt(key) } else if let key { inClear = try !checkKey(key) }
        // A crash between an erasure's commit and its log truncation left the erased rows' old pages in the
        // write-ahead log: truncate it on every open.
        try truncateLog()
    }

    /// Keeps the personal data carried by `record`'s transactions (durable when this returns), and notes those
    /// whose payload commits to personal data that did not come with them (``missingHeights(from:limit:)``).
    public func put(_ record: CommittedBlock, suite: CryptoSuite) throws {
        let header = record.block.header
        // Only personal data matching its payload's commitment is kept (a sync peer's junk is not).
        let transactions = record.block.transactions.map { $0.keepingMatchingPersonalData(suite) }
        let carried = transactions.filter { $0.personal != nil }
        let lacking = Self.lacking(transactions)
        let checkpoint = header.height % Self.scanCheckpointInterval == 0
        guard !carried.isEmpty || !lacking.isEmpty || checkpoint else { return }
        guard carried.isEmpty || key != nil else { throw Self.noKey }
        let height = Int64(clamping: header.height), time = Int64(clamping: header.timeMs)
        try db.transaction { () throws(StorageError) in
            let insert = try db.prepare("INSERT OR REPLACE INTO personal(id, subject, height, committed_ms, data) VALUES (?, ?, ?, ?, ?)")
            for transaction in carried {
                guard let personal = transaction.personal, let key else { continue }
                let id = transaction.id(suite)
                insert.reset()
                try insert.bind(.blob(id.bytes), transaction.body.subject.map { .text($0.code) } ?? .null,
                                .integer(height), .integer(time), .blob(try key.seal(personal.canonicalBytes, id: id)))
                _ = try insert.step()
            }
            try noteMissing(lacking, header: header, suite: suite)
            if checkpoint { try setScanned(header.height) }
        }
    }

    /// Statements among `transactions` whose payload commits to personal data they do not carry.
    static func lacking(_ transactions: [Transaction]) -> [Transaction] {
        transactions.filter { $0.personal == nil && $0.personalCommitment != nil }
    }

    /// Notes `lacking` (of the block `header` heads) as missing, except those whose data is held.
    private func noteMissing(_ lacking: [Transaction], header: BlockHeader, suite: CryptoSuite) throws(StorageError) {
        guard !lacking.isEmpty else { return }
        let note = try db.prepare("""
            INSERT OR REPLACE INTO missing(id, subject, height, committed_ms)
            SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM personal WHERE id = ?)
            """)
        for transaction in lacking {
            let id = transaction.id(suite)
            note.reset()
            try note.bind(.blob(id.bytes), transaction.body.subject.map { .text($0.code) } ?? .null,
                          .integer(Int64(clamping: header.height)), .integer(Int64(clamping: header.timeMs)), .blob(id.bytes))
            _ = try note.step()
        }
    }

    /// Blocks are noted as scanned for missing personal data at least this often (and when the store closes), so a
    /// crash makes ``scan(_:suite:)`` look again at no more than this many.
    static let scanCheckpointInterval: UInt64 = 1_024

    /// The height up to which committed blocks were looked at for missing personal data; nil for a store that
    /// never was (new, or a version before it noted what was missing).
    public func scannedThrough() throws -> UInt64? {
        let select = try db.prepare("SELECT value FROM meta WHERE name = 'scanned'")
        defer { select.reset() }
        guard try select.step() else { return nil }
        return UInt64(clamping: select.int64(0))
    }

    public func setScanned(_ height: UInt64) throws(StorageError) {
        let upsert = try db.prepare("INSERT OR REPLACE INTO meta(name, value) VALUES ('scanned', ?)")
        defer { upsert.reset() }
        try upsert.bind(.integer(Int64(clamping: height)))
        _ = try upsert.step()
    }

    /// Notes what `record` (a block committed before the store looked) lacks, as ``put(_:suite:)`` would have.
    public func scan(_ record: CommittedBlock, suite: CryptoSuite) throws {
        let lacking = Self.lacking(record.block.transactions.map { $0.keepingMatchingPersonalData(suite) })
        try db.transaction { () throws(StorageError) in try noteMissing(lacking, header: record.block.header, suite: suite) }
    }

    /// Heights at or above `from` of committed blocks with personal data this node never received and the chain
    /// has not erased, lowest first, at most `limit` (what the replica asks peers for).
    public func missingHeights(from: UInt64 = 0, limit: Int) throws -> [UInt64] {
        let select = try db.prepare("SELECT DISTINCT height FROM missing WHERE height >= ? ORDER BY height LIMIT ?")
        defer { select.reset() }
        try select.bind(.integer(Int64(clamping: from)), .integer(Int64(clamping: limit)))
        var heights: [UInt64] = []
        while try select.step() { heights.append(UInt64(clamping: select.int64(0))) }
        return heights
    }

    /// Keeps the personal data `transactions` (of the committed block at `height`, as a peer sent them) carry
    /// for transactions noted as missing it, when it matches their commitment; returns how many were kept.
    public func fill(_ transactions: [Transaction], height: UInt64, suite: CryptoSuite) throws -> Int {
        let carried = transactions.map { $0.keepingMatchingPersonalData(suite) }.filter { $0.personal != nil }
        guard !carried.isEmpty else { return 0 }
        guard let key else { throw Self.noKey }
        var kept = 0
        try db.transaction { () throws(StorageError) in
            let find = try db.prepare("SELECT subject, committed_ms FROM missing WHERE id = ? AND height = ?")
            let insert = try db.prepare("INSERT OR REPLACE INTO personal(id, subject, height, committed_ms, data) VALUES (?, ?, ?, ?, ?)")
            let forget = try db.prepare("DELETE FROM missing WHERE id = ?")
            for transaction in carried {
                guard let personal = transaction.personal else { continue }
                let id = transaction.id(suite)
                find.reset()
                try find.bind(.blob(id.bytes), .integer(Int64(clamping: height)))
                guard try find.step() else { continue }
                let subject = find.value(0)
                let time = find.int64(1)
                find.reset()
                insert.reset()
                try insert.bind(.blob(id.bytes), subject, .integer(Int64(clamping: height)), .integer(time),
                                .blob(try key.seal(personal.canonicalBytes, id: id)))
                _ = try insert.step()
                forget.reset()
                try forget.bind(.blob(id.bytes))
                _ = try forget.step()
                kept += 1
            }
        }
        return kept
    }

    /// How many committed transactions lack personal data this node never received (metrics, tests).
    public func missingCount() throws -> Int {
        let select = try db.prepare("SELECT COUNT(*) FROM missing")
        defer { select.reset() }
        _ = try select.step()
        return Int(select.int64(0))
    }

    /// The personal data held for `ids` (those erased or never received are absent, and so is a row that does not
    /// open with this store's key or does not decode: it is shown as not held, never guessed).
    public func data(_ ids: [Hash32]) throws -> [Hash32: PersonalData] {
        guard let key else { return [:] }
        var found: [Hash32: PersonalData] = [:]
        let select = try db.prepare("SELECT data FROM personal WHERE id = ?")
        defer { select.reset() }
        for id in Set(ids) {
            select.reset()
            try select.bind(.blob(id.bytes))
            if try select.step(), let data = decode(select.blob(0), id: id, key: key) { found[id] = data }
        }
        return found
    }

    func decode(_ sealed: [UInt8], id: Hash32, key: PersonalDataKey) -> PersonalData? {
        guard let bytes = inClear ? sealed : key.unseal(sealed, id: id) else { return nil }
        return try? PersonalData(canonicalBytes: bytes, limit: PersonalData.encodedLimit)
    }

    static let noKey = StorageError.invalidArgument("personal data cannot be kept without the node's personal data key")

    /// Whether the store at `path` exists and was encrypted with a key (it holds a key check).
    public static func isKeyed(path: String) throws(StorageError) -> Bool {
        guard FileManager.default.fileExists(atPath: path) else { return false }
        let db = try SQLiteDatabase(path: path)
        defer { db.close() }
        let table = try db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
        defer { table.reset() }
        guard try table.step() else { return false }
        let find = try db.prepare("SELECT 1 FROM meta WHERE name = 'key_check'")
        defer { find.reset() }
        return try find.step()
    }

    /// Whether the store holds a key check, which must be `key`'s (throws otherwise).
    private func checkKey(_ key: PersonalDataKey) throws -> Bool {
        let find = try db.prepare("SELECT value FROM meta WHERE name = 'key_check'")
        defer { find.reset() }
        guard try find.step() else { return false }
        guard find.blob(0) == key.check else {
            throw StorageError.io(file: db.path, reason: "the personal data here was encrypted with another key than the one given")
        }
        return true
    }

    /// Takes `key` as this store's: the first key a store opens with is remembered (a check value); another is
    /// refused; rows written before the store encrypted are encrypted now (and their cleartext pages overwritten).
    private func adopt(_ key: PersonalDataKey) throws {
        let find = try db.prepare("SELECT value FROM meta WHERE name = 'key_check'")
        let stored = try find.step() ? find.blob(0) : nil
        find.reset()
        if let stored {
            guard stored == key.check else {
                throw StorageError.io(file: db.path, reason: "the personal data here was encrypted with another key than the node's personal.key; give the node the key it was written with")
            }
            return
        }
        let rows = try db.prepare("SELECT id, data FROM personal")
        var plain: [(id: [UInt8], data: [UInt8])] = []
        while try rows.step() { plain.append((rows.blob(0), rows.blob(1))) }
        rows.reset()
        try db.transaction { () throws(StorageError) in
            let update = try db.prepare("UPDATE personal SET data = ? WHERE id = ?")
            for row in plain {
                guard let id = Hash32(bytes: row.id) else { continue }
                update.reset()
                try update.bind(.blob(try key.seal(row.data, id: id)), .blob(row.id))
                _ = try update.step()
            }
            let remember = try db.prepare("INSERT INTO meta(name, value) VALUES ('key_check', ?)")
            try remember.bind(.blob(key.check))
            _ = try remember.step()
        }
        if !plain.isEmpty { try truncateLog() }
    }

    /// `transactions` with the personal data this store holds for them attached.
    public func attach(_ transactions: [Transaction], suite: CryptoSuite) throws -> [Transaction] {
        let held = try data(transactions.map { $0.id(suite) })
        guard !held.isEmpty else { return transactions }
        return transactions.map { transaction in
            var carried = transaction
            carried.personal = held[transaction.id(suite)] ?? transaction.personal
            return carried
        }
    }

    /// Erases what committing `header`'s block makes due: personal data older than the retention period (measured
    /// from the block that committed it to this block's time), and, for each erasure order in the block, all the
    /// personal data of its enterprise committed below this height. Returns how many were erased.
    @discardableResult
    public func erase(dueAt header: BlockHeader, retention parameters: ConsensusParameters,
                      orders: [USCC]) throws -> Int {
        var erased = 0
        try db.transaction { () throws(StorageError) in
            if parameters.personalDataRetentionDays > 0 {
                let span = UInt64(parameters.personalDataRetentionDays) &* 86_400_000
                if header.timeMs >= span {
                    let delete = try db.prepare("DELETE FROM personal WHERE committed_ms <= ?")
                    try delete.bind(.integer(Int64(clamping: header.timeMs - span)))
                    _ = try delete.step()
                    erased += db.changes
                    // What was never received is not asked for any more: peers have erased it too.
                    let forget = try db.prepare("DELETE FROM missing WHERE committed_ms <= ?")
                    try forget.bind(.integer(Int64(clamping: header.timeMs - span)))
                    _ = try forget.step()
                }
            }
            for subject in orders {
                let delete = try db.prepare("DELETE FROM personal WHERE subject = ? AND height < ?")
                try delete.bind(.text(subject.code), .integer(Int64(clamping: header.height)))
                _ = try delete.step()
                erased += db.changes
                let forget = try db.prepare("DELETE FROM missing WHERE subject = ? AND height < ?")
                try forget.bind(.text(subject.code), .integer(Int64(clamping: header.height)))
                _ = try forget.step()
            }
        }
        if erased > 0 { try truncateLog() }
        return erased
    }

    /// Drops personal data of blocks above `height` (written before a block that a crash kept out of the log).
    public func drop(above height: UInt64) throws {
        let forget = try db.prepare("DELETE FROM missing WHERE height > ?")
        try forget.bind(.integer(Int64(clamping: height)))
        _ = try forget.step()
        let delete = try db.prepare("DELETE FROM personal WHERE height > ?")
        try delete.bind(.integer(Int64(clamping: height)))
        _ = try delete.step()
        if db.changes > 0 { try truncateLog() }
    }

    /// Every piece of personal data held for blocks up to `height`, in height order: `(transaction id, height, data)`.
    public func all(throughHeight height: UInt64) throws -> [(id: Hash32, height: UInt64, data: PersonalData)] {
        guard let key else { throw Self.noKey }
        let select = try db.prepare("SELECT id, height, data FROM personal WHERE height <= ? ORDER BY height, id")
        defer { select.reset() }
        try select.bind(.integer(Int64(clamping: height)))
        var rows: [(id: Hash32, height: UInt64, data: PersonalData)] = []
        var unreadable = 0
        while try select.step() {
            guard let id = Hash32(bytes: select.blob(0)), let data = decode(select.blob(2), id: id, key: key) else {
                unreadable += 1
                continue
            }
            rows.append((id, UInt64(clamping: select.int64(1)), data))
        }
        // An export must not be silently short: a row that does not open (damaged, or not this key's) is an error.
        guard unreadable == 0 else {
            throw StorageError.corrupt(file: db.path, offset: 0, reason: "\(unreadable) row(s) of personal data do not open with the key given")
        }
        return rows
    }

    /// Rows held (tests, metrics).
    public func count() throws -> Int {
        let select = try db.prepare("SELECT COUNT(*) FROM personal")
        defer { select.reset() }
        _ = try select.step()
        return Int(select.int64(0))
    }

    /// Moves everything into the database file (whose deleted rows `secure_delete` has overwritten) and empties the
    /// write-ahead log, which could otherwise still hold pages with erased data.
    private func truncateLog() throws {
        let checkpoint = try db.prepare("PRAGMA wal_checkpoint(TRUNCATE)")
        defer { checkpoint.reset() }
        // One row: busy (1 when it could not finish), frames in the log, frames checkpointed.
        guard try checkpoint.step(), checkpoint.int64(0) == 0, checkpoint.int64(1) <= 0 || checkpoint.int64(1) == checkpoint.int64(2)
        else {
            throw StorageError.io(file: db.path + "-wal", reason: "the personal data log could not be checkpointed and truncated")
        }
    }
}
