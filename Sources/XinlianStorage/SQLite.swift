import CXinlianSQLite

/// A value bound to or read from a SQLite statement.
public enum SQLiteValue: Sendable, Hashable {
    case integer(Int64)
    case text(String)
    case blob([UInt8])
    case null
}

/// Tells SQLite to copy bound text and blobs before the bind call returns.
private func sqliteTransient() -> sqlite3_destructor_type {
    unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

private func sqliteError(_ handle: OpaquePointer?, code: Int32, context: String) -> StorageError {
    let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
    return .sqlite(code: code, message: "\(context): \(message)")
}

/// A connection to a SQLite database (WAL journal, `synchronous=NORMAL`, foreign keys on).
///
/// Not thread-safe; own it from a single actor. Statements from ``prepare(_:)`` are cached by SQL text,
/// so do not step two uses of the same SQL at once.
public final class SQLiteDatabase {
    /// Default time to wait for a lock held by another connection.
    public static let defaultBusyTimeoutMilliseconds: Int32 = 5_000
    /// Maximum number of cached prepared statements; the least recently prepared is evicted beyond this.
    public static let statementCacheCapacity = 64

    /// The database file path.
    public let path: String
    private var handle: OpaquePointer?
    private var statementCache: [String: SQLiteStatement] = [:]
    private var cacheOrder: [String] = []

    /// Opens or creates the database at `path` (`":memory:"` for an in-memory database).
    public init(path: String, busyTimeoutMilliseconds: Int32 = SQLiteDatabase.defaultBusyTimeoutMilliseconds)
        throws(StorageError)
    {
        self.path = path
        var opened: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &opened, flags, nil)
        handle = opened
        guard code == SQLITE_OK else {
            let error = sqliteError(opened, code: code, context: "open \(path)")
            close()
            throw error
        }
        do {
            try configure(busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        } catch {
            close()
            throw error
        }
    }

    deinit {
        close()
    }

    private func configure(busyTimeoutMilliseconds: Int32) throws(StorageError) {
        try check(sqlite3_busy_timeout(try connection(), busyTimeoutMilliseconds), context: "busy_timeout")
        let mode = try prepare("PRAGMA journal_mode=WAL")
        let isWAL = try mode.step() && mode.text(0).lowercased() == "wal"
        mode.reset()
        guard isWAL || path == ":memory:" else {
            throw .sqlite(code: SQLITE_ERROR, message: "journal_mode=WAL not supported for \(path)")
        }
        try execute("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
    }

    /// Runs one or more SQL statements that return no rows of interest.
    public func execute(_ sql: String) throws(StorageError) {
        var message: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(try connection(), sql, nil, nil, &message)
        guard code == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_free(message)
            throw .sqlite(code: code, message: "execute: \(text)")
        }
    }

    /// Returns a prepared statement for `sql`, reset with bindings cleared; reused from the cache when possible.
    public func prepare(_ sql: String) throws(StorageError) -> SQLiteStatement {
        if let cached = statementCache[sql] {
            cached.reset()
            return cached
        }
        let statement = try SQLiteStatement(connection: try connection(), sql: sql)
        if statementCache.count >= Self.statementCacheCapacity, !cacheOrder.isEmpty {
            statementCache.removeValue(forKey: cacheOrder.removeFirst())
        }
        statementCache[sql] = statement
        cacheOrder.append(sql)
        return statement
    }

    /// Runs `body` inside `BEGIN IMMEDIATE` … `COMMIT`; rolls back and rethrows if `body` throws.
    public func transaction<T>(_ body: () throws(StorageError) -> T) throws(StorageError) -> T {
        try execute("BEGIN IMMEDIATE")
        let result: T
        do {
            result = try body()
        } catch {
            rollbackIfNeeded()
            throw error
        }
        try commit()
        return result
    }

    /// Like the typed-throws overload, for bodies that throw other errors,
    /// which are rethrown unchanged (BEGIN and COMMIT failures are ``StorageError``).
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        let result: T
        do {
            result = try body()
        } catch {
            rollbackIfNeeded()
            throw error
        }
        try commit()
        return result
    }

    private func commit() throws(StorageError) {
        do {
            try execute("COMMIT")
        } catch {
            rollbackIfNeeded()
            throw error
        }
    }

    private func rollbackIfNeeded() {
        guard let handle, sqlite3_get_autocommit(handle) == 0 else { return }
        _ = sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
    }

    /// Number of prepared statements currently cached.
    public var cachedStatementCount: Int { statementCache.count }

    /// Rowid of the most recent successful INSERT.
    public var lastInsertRowID: Int64 {
        handle.map { sqlite3_last_insert_rowid($0) } ?? 0
    }

    /// Rows changed by the most recent INSERT, UPDATE or DELETE.
    public var changes: Int {
        handle.map { Int(sqlite3_changes($0)) } ?? 0
    }

    /// Finalizes cached statements and closes the connection. Idempotent.
    public func close() {
        statementCache.values.forEach { $0.finalize() }
        statementCache.removeAll()
        cacheOrder.removeAll()
        guard let handle else { return }
        sqlite3_close_v2(handle)
        self.handle = nil
    }

    private func connection() throws(StorageError) -> OpaquePointer {
        guard let handle else { throw .closed }
        return handle
    }

    private func check(_ code: Int32, context: String) throws(StorageError) {
        guard code == SQLITE_OK else { throw sqliteError(handle, code: code, context: context) }
    }
}

