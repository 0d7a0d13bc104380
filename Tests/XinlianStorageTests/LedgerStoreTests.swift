import Foundation
import Testing
import XinlianCore
import XinlianCrypto
import XinlianStorage

/// A consortium with one validator and one institution, and a way to grow a real ledger.
struct LedgerFixture {
    let consortium: Consortium
    let validatorKey: SigningKey
    let bankKey: SigningKey

    init(suite suiteID: CryptoSuiteID) throws {
        let suite = CryptoSuite(suiteID)
        validatorKey = try suite.signingKey(privateKey: [UInt8](repeating: 0, count: 31) + [7])
        bankKey = try suite.signingKey(privateKey: [UInt8](repeating: 0, count: 31) + [9])
        consortium = try Consortium(Genesis(
            chainId: "xinlian-test", cryptoSuite: suiteID, genesisTimeMs: 1_764_000_000_000, parameters: .defaults,
            institutions: [InstitutionRecord(id: "bank-a", name: "Bank A", roles: [.member],
                                             publicKey: bankKey.publicKey.bytes.hexString)],
            validators: [ValidatorRecord(id: "node0", institution: "bank-a", publicKey: validatorKey.publicKey.bytes.hexString,
                                         power: 10, p2pAddress: "127.0.0.1:1", apiAddress: "127.0.0.1:2")]))
    }

    func transactions(height: UInt64, count: Int, timeMs: UInt64? = nil) throws -> [Transaction] {
        try (0..<count).map { index in
            let subject = try USCC.withCheckCharacter(String(format: "91310000%09d", (Int(height) * 7 + index) % 11))
            let body = TransactionBody(chainID: consortium.chainID, kind: .facilityUpdated, reporter: "bank-a", subject: subject,
                                       timeMs: timeMs ?? 1_764_000_000_000 + height, nonce: height * 1_000 + UInt64(index),
                                       payload: Array("{\"balance\":\(index)}".utf8))
            return try Transaction.sign(body, with: bankKey)
        }
    }

    /// Appends `blocks` certified blocks to `store`.
    func grow(_ store: LedgerStore, blocks: Int, transactionsPerBlock: Int = 4, timeMs: UInt64? = nil) throws {
        for _ in 0..<blocks {
            let height = store.height + 1
            try append(try self.transactions(height: height, count: transactionsPerBlock, timeMs: timeMs), to: store,
                       timeMs: timeMs)
        }
    }

    /// Appends one certified block of `transactions` to `store`.
    func append(_ transactions: [Transaction], to store: LedgerStore, timeMs: UInt64? = nil) throws {
        let height = store.height + 1
        let prepared = try store.prepareState(transactions)
        let header = BlockHeader(chainID: consortium.chainID, height: height, timeMs: timeMs ?? 1_764_000_000_000 + height,
                                 previousHash: store.lastBlockHash,
                                 transactionsRoot: Block.transactionsRoot(transactions, suite: consortium.suite),
                                 stateRoot: prepared.stateRoot, validatorSetHash: consortium.validators.hash,
                                 proposer: "node0", transactionCount: UInt32(transactions.count))
        let hash = header.hash(consortium.suite)
        let vote = Vote(chainID: consortium.chainID, kind: .precommit, height: height, round: 0, blockHash: hash, validator: "node0")
        let certificate = CommitCertificate(height: height, round: 0, blockHash: hash, signatures: [
            CommitSignature(validator: "node0", signature: try validatorKey.sign(vote.signingBytes)),
        ])
        try store.append(CommittedBlock(block: Block(header: header, transactions: transactions), certificate: certificate),
                         prepared: prepared)
    }
}

@Suite("Ledger store: log, index, recovery")
struct LedgerStoreTests {
    /// Issue 8, attack 1: a certified block whose times do not fit SQLite's signed 64-bit integers trapped the
    /// index after the block was fsynced, and again on every restart and reindex. Storage of a certified block
    /// must never fail on its contents.
    @Test func timesBeyondInt64AreIndexedWithoutTrappingAndSurviveReopenAndReindex() throws {
        let fixture = try LedgerFixture(suite: .ed25519SHA256)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-time-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            try fixture.grow(store, blocks: 1)
            try fixture.grow(store, blocks: 1, timeMs: UInt64.max)
            #expect(store.height == 2)
            store.close()
        }
        try FileManager.default.removeItem(atPath: directory + "/index.sqlite")
        let reopened = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
        defer { reopened.close() }
        #expect(reopened.height == 2)
        let last = try fixture.transactions(height: 2, count: 1, timeMs: UInt64.max)[0]
        #expect(try reopened.location(of: last.id(fixture.consortium.suite))?.height == 2)
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func reindexEqualsLiveIndex(_ suite: CryptoSuiteID) throws {
        let fixture = try LedgerFixture(suite: suite)
        try withTemporaryDirectory { directory in
            let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            try fixture.grow(store, blocks: 12)
            let live = try store.indexDump()
            let subject = try #require(store.record(at: 3).block.transactions.first?.body.subject)
            let proof = try store.stateProof(subject: subject)
            store.close()
            #expect(live.count > 12 * 4)
            #expect(try LedgerStore.reindex(dataDirectory: directory, consortium: fixture.consortium) == 12)
            let reopened = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            defer { reopened.close() }
            #expect(try reopened.indexDump() == live)
            #expect(try reopened.stateProof(subject: subject) == proof)
        }
    }

