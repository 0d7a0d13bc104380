import Foundation
import Testing
import XinlianCore
import XinlianCrypto
import XinlianStorage

/// Issue 9: the store of personal data notes what a committed block came without, keeps only what matches the
/// signed commitment when a peer gives it later, and forgets what the chain has since erased.
@Suite("Personal data store")
struct PersonalStoreTests {
    static let suite = CryptoSuite.ed25519SHA256
    static let subject = try! USCC.withCheckCharacter("92330106MA2KQ7788")

    /// A registration-like transaction whose payload commits to `personal`, at `nonce`.
    static func committing(to personal: PersonalData, nonce: UInt64, key: SigningKey) throws -> Transaction {
        let payload = Array(#"{"industry":"F5274","personal":"\#(personal.commitment(suite).hex)"}"#.utf8)
        let body = TransactionBody(chainID: "xinlian-test", kind: .registration, reporter: "registry", subject: subject,
                                   timeMs: 1_764_000_000_000, nonce: nonce, payload: payload)
        return try Transaction.sign(body, with: key, personal: personal)
    }

    static func record(height: UInt64, timeMs: UInt64, _ transactions: [Transaction]) -> CommittedBlock {
        let header = BlockHeader(chainID: "xinlian-test", height: height, timeMs: timeMs, previousHash: .zero,
                                 transactionsRoot: Block.transactionsRoot(transactions, suite: suite), stateRoot: .zero,
                                 validatorSetHash: .zero, proposer: "node0", transactionCount: UInt32(transactions.count))
        return CommittedBlock(block: Block(header: header, transactions: transactions),
                              certificate: CommitCertificate(height: height, round: 0, blockHash: header.hash(suite), signatures: []))
    }

    @Test func lackingPersonalDataIsNotedFilledOnlyWhenItMatchesAndForgottenOnErasure() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-personal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try PersonalStore(path: PersonalStore.path(directory), key: PersonalDataKey.generate())
        let key = try Self.suite.signingKey(privateKey: [UInt8](repeating: 0, count: 31) + [5])
        let personal = PersonalData(salt: Array(repeating: 1, count: 32), fields: Array(#"{"legalRepresentative":"王小明"}"#.utf8))
        let other = PersonalData(salt: Array(repeating: 2, count: 32), fields: Array(#"{"legalRepresentative":"李四"}"#.utf8))
        let held = try Self.committing(to: other, nonce: 1, key: key)
        let genuine = try Self.committing(to: personal, nonce: 2, key: key)
        let plain = Transaction(body: TransactionBody(chainID: "xinlian-test", kind: .registration, reporter: "registry",
                                                      subject: Self.subject, timeMs: 1_764_000_000_000, nonce: 3,
                                                      payload: Array(#"{"industry":"F5274"}"#.utf8)),
                                signature: Array(repeating: 0, count: 64))
        // Block 3 came with one transaction's personal data but not the other's; a payload without a commitment
        // lacks nothing.
        try store.put(Self.record(height: 3, timeMs: 1_764_000_000_003, [held, genuine.withoutPersonalData, plain]),
                      suite: Self.suite)
        #expect(try store.missingHeights(limit: 64) == [3])
        #expect(try store.missingCount() == 1)

        // Forged data (another person's name, salted to look real) is not kept; data for another height neither.
        var forged = genuine
        forged.personal = other
        #expect(try store.fill([forged], height: 3, suite: Self.suite) == 0)
        #expect(try store.fill([genuine], height: 4, suite: Self.suite) == 0)
        #expect(try store.data([genuine.id(Self.suite)]).isEmpty)
        // The genuine copy is kept once; the held one is untouched.
        #expect(try store.fill([genuine, held], height: 3, suite: Self.suite) == 1)
        #expect(try store.data([genuine.id(Self.suite)])[genuine.id(Self.suite)] == personal)
        #expect(try store.missingHeights(limit: 64).isEmpty)
        #expect(try store.fill([genuine], height: 3, suite: Self.suite) == 0, "kept twice")

        // What the chain erases is no longer asked for: an erasure order, and the retention period.
        let lateGenuine = try Self.committing(to: personal, nonce: 4, key: key)
        try store.put(Self.record(height: 5, timeMs: 1_764_000_000_005, [lateGenuine.withoutPersonalData]), suite: Self.suite)
        #expect(try store.missingHeights(limit: 64) == [5])
        let orderHeader = Self.record(height: 6, timeMs: 1_764_000_000_006, []).block.header
        try store.erase(dueAt: orderHeader, retention: ConsensusParameters.defaults, orders: [Self.subject])
        #expect(try store.missingHeights(limit: 64).isEmpty)
        #expect(try store.count() == 0)
        let again = try Self.committing(to: personal, nonce: 5, key: key)
        try store.put(Self.record(height: 7, timeMs: 1_764_000_000_007, [again.withoutPersonalData]), suite: Self.suite)
        var retention = ConsensusParameters.defaults
        retention.personalDataRetentionDays = 1
        let dayLater = Self.record(height: 8, timeMs: 1_764_000_000_007 + 86_400_000, []).block.header
        try store.erase(dueAt: dayLater, retention: retention, orders: [])
        #expect(try store.missingHeights(limit: 64).isEmpty)
        // Rows of a block a crash kept out of the log go too.
        try store.put(Self.record(height: 9, timeMs: 1_764_000_000_009, [try Self.committing(to: personal, nonce: 6, key: key).withoutPersonalData]),
                      suite: Self.suite)
        try store.drop(above: 8)
        #expect(try store.missingHeights(limit: 64).isEmpty)
    }

    /// Issue 9 ("what is encrypted"): a copy of the data directory without the node's key holds no readable name;
    /// another key is refused by name; rows an older version wrote in clear are encrypted on first open.
    @Test func personalDataIsEncryptedAtRestUnderTheNodesKey() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-personal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = PersonalStore.path(directory)
        let signer = try Self.suite.signingKey(privateKey: [UInt8](repeating: 0, count: 31) + [5])
        let name = "王小明"
        let personal = PersonalData(salt: Array(repeating: 1, count: 32), fields: Array(#"{"legalRepresentative":"\#(name)"}"#.utf8))
        let statement = try Self.committing(to: personal, nonce: 1, key: signer)
        let id = statement.id(Self.suite)
        func fileHolds(_ text: String) -> Bool {
            [path, path + "-wal"].contains { FileManager.default.contents(atPath: $0)?.range(of: Data(text.utf8)) != nil }
        }

        // An older version's store: the same table, the data in clear.
        let legacy = try SQLiteDatabase(path: path)
        try legacy.execute("""
            CREATE TABLE personal(id BLOB PRIMARY KEY, subject TEXT, height INTEGER NOT NULL, committed_ms INTEGER NOT NULL,
                data BLOB NOT NULL) WITHOUT ROWID;
            """)
        let insert = try legacy.prepare("INSERT INTO personal VALUES (?, ?, 1, 1764000000001, ?)")
        try insert.bind(.blob(id.bytes), .text(Self.subject.code), .blob(personal.canonicalBytes))
        _ = try insert.step()
        insert.reset()
        legacy.close()
        #expect(fileHolds(name), "the legacy fixture holds the name in clear")

        let key = PersonalDataKey.generate()
        let keyPath = directory + "/personal.key"
        // A tool reading it (export) reads the rows as written and binds no key to the store.
        do {
            let reader = try PersonalStore(path: path, key: key, adoptingKey: false)
            #expect(try reader.all(throughHeight: 1).map(\.data) == [personal])
        }
        #expect(try !PersonalStore.isKeyed(path: path), "a reader bound its key to the store")
        try key.write(path: keyPath)
        #expect(throws: StorageError.self, "a key file is never overwritten") { try PersonalDataKey.generate().write(path: keyPath) }
        let loaded = try PersonalDataKey.load(path: keyPath)
        #expect((try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? Int) == 0o600)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keyPath)
        #expect(throws: StorageError.self, "a key others can read is refused") { try PersonalDataKey.load(path: keyPath) }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyPath)
        do {
            let store = try PersonalStore(path: path, key: loaded)
            #expect(try store.data([id])[id] == personal, "the legacy row reads back under the key")
            #expect(!fileHolds(name), "the legacy row was left in clear")
            try store.put(Self.record(height: 2, timeMs: 1_764_000_000_002, [try Self.committing(to: personal, nonce: 2, key: signer)]),
                          suite: Self.suite)
            #expect(!fileHolds(name), "a new row was written in clear")
        }
        // Another key opens nothing and says why, for the node and for a reader; without a key nothing is exported.
        #expect(throws: StorageError.self) { try PersonalStore(path: path, key: PersonalDataKey.generate()) }
        #expect(throws: StorageError.self) { try PersonalStore(path: path, key: PersonalDataKey.generate(), adoptingKey: false) }
        #expect(throws: StorageError.self) { try PersonalStore(path: path, key: nil).all(throughHeight: 10) }
        #expect(try PersonalStore(path: path, key: key, adoptingKey: false).all(throughHeight: 10).count == 2)
        #expect(try PersonalStore(path: path, key: key).data([id])[id] == personal)
        // The key file lost: no new key is made for a store encrypted with one (it would open nothing).
        try FileManager.default.removeItem(atPath: keyPath)
        #expect(throws: StorageError.self) { try PersonalDataKey.loadOrCreate(path: keyPath, dataDirectory: directory) }
        #expect(!FileManager.default.fileExists(atPath: keyPath))
    }

    /// Review of issue 9's repair: blocks committed before the store noted what was missing (an older version), or
    /// a store moved aside after its key was lost, are looked at when the ledger opens, so the node asks its peers
    /// for all of it; what the chain erased is not asked for.
    @Test func aStoreThatNeverLookedNotesWhatTheLedgerLacks() throws {
        let fixture = try LedgerFixture(suite: .ed25519SHA256)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-scan-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let personal = PersonalData(salt: Array(repeating: 1, count: 32), fields: Array(#"{"legalRepresentative":"王小明"}"#.utf8))
        let statement = try Self.committing(to: personal, nonce: 1, key: fixture.bankKey)
        do {
            let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium,
                                        personalDataKey: PersonalDataKey.generate())
            try fixture.grow(store, blocks: 2)
            try fixture.append([statement], to: store)
            try fixture.grow(store, blocks: 2)
            #expect(try store.personal.count() == 1)
            #expect(try store.personal.missingHeights(limit: 64).isEmpty)
            store.close()
        }
        // The key is lost: the store is moved aside, and the node starts with a new key and an empty store.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: PersonalStore.path(directory) + suffix) }
        let reopened = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium,
                                       personalDataKey: PersonalDataKey.generate())
        #expect(try reopened.personal.missingHeights(limit: 64) == [3])
        #expect(try reopened.personal.scannedThrough() == 5)
        reopened.close()
    }
}