/// A prepared statement. Bind parameters (1-based), ``step()`` through rows, read columns (0-based).
public final class SQLiteStatement {
    /// The SQL text.
    public let sql: String
    private let connection: OpaquePointer
    private var statement: OpaquePointer?

    init(connection: OpaquePointer, sql: String) throws(StorageError) {
        self.sql = sql
        self.connection = connection
        var prepared: OpaquePointer?
        let code = sqlite3_prepare_v2(connection, sql, -1, &prepared, nil)
        guard code == SQLITE_OK, let prepared else {
            sqlite3_finalize(prepared)
            throw sqliteError(connection, code: code == SQLITE_OK ? SQLITE_MISUSE : code, context: "prepare \(sql)")
        }
        statement = prepared
    }

    deinit {
        finalize()
    }

    func finalize() {
        sqlite3_finalize(statement)
        statement = nil
    }

    /// Binds `value` to the 1-based parameter `index`.
    public func bind(_ index: Int32, _ value: SQLiteValue) throws(StorageError) {
        let handle = try prepared()
        let code: Int32
        switch value {
        case let .integer(number): code = sqlite3_bind_int64(handle, index, number)
        case let .text(string): code = try bindText(handle, index, string)
        case let .blob(bytes): code = try bindBlob(handle, index, bytes)
        case .null: code = sqlite3_bind_null(handle, index)
        }
        guard code == SQLITE_OK else { throw sqliteError(connection, code: code, context: "bind \(index) in \(sql)") }
    }

    /// Binds `values` to parameters 1, 2, ….
    public func bind(_ values: [SQLiteValue]) throws(StorageError) {
        for (offset, value) in values.enumerated() {
            guard let index = Int32(exactly: offset + 1) else { throw .invalidArgument("too many parameters") }
            try bind(index, value)
        }
    }

    /// Binds `values` to parameters 1, 2, ….
    public func bind(_ values: SQLiteValue...) throws(StorageError) {
        try bind(values)
    }

    private func bindText(_ handle: OpaquePointer, _ index: Int32, _ string: String) throws(StorageError) -> Int32 {
        let bytes = Array(string.utf8)
        guard let length = Int32(exactly: bytes.count) else { throw .invalidArgument("text too large to bind") }
        // An empty buffer may have no base address, which SQLite would bind as NULL.
        guard !bytes.isEmpty else { return sqlite3_bind_text(handle, index, "", 0, sqliteTransient()) }
        return bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                sqlite3_bind_text(handle, index, chars.baseAddress, length, sqliteTransient())
            }
        }
    }

    private func bindBlob(_ handle: OpaquePointer, _ index: Int32, _ bytes: [UInt8]) throws(StorageError) -> Int32 {
        guard let length = Int32(exactly: bytes.count) else { throw .invalidArgument("blob too large to bind") }
        guard !bytes.isEmpty else { return sqlite3_bind_zeroblob(handle, index, 0) }
        return bytes.withUnsafeBytes { sqlite3_bind_blob(handle, index, $0.baseAddress, length, sqliteTransient()) }
    }

    /// Advances to the next row: true if a row is available, false when done.
    public func step() throws(StorageError) -> Bool {
        let code = sqlite3_step(try prepared())
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw sqliteError(connection, code: code, context: "step \(sql)")
        }
    }

    /// Rewinds the statement and clears its bindings.
    public func reset() {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    /// Number of result columns.
    public var columnCount: Int32 { sqlite3_column_count(statement) }

    /// Integer value of 0-based `column` in the current row.
    public func int64(_ column: Int32) -> Int64 {
        sqlite3_column_int64(statement, column)
    }

    /// Blob value of `column` (empty for NULL or zero-length).
    public func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(statement, column))
        guard count > 0, let base = sqlite3_column_blob(statement, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Text value of `column` (empty for NULL).
    public func text(_ column: Int32) -> String {
        guard let base = sqlite3_column_text(statement, column) else { return "" }
        let count = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self)
    }

    /// Whether `column` is NULL in the current row.
    public func isNull(_ column: Int32) -> Bool {
        sqlite3_column_type(statement, column) == SQLITE_NULL
    }

    /// The value of `column` with its storage class.
    public func value(_ column: Int32) -> SQLiteValue {
        switch sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER: .integer(int64(column))
        case SQLITE_TEXT: .text(text(column))
        case SQLITE_BLOB: .blob(blob(column))
        case SQLITE_NULL: .null
        default: .text(text(column))
        }
    }

    private func prepared() throws(StorageError) -> OpaquePointer {
        guard let statement else { throw .closed }
        return statement
    }
}