    @Test func indexBehindTheLogCatchesUp() throws {
        let fixture = try LedgerFixture(suite: .ed25519SHA256)
        try withTemporaryDirectory { directory in
            let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            try fixture.grow(store, blocks: 3)
            store.close()
            // Save the index at height 3, grow to 6, then put the old index back: as if a crash hit between log and index.
            let index = LedgerStore.indexPath(directory)
            try copyIndex(from: index, to: directory + "/saved")
            let again = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            try fixture.grow(again, blocks: 3)
            let live = try again.indexDump()
            again.close()
            try copyIndex(from: directory + "/saved", to: index)
            let recovered = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            defer { recovered.close() }
            #expect(recovered.height == 6)
            #expect(try recovered.indexDump() == live)
        }
    }

    /// Cut the log at every record boundary and at points inside the last records: every block wholly before
    /// the cut survives, nothing after it does, and the store opens, re-indexes and grows again.
    @Test func tornTailAtEveryCutPoint() throws {
        let fixture = try LedgerFixture(suite: .ed25519SHA256)
        try withTemporaryDirectory { directory in
            let source = directory + "/source"
            let store = try LedgerStore(dataDirectory: source, consortium: fixture.consortium)
            try fixture.grow(store, blocks: 5, transactionsPerBlock: 2)
            let records = try (1...5).map { try store.record(at: $0) }
            store.close()
            let blocks = LedgerStore.blocksDirectory(source)
            let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: blocks).filter { $0.hasSuffix(".log") }.first)
            // Frame ends: a 16-byte segment header, then an 8-byte frame header and the record per block.
            var ends: [UInt64] = []
            var offset: UInt64 = 16
            for record in records {
                offset += 8 + UInt64(record.canonicalBytes.count)
                ends.append(offset)
            }
            #expect(try fileSize(blocks + "/" + segment) == offset)
            var cuts: [(UInt64, UInt64)] = []  // (cut, surviving height)
            for height in 2...5 {
                let start = ends[height - 2]
                cuts.append((start, UInt64(height - 1)))
                for cut in stride(from: start + 1, to: ends[height - 1], by: 53) { cuts.append((cut, UInt64(height - 1))) }
            }
            cuts.append((ends[4], 5))
            for (cut, survivors) in cuts {
                let copy = directory + "/cut-\(cut)"
                try copyDirectory(source, to: copy)
                try truncateFile(LedgerStore.blocksDirectory(copy) + "/" + segment, to: cut)
                // A write torn by a crash was never indexed (the index follows the fsynced log): start without one.
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: LedgerStore.indexPath(copy) + suffix) }
                let reopened = try LedgerStore(dataDirectory: copy, consortium: fixture.consortium)
                #expect(reopened.height == survivors, "cut at \(cut)")
                #expect(reopened.lastHeader == records[Int(survivors) - 1].block.header)
                #expect((reopened.recoveredTornTail != nil) == (cut != ends[Int(survivors) - 1]))
                try fixture.grow(reopened, blocks: 1)
                reopened.close()
                let third = try LedgerStore(dataDirectory: copy, consortium: fixture.consortium)
                #expect(third.height == survivors + 1)
                third.close()
                try FileManager.default.removeItem(atPath: copy)
            }
        }
    }

    @Test func corruptionBeforeTheTailRefusesToStartAndDeletesNothing() throws {
        let fixture = try LedgerFixture(suite: .ed25519SHA256)
        try withTemporaryDirectory { directory in
            let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            try fixture.grow(store, blocks: 4)
            store.close()
            let blocks = LedgerStore.blocksDirectory(directory)
            let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: blocks).filter { $0.hasSuffix(".log") }.first)
            try flipByte(blocks + "/" + segment, at: 100)
            let before = try snapshot(blocks)
            #expect(throws: StorageError.self) { try LedgerStore(dataDirectory: directory, consortium: fixture.consortium) }
            #expect(try snapshot(blocks) == before)
        }
    }

    private func copyIndex(from source: String, to destination: String) throws {
        let manager = FileManager.default
        for suffix in ["", "-wal", "-shm"] {
            if manager.fileExists(atPath: destination + suffix) { try manager.removeItem(atPath: destination + suffix) }
            if manager.fileExists(atPath: source + suffix) { try manager.copyItem(atPath: source + suffix, toPath: destination + suffix) }
        }
    }
}

@Suite("Ledger store: refusals")
struct LedgerStoreRefusalTests {
    /// The log is fsynced before the index: an index ahead of the log means committed blocks vanished.
    @Test func indexAheadOfTheLogIsRefusedNotRebuilt() throws {
        let fixture = try LedgerFixture(suite: .ed25519SHA256)
        try withTemporaryDirectory { directory in
            let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            try fixture.grow(store, blocks: 4)
            store.close()
            let blocks = LedgerStore.blocksDirectory(directory)
            let log = try BlockLog(directory: blocks, options: BlockLog.Options(recordSizeLimitBytes: 1 << 24))
            try log.truncate(toCount: 2)
            log.close()
            #expect(throws: StorageError.self) { try LedgerStore(dataDirectory: directory, consortium: fixture.consortium) }
            #expect(try LedgerStore.reindex(dataDirectory: directory, consortium: fixture.consortium) == 2)
        }
    }

    @Test func appendRefusesABlockThatDoesNotExtendTheChain() throws {
        let fixture = try LedgerFixture(suite: .ed25519SHA256)
        try withTemporaryDirectory { directory in
            let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            defer { store.close() }
            try fixture.grow(store, blocks: 2)
            let old = try store.record(at: 2)
            let prepared = try store.prepareState(old.block.transactions)
            #expect(throws: StorageError.self) { try store.append(old, prepared: prepared) }
            #expect(store.height == 2)
        }
    }
}
