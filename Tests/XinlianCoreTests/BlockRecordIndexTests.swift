import Testing
import XinlianCore
import XinlianCrypto

@Suite("Lazy reading of block records")
struct BlockRecordIndexTests {
    @Test(arguments: [0, 1, 7, 40])
    func rangesLeavesAndTransactionsMatchAFullDecode(_ count: Int) throws {
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let transactions = try (0..<count).map { try fixture.transaction($0, kind: $0 % 3 == 0 ? .facilityOpened : .facilityUpdated) }
        let record = try fixture.committedBlock(height: 1, previousHash: fixture.consortium.genesisHash, transactions: transactions)
        let lazy = try BlockRecordIndex(record: record.canonicalBytes)
        #expect(lazy.header == record.block.header)
        #expect(lazy.certificate == record.certificate)
        #expect(lazy.ranges.count == count)
        for (index, transaction) in transactions.enumerated() {
            #expect(Array(lazy.bytes[lazy.ranges[index]]) == transaction.canonicalBytes)
            #expect(try lazy.transaction(at: index) == transaction)
        }
        #expect(lazy.leafHashes(suite: fixture.consortium.suite) == Block.leafHashes(transactions, suite: fixture.consortium.suite))
        #expect(throws: DecodingError.self) { try lazy.transaction(at: count) }
    }

    @Test func truncatedOrExtendedRecordsAreRefused() throws {
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let record = try fixture.committedBlock(height: 1, previousHash: fixture.consortium.genesisHash,
                                                transactions: try (0..<3).map { try fixture.transaction($0) })
        let bytes = record.canonicalBytes
        for cut in [1, 50, bytes.count / 2, bytes.count - 1] {
            #expect(throws: DecodingError.self) { try BlockRecordIndex(record: Array(bytes.prefix(cut))) }
        }
        #expect(throws: DecodingError.self) { try BlockRecordIndex(record: bytes + [0]) }
    }
}
