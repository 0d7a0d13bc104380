import Foundation
import Testing
import XinlianCore
import XinlianCrypto
import XinlianNode

/// A member that floods valid statements (through any node's API, or by gossip) holds at most its share of the
/// mempool; the others' statements still get in (issue 8: every budget per sender).
@Suite("Mempool shares")
struct MempoolTests {
    static func entry(_ n: Int, reporter: InstitutionID) throws -> Mempool.Entry {
        let body = TransactionBody(chainID: "xinlian-test", kind: .facilityOpened, reporter: reporter,
                                   subject: try USCC.withCheckCharacter(String(format: "91310000%09d", n % 7)),
                                   timeMs: 1_764_000_000_000, nonce: UInt64(n), payload: Array("{}".utf8))
        let transaction = Transaction(body: body, signature: [])
        return Mempool.Entry(id: transaction.id(.ed25519SHA256), transaction: transaction, sizeBytes: 100, admittedMs: 0)
    }

    @Test func oneReporterHoldsAtMostItsShareAndOthersStillFit() throws {
        var mempool = Mempool(transactionLimit: 40, bytesLimit: 1 << 20)
        #expect(mempool.reporterTransactionLimit == 10)
        var flood: [Mempool.Entry] = []
        for n in 0..<10 { flood.append(try Self.entry(n, reporter: "bank-a")) }
        #expect(mempool.refusal(flood) == nil)
        for entry in flood { mempool.insert(entry) }
        let more = try Self.entry(10, reporter: "bank-a")
        #expect(mempool.refusal([more])?.contains("bank-a already has its share") == true)
        #expect(mempool.refusal([try Self.entry(11, reporter: "bank-b")]) == nil)
        // Committing some frees the reporter's share again.
        mempool.remove([flood[0].id])
        #expect(mempool.held(by: "bank-a").count == 9)
        #expect(mempool.refusal([more]) == nil)
        mempool.remove(flood.map(\.id))
        #expect(mempool.held(by: "bank-a").count == 0)
        #expect(mempool.bytes == 0)
    }
}
