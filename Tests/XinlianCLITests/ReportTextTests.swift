import Testing
import XinlianCore
import XinlianCredit
import XinlianCrypto
@testable import xinlian

@Suite("xinlian report --format text")
struct ReportTextTests {
    /// The report of the sample generator's first enterprise, built from its sample statements.
    static func sampleReport() throws -> CreditReport {
        let suite = CryptoSuite.ed25519SHA256
        let bodies = try SampleGenerator(seed: 3).bodies(enterprises: 2, chainID: "xinlian-test", suite: suite)
        let entries = bodies.enumerated().map { index, statement in
            let transaction = Transaction(body: statement.body, signature: [], personal: statement.personal)
            return LedgerEntry(id: transaction.id(suite), transaction: transaction, height: UInt64(index + 1), index: 0,
                               blockTimeMs: statement.body.timeMs)
        }
        let subject = try #require(bodies.first?.body.subject)
        let last = try #require(entries.last)
        return ReportAssembler.assemble(subject: subject, entries: entries,
                                        asOf: ReportAsOf(height: last.height, blockHash: .zero, time: last.blockTimeMs),
                                        parameters: ReportParameters())
    }

    @Test func everySectionOnItsOwnLineAndTheTextEndsWithANewline() throws {
        let report = try Self.sampleReport()
        #expect(report.sources.count > 1)
        let text = ReportText.render(report)
        #expect(text.hasSuffix("Built from \(report.sources.count) transactions.\n"))
        #expect(!text.hasSuffix("\n\n"))
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.first == "Credit report for \(report.subject)" + (report.basicInfo.current.map { " — \($0.name ?? "")" } ?? ""))
        for heading in ["Operating status:", "Facilities (", "Overdue and default records (", "Collateral (",
                        "Guarantees given (", "Guarantees received (", "Public records (", "Disputes (", "Query records ("] {
            #expect(lines.contains { $0.hasPrefix(heading) }, "no line starts with \(heading)")
        }
        #expect(lines.filter { $0.hasPrefix("  ") }.count >= report.facilities.count)
    }
}
