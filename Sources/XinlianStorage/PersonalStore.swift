import Foundation
import XinlianCore
import XinlianCrypto

/// The personal data of committed transactions (``PersonalData``), kept beside the block log so that it can be
/// erased: `data/personal.sqlite`, with SQLite's `secure_delete` (deleted rows are overwritten, not left in free
/// pages) and its write-ahead log truncated after every erasure, so no byte of erased data stays in a file of the
/// data directory. Rows are written with `synchronous=FULL` before the block that commits them is appended, so a
/// committed block never loses personal data this node held; rows above the log's height (a crash between the
/// two) are dropped when the store opens. Not thread-safe; owned by the ``LedgerStore``.
public final class PersonalStore {
    let db: SQLiteDatabase

    public static func path(_ dataDirectory: String) -> String { dataDirectory + "/personal.sqlite" }

    public init(path: String) throws {
        db = try SQLiteDatabase(path: path)
        try db.execute("""
            PRAGMA secure_delete=ON;
            PRAGMA synchronous=FULL;
            CREATE TABLE IF NOT EXISTS personal(
                id BLOB PRIMARY KEY, subject TEXT, height INTEGER NOT NULL, committed_ms INTEGER NOT NULL,
                data BLOB NOT NULL) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS personal_by_time ON personal(committed_ms);
            CREATE INDEX IF NOT EXISTS personal_by_subject ON personal(subject, height);
            """)
        // A crash between an erasure's commit and its log truncation left the erased rows' old pages in the
        // write-ahead log: truncate it on every open.
        try truncateLog()
    }

    /// Keeps the personal data carried by `record`'s transactions (durable when this returns).
    public func put(_ record: CommittedBlock, suite: CryptoSuite) throws {
        let header = record.block.header
        // Only personal data matching its payload's commitment is kept (a sync peer's junk is not).
        let carried = record.block.transactions.map { $0.keepingMatchingPersonalData(suite) }.filter { $0.personal != nil }
        guard !carried.isEmpty else { return }
        try db.transaction { () throws(StorageError) in
            let insert = try db.prepare("INSERT OR REPLACE INTO personal(id, subject, height, committed_ms, data) VALUES (?, ?, ?, ?, ?)")
            for transaction in carried {
                guard let personal = transaction.personal else { continue }
                insert.reset()
                try insert.bind(.blob(transaction.id(suite).bytes),
                                transaction.body.subject.map { .text($0.code) } ?? .null,
                                .integer(Int64(clamping: header.height)), .integer(Int64(clamping: header.timeMs)),
                                .blob(personal.canonicalBytes))
                _ = try insert.step()
            }
        }
    }

    /// The personal data held for `ids` (those erased or never received are absent).
    public func data(_ ids: [Hash32]) throws -> [Hash32: PersonalData] {
        var found: [Hash32: PersonalData] = [:]
        let select = try db.prepare("SELECT data FROM personal WHERE id = ?")
        defer { select.reset() }
        for id in Set(ids) {
            select.reset()
            try select.bind(.blob(id.bytes))
            if try select.step(), let data = try? PersonalData(canonicalBytes: select.blob(0), limit: PersonalData.encodedLimit) {
                found[id] = data
            }
        }
        return found
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
                }
            }
            for subject in orders {
                let delete = try db.prepare("DELETE FROM personal WHERE subject = ? AND height < ?")
                try delete.bind(.text(subject.code), .integer(Int64(clamping: header.height)))
                _ = try delete.step()
                erased += db.changes
            }
        }
        if erased > 0 { try truncateLog() }
        return erased
    }

    /// Drops personal data of blocks above `height` (written before a block that a crash kept out of the log).
    public func drop(above height: UInt64) throws {
        let delete = try db.prepare("DELETE FROM personal WHERE height > ?")
        try delete.bind(.integer(Int64(clamping: height)))
        _ = try delete.step()
        if db.changes > 0 { try truncateLog() }
    }

    /// Every piece of personal data held for blocks up to `height`, in height order: `(transaction id, height, data)`.
    public func all(throughHeight height: UInt64) throws -> [(id: Hash32, height: UInt64, data: PersonalData)] {
        let select = try db.prepare("SELECT id, height, data FROM personal WHERE height <= ? ORDER BY height, id")
        defer { select.reset() }
        try select.bind(.integer(Int64(clamping: height)))
        var rows: [(id: Hash32, height: UInt64, data: PersonalData)] = []
        while try select.step() {
            guard let id = Hash32(bytes: select.blob(0)),
                  let data = try? PersonalData(canonicalBytes: select.blob(2), limit: PersonalData.encodedLimit) else { continue }
            rows.append((id, UInt64(clamping: select.int64(1)), data))
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
