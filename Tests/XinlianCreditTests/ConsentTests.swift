import Testing
import XinlianCore
import XinlianCredit
import XinlianCrypto

@Suite struct ConsentTests {
    /// bank-a holds a loanApplication consent for 2024-06-01...2025-05-31, committed on 2024-06-01.
    static func granted() -> (TestLedger, Hash32) {
        var ledger = TestLedger()
        let consent = ledger.add(.consentGranted, Examples.payload(.consentGranted), on: Fixture.day("2024-06-01"))
        return (ledger, consent)
    }

    static func valid(_ ledger: TestLedger, institution: InstitutionID = "bank-a", purpose: ConsentPurpose = .loanApplication,
                      on day: Day) -> Hash32? {
        ConsentRules.validConsent(for: institution, purpose: purpose, at: Fixture.noon(day), among: ledger.entries,
                                  subject: Fixture.subject)
    }

    @Test func missingConsent() {
        #expect(Self.valid(TestLedger(), on: Fixture.today) == nil)
    }

    @Test func validConsentIsFound() {
        let (ledger, consent) = Self.granted()
        #expect(Self.valid(ledger, on: Fixture.today) == consent)
        #expect(Self.valid(ledger, on: Fixture.day("2025-05-31")) == consent)
    }

    @Test func expiredConsent() {
        let (ledger, _) = Self.granted()
        #expect(Self.valid(ledger, on: Fixture.day("2025-06-01")) == nil)
    }

    @Test func consentNotYetCommitted() {
        let (ledger, _) = Self.granted()
        #expect(ConsentRules.validConsent(for: "bank-a", purpose: .loanApplication, at: Fixture.noon(Fixture.day("2024-06-01")) - 1,
                                          among: ledger.entries) == nil)
    }

    @Test func revokedConsentFromTheRevocationOn() {
        var (ledger, consent) = Self.granted()
        ledger.add(.consentRevoked, ["consent": .string(consent.hex), "revokedOn": .string("2024-06-20")], on: Fixture.day("2024-06-20"))
        #expect(Self.valid(ledger, on: Fixture.day("2024-06-19")) == consent)
        #expect(Self.valid(ledger, on: Fixture.day("2024-06-20")) == nil)
        #expect(Self.valid(ledger, on: Fixture.today) == nil)
    }

    @Test func wrongPurposeOrInstitution() {
        let (ledger, _) = Self.granted()
        #expect(Self.valid(ledger, purpose: .postLoanManagement, on: Fixture.today) == nil)
        #expect(Self.valid(ledger, institution: "bank-b", on: Fixture.today) == nil)
    }

    @Test func consentAboutAnotherEnterpriseIsIgnored() {
        var ledger = TestLedger()
        ledger.add(.consentGranted, Examples.payload(.consentGranted), subject: Fixture.other, on: Fixture.day("2024-06-01"))
        #expect(Self.valid(ledger, on: Fixture.today) == nil)
    }

    @Test func latestOfSeveralValidConsentsWins() {
        var (ledger, _) = Self.granted()
        let later = ledger.add(.consentGranted, Examples.payload(.consentGranted, ["grantedOn": .string("2024-06-10")]),
                               on: Fixture.day("2024-06-10"))
        #expect(Self.valid(ledger, on: Fixture.today) == later)
    }
}

@Suite struct SampleGeneratorTests {
    static let roles: [InstitutionID: Set<InstitutionRole>] = Dictionary(
        uniqueKeysWithValues: SampleGenerator.institutions.map { ($0.id, Set($0.roles)) })

    static func ledger(seed: UInt64, enterprises: Int) throws -> [Transaction] {
        try SampleGenerator(seed: seed).bodies(enterprises: enterprises, chainID: Fixture.chain, suite: Fixture.suite)
            .map { Transaction(body: $0.body, signature: [], personal: $0.personal) }
    }

    @Test func sameSeedSameSamplesOtherSeedOthers() {
        let first = SampleGenerator(seed: 7).transactions(enterprises: 12)
        #expect(first == SampleGenerator(seed: 7).transactions(enterprises: 12))
        #expect(first != SampleGenerator(seed: 8).transactions(enterprises: 12))
    }

    @Test(arguments: [UInt64(1), 42, 2_024])
    func everySampleSatisfiesTheCreditRules(seed: UInt64) throws {
        let transactions = try Self.ledger(seed: seed, enterprises: 25)
        var committed: [Hash32: Transaction] = [:]
        for transaction in transactions {
            let roles = Self.roles[transaction.body.reporter] ?? []
            let origin: CreditRules.Origin = transaction.body.kind == .queryRecord ? .node : .api
            do {
                try CreditRules.check(transaction: transaction, roles: roles, referenced: { committed[$0] }, origin: origin, suite: Fixture.suite)
            } catch {
                Issue.record("\(transaction.body.kind.rawValue) by \(transaction.body.reporter): \(error)")
            }
            committed[transaction.id(Fixture.suite)] = transaction
        }
    }

    @Test func samplesCoverEveryKindAndTheInterestingCases() throws {
        let samples = SampleGenerator(seed: 3).transactions(enterprises: 1)
        // Sample stories order no erasures: load and report benchmarks keep their personal data.
        #expect(Set(samples.map(\.kind)) == Set(Examples.creditKinds).subtracting([.erasureOrder]))
        let all = SampleGenerator(seed: 3).transactions(enterprises: 30)
        let text = all.map { String(decoding: $0.payload.canonicalText, as: UTF8.self) }.joined()
        for needle in [#""type":"intellectualProperty""#, #""type":"livestock""#, #""status":"overdue""#, #""reason":"writtenOff""#,
                       #""classification":"loss""#, #""retract":true"#, #""outcome":"#] {
            #expect(text.contains(needle), "missing \(needle)")
        }
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.timeMs <= $1.timeMs })
        for (index, sample) in all.enumerated() {
            #expect(sample.references.allSatisfy { $0.target < index })
            #expect(Self.roles[sample.reporter]?.contains(sample.reporterRole) == true)
        }
    }

    @Test func reportsOfSampleEnterprisesAssemble() throws {
        let transactions = try Self.ledger(seed: 11, enterprises: 6)
        let entries = transactions.enumerated().map { index, transaction in
            LedgerEntry(id: transaction.id(Fixture.suite), transaction: transaction, height: UInt64(index / 10 + 1),
                        index: UInt32(index % 10), blockTimeMs: transaction.body.timeMs)
        }
        let last = try #require(entries.last)
        let asOf = ReportAsOf(height: last.height, blockHash: .zero, time: last.blockTimeMs)
        let subjects = Array(Set(transactions.compactMap(\.body.subject)))
        #expect(subjects.count == 6)
        var given = 0
        for subject in subjects {
            let report = ReportAssembler.assemble(subject: subject, entries: entries, asOf: asOf, parameters: ReportParameters())
            #expect(report.basicInfo.current != nil)
            #expect(!report.facilities.isEmpty)
            #expect(Set(report.sources).count == report.sources.count)
            given += report.guarantees.given.count
        }
        #expect(given == 6)
    }
}
