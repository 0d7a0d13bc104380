import Testing
import XinlianStorage

@Suite struct SQLiteTests {
    private struct Row: Equatable {
        var id: Int64
        var name: String
        var data: [UInt8]
        var note: SQLiteValue
    }

    private let rows = [
        Row(id: 1, name: "信联 Xinlian", data: [0, 1, 2, 0, 255], note: .text("first")),
        Row(id: 2, name: "", data: [], note: .null),
        Row(id: Int64.max, name: "max", data: Array(repeating: 0xAB, count: 4_096), note: .integer(-7)),
    ]

    private func makeTable(_ database: SQLiteDatabase) throws {
        try database.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL, data BLOB NOT NULL, note)")
    }

    private func insert(_ rows: [Row], into database: SQLiteDatabase) throws(StorageError) {
        for row in rows {
            let statement = try database.prepare("INSERT INTO item (id, name, data, note) VALUES (?, ?, ?, ?)")
            try statement.bind([.integer(row.id), .text(row.name), .blob(row.data), row.note])
            #expect(try statement.step() == false)
        }
    }

    private func readAll(_ database: SQLiteDatabase) throws -> [Row] {
        let statement = try database.prepare("SELECT id, name, data, note FROM item ORDER BY id")
        var result: [Row] = []
        while try statement.step() {
            result.append(Row(id: statement.int64(0), name: statement.text(1), data: statement.blob(2),
                              note: statement.value(3)))
        }
        return result
    }

    @Test func walModeAndPragmasOnFileDatabase() throws {
        try withTemporaryDirectory { directory in
            let database = try SQLiteDatabase(path: directory + "/index.sqlite")
            let mode = try database.prepare("PRAGMA journal_mode")
            #expect(try mode.step())
            #expect(mode.text(0) == "wal")
            let keys = try database.prepare("PRAGMA foreign_keys")
            #expect(try keys.step())
            #expect(keys.int64(0) == 1)
            let synchronous = try database.prepare("PRAGMA synchronous")
            #expect(try synchronous.step())
            #expect(synchronous.int64(0) == 1)  // NORMAL
        }
    }

    @Test func insertInTransactionAndQueryBack() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            do {
                let database = try SQLiteDatabase(path: path)
                try makeTable(database)
                try database.transaction { () throws(StorageError) in try insert(rows, into: database) }
                #expect(try readAll(database) == rows)
            }
            let reopened = try SQLiteDatabase(path: path)
            #expect(try readAll(reopened) == rows)
            let nullCheck = try reopened.prepare("SELECT note FROM item WHERE id = ?")
            try nullCheck.bind(.integer(2))
            #expect(try nullCheck.step())
            #expect(nullCheck.isNull(0))
        }
    }

    @Test func rollbackOnThrowLeavesNothing() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        try makeTable(database)
        let failure = StorageError.invalidArgument("abort")
        let thrown = #expect(throws: StorageError.self) {
            try database.transaction { () throws(StorageError) in
                try insert(rows, into: database)
                throw failure
            }
        }
        #expect(thrown == failure)
        #expect(try readAll(database).isEmpty)
        try database.transaction { () throws(StorageError) in try insert(Array(rows.prefix(1)), into: database) }
        #expect(try readAll(database) == Array(rows.prefix(1)))
    }

    private struct Abort: Error, Equatable {}

    @Test func untypedTransactionRollsBackAndRethrowsBodyError() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        try makeTable(database)
        #expect(throws: Abort()) {
            try database.transaction {
                try insert(rows, into: database)
                throw Abort()
            }
        }
        #expect(try readAll(database).isEmpty)
        try database.transaction { try insert(rows, into: database) }
        #expect(try readAll(database) == rows)
    }

    @Test func transactionReturnsBodyValue() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        try makeTable(database)
        let changed = try database.transaction { () throws(StorageError) -> Int in
            try insert(rows, into: database)
            return database.changes
        }
        #expect(changed == 1)
        #expect(database.lastInsertRowID == Int64.max)
    }

    @Test func preparedStatementsAreCachedAndReset() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        try makeTable(database)
        let sql = "SELECT count(*) FROM item WHERE id > ?"
        let first = try database.prepare(sql)
        try first.bind(.integer(0))
        #expect(try first.step())
        let cachedCount = database.cachedStatementCount
        let second = try database.prepare(sql)
        #expect(first === second)
        #expect(database.cachedStatementCount == cachedCount)
        // Reset cleared the binding: a NULL parameter matches nothing, and stepping restarts.
        #expect(try second.step())
        #expect(second.int64(0) == 0)
    }

    @Test func statementCacheIsBounded() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        for value in 0..<(SQLiteDatabase.statementCacheCapacity * 2) {
            let statement = try database.prepare("SELECT \(value)")
            #expect(try statement.step())
            #expect(statement.int64(0) == Int64(value))
        }
        #expect(database.cachedStatementCount == SQLiteDatabase.statementCacheCapacity)
    }

    @Test func badSQLThrowsSQLiteError() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        let prepareError = #expect(throws: StorageError.self) { try database.prepare("SELEC nonsense") }
        #expect(prepareError?.code == "sqlite")
        #expect(prepareError?.description.contains("syntax error") == true)
        let executeError = #expect(throws: StorageError.self) { try database.execute("DROP TABLE missing") }
        #expect(executeError?.code == "sqlite")
    }

    @Test func constraintViolationThrowsSQLiteError() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        try database.execute("""
            CREATE TABLE parent (id INTEGER PRIMARY KEY);
            CREATE TABLE child (parent INTEGER NOT NULL REFERENCES parent(id));
            """)
        let insert = try database.prepare("INSERT INTO child (parent) VALUES (?)")
        try insert.bind(.integer(42))
        let error = #expect(throws: StorageError.self) { try insert.step() }
        #expect(error?.code == "sqlite")
        #expect(error?.description.contains("FOREIGN KEY") == true)
    }

    @Test func useAfterCloseThrowsClosed() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        let statement = try database.prepare("SELECT 1")
        database.close()
        #expect(throws: StorageError.closed) { try statement.step() }
        #expect(throws: StorageError.closed) { try database.execute("SELECT 1") }
    }
}
