import Foundation
import Testing
import XinlianCore
import XinlianCrypto
import XinlianStorage

/// Issue 10: the index keeps where each transaction's bytes lie in its block's record, so that reports and reference
/// lookups read one transaction's bytes instead of decoding its whole block (up to 5,000 transactions).
@Suite("Index: transactions read from their own bytes")
struct TransactionBytesTests {
    /// Every subject's transactions, read through the index's byte ranges, equal what was committed.
    @Test(arguments: CryptoSuiteID.allCases)
    func transactionsReadFromTheirBytesEqualTheCommittedOnes(_ suite: CryptoSuiteID) throws {
        let fixture = try LedgerFixture(suite: suite)
        try withTemporaryDirectory { directory in
            let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            defer { store.close() }
            try fixture.grow(store, blocks: 5, transactionsPerBlock: 7)
            var read = 0
            for height in UInt64(1)...5 {
                let record = try store.record(at: height)
                for (position, transaction) in record.block.transactions.enumerated() {
                    let id = transaction.id(fixture.consortium.suite)
                    let indexed = try #require(try store.indexedTransaction(id))
                    #expect(indexed.location == TransactionLocation(height: height, index: position))
                    #expect(indexed.bytes.length == transaction.canonicalBytes.count)
                    #expect(indexed.blockTimeMs == record.block.header.timeMs)
                    #expect(try store.transaction(indexed) == transaction)
                    read += 1
                }
            }
            #expect(read == 35)
            #expect(try store.indexedTransaction(Hash32(bytes: [UInt8](repeating: 1, count: 32)) ?? .zero) == nil)
        }
    }

    /// A byte of a transaction flipped on disk while the node runs (opening the log checks every frame) is found by
    /// the index's checksum (the whole frame's is not read): the read fails naming the segment file, and nothing wrong
    /// is returned.
    @Test func aFlippedByteInATransactionIsAFaultNotAnAnswer() throws {
        let fixture = try LedgerFixture(suite: .ed25519SHA256)
        try withTemporaryDirectory { directory in
            let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            defer { store.close() }
            try fixture.grow(store, blocks: 3, transactionsPerBlock: 5)
            let target = try store.record(at: 2).block.transactions[3]
            let indexed = try #require(try store.indexedTransaction(target.id(fixture.consortium.suite)))
            #expect(try store.transaction(indexed) == target)
            try Self.flipByte(inside: target.canonicalBytes, under: LedgerStore.blocksDirectory(directory))
            #expect {
                try store.transaction(indexed)
            } throws: { error in
                guard case .corrupt(let file, _, let reason)? = error as? StorageError else { return false }
                return file.hasPrefix("segment-") && reason.contains("checksum mismatch")
            }
        }
    }

    /// An index row pointing at another transaction's bytes (a stale or tampered index) is refused by the id check.
    @Test func anIndexRowNamingOtherBytesIsRefused() throws {
        let fixture = try LedgerFixture(suite: .ed25519SHA256)
        try withTemporaryDirectory { directory in
            let (first, second): (Transaction, Transaction)
            do {
                let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
                try fixture.grow(store, blocks: 2, transactionsPerBlock: 3)
                let transactions = try store.record(at: 2).block.transactions
                (first, second) = (transactions[0], transactions[1])
                store.close()
            }
            let suite = fixture.consortium.suite
            do {
                let database = try SQLiteDatabase(path: LedgerStore.indexPath(directory))
                try database.execute("""
                    UPDATE transactions SET (record_offset, record_length, checksum) =
                        (SELECT record_offset, record_length, checksum FROM transactions WHERE hex(id) = '\(second.id(suite).hex.uppercased())')
                    WHERE hex(id) = '\(first.id(suite).hex.uppercased())'
                    """)
            }
            let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            defer { store.close() }
            let indexed = try #require(try store.indexedTransaction(first.id(suite)))
            #expect {
                try store.transaction(indexed)
            } throws: { error in
                guard case .corrupt(_, _, let reason)? = error as? StorageError else { return false }
                return reason.contains("reindex")
            }
        }
    }

    /// A damaged or tampered index row with byte ranges no record has (negative, past the record, at the integers'
    /// limits) is a fault naming the segment file, never a trap on the arithmetic.
    static let ranges: [[Int64]] = [[Int64.max, Int64.max], [-5, 10], [0, -1], [Int64.min, 1], [3, Int64.max], [1_000_000, 1]]

    @Test(arguments: ranges)
    func byteRangesOutsideTheRecordAreFaults(_ pair: [Int64]) throws {
        let range = (offset: pair[0], length: pair[1])
        let fixture = try LedgerFixture(suite: .ed25519SHA256)
        try withTemporaryDirectory { directory in
            let target: Transaction
            do {
                let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
                try fixture.grow(store, blocks: 2, transactionsPerBlock: 3)
                target = try store.record(at: 2).block.transactions[1]
                store.close()
            }
            let id = target.id(fixture.consortium.suite)
            do {
                let database = try SQLiteDatabase(path: LedgerStore.indexPath(directory))
                try database.execute("""
                    UPDATE transactions SET record_offset = \(range.offset), record_length = \(range.length)
                    WHERE hex(id) = '\(id.hex.uppercased())'
                    """)
                database.close()
            }
            let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            defer { store.close() }
            let indexed = try #require(try store.indexedTransaction(id))
            #expect {
                try store.transaction(indexed)
            } throws: { error in
                guard case .corrupt(let file, _, _)? = error as? StorageError else { return false }
                return file.hasPrefix("segment-")
            }
        }
    }

    /// An index of an older schema (here version 1: no byte ranges, no report tables) is rebuilt from the block log
    /// when the store opens, never migrated in place or read half-filled; the rebuilt index equals the live one.
    @Test func anIndexOfAnotherSchemaIsRebuiltOnOpen() throws {
        let fixture = try LedgerFixture(suite: .ed25519SHA256)
        try withTemporaryDirectory { directory in
            let (old, live): (Transaction, [String])
            do {
                let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
                try fixture.grow(store, blocks: 3, transactionsPerBlock: 4)
                old = try store.record(at: 2).block.transactions[2]
                live = try store.indexDump()
                #expect(store.rebuiltIndex == nil)
                store.close()
            }
            do {
                let database = try SQLiteDatabase(path: LedgerStore.indexPath(directory))
                try database.execute("""
                    ALTER TABLE transactions DROP COLUMN checksum;
                    ALTER TABLE transactions DROP COLUMN record_length;
                    ALTER TABLE transactions DROP COLUMN record_offset;
                    DROP TABLE counterparties; DROP TABLE transaction_refs;
                    UPDATE meta SET value = 1 WHERE key = 'schema_version';
                    """)
                database.close()
            }
            #expect(try LedgerIndex.stored(path: LedgerStore.indexPath(directory))?.version == 1)
            let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            defer { store.close() }
            #expect(store.rebuiltIndex == 1)
            #expect(try store.indexDump() == live)
            let indexed = try #require(try store.indexedTransaction(old.id(fixture.consortium.suite)))
            #expect(try store.transaction(indexed) == old)
            #expect(try LedgerIndex.stored(path: LedgerStore.indexPath(directory))?.version == LedgerIndex.schemaVersion)
        }
    }

    /// An index of an older schema that is ahead of the block log (committed blocks vanished from the log) is refused
    /// like any such index, not deleted and rebuilt over the loss (which would also drop the lost blocks' personal data).
    @Test func anOlderIndexAheadOfTheLogIsRefusedNotRebuilt() throws {
        let fixture = try LedgerFixture(suite: .ed25519SHA256)
        try withTemporaryDirectory { directory in
            do {
                let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
                try fixture.grow(store, blocks: 3, transactionsPerBlock: 2)
                store.close()
            }
            do {
                let database = try SQLiteDatabase(path: LedgerStore.indexPath(directory))
                try database.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'")
                database.close()
                let log = try BlockLog(directory: LedgerStore.blocksDirectory(directory))
                try log.truncate(toCount: 2)
                log.close()
            }
            #expect {
                try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            } throws: { error in
                guard case .corrupt(_, _, let reason)? = error as? StorageError else { return false }
                return reason.contains("missing from the log")
            }
            #expect(try LedgerIndex.stored(path: LedgerStore.indexPath(directory))?.height == 3)
        }
    }

    /// Flips one byte in the middle of the only occurrence of `bytes` in the segment files under `directory`.
    static func flipByte(inside bytes: [UInt8], under directory: String) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("segment-") }
        for file in files {
            let path = directory + "/" + file
            var contents = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            guard let start = Self.firstIndex(of: bytes, in: contents) else { continue }
            contents[start + bytes.count / 2] ^= 0x01
            try Data(contents).write(to: URL(fileURLWithPath: path))
            return
        }
        Issue.record("the transaction's bytes are in no segment file")
    }

    static func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        return (0...(haystack.count - needle.count)).first { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}
