import Testing
import XinlianCore
import XinlianCredit
import XinlianCrypto

/// `ConsentRules.authorize`: the decision a node makes before serving a report.
@Suite struct AuthorizeTests {
    static func query(_ purpose: QueryPurpose, consent: Hash32?, institution: InstitutionID = "bank-a") -> QueryRecord {
        QueryRecord(institution: institution, purpose: purpose, consent: consent, reportHeight: 1)
    }

    static func refusal(_ query: QueryRecord, requester: InstitutionID = "bank-a", roles: Set<InstitutionRole> = [.member],
                        ledger: TestLedger, on day: Day) -> String? {
        do {
            _ = try ConsentRules.authorize(query, requester: requester, roles: roles, subject: Fixture.subject,
                                           at: Fixture.noon(day), among: ledger.entries)
            return nil
        } catch {
            return error.code
        }
    }

    @Test func eachRefusalHasItsCode() throws {
        var ledger = TestLedger()
        let consent = ledger.add(.consentGranted, Examples.payload(.consentGranted), on: Fixture.day("2024-06-01"))
        let other = ledger.add(.consentGranted, Examples.payload(.consentGranted), subject: Fixture.other, on: Fixture.day("2024-06-01"))
        let loan = Self.query(.loanApplication, consent: consent)
        #expect(Self.refusal(loan, ledger: ledger, on: Fixture.today) == nil)
        #expect(try ConsentRules.authorize(loan, requester: "bank-a", roles: [.member], subject: Fixture.subject,
                                           at: Fixture.noon(Fixture.today), among: ledger.entries) == consent)
        #expect(Self.refusal(loan, requester: "bank-b", ledger: ledger, on: Fixture.today) == "consent_not_found")
        #expect(Self.refusal(Self.query(.loanApplication, consent: other), ledger: ledger, on: Fixture.today) == "consent_not_found")
        #expect(Self.refusal(Self.query(.creditLineReview, consent: consent), ledger: ledger, on: Fixture.today)
                == "consent_wrong_purpose")
        #expect(Self.refusal(loan, ledger: ledger, on: Fixture.day("2025-06-01")) == "consent_expired")
        ledger.add(.consentRevoked, ["consent": .string(consent.hex), "revokedOn": .string("2024-06-20")], on: Fixture.day("2024-06-20"))
        #expect(Self.refusal(loan, ledger: ledger, on: Fixture.day("2024-06-19")) == nil)
        #expect(Self.refusal(loan, ledger: ledger, on: Fixture.today) == "consent_revoked")
    }

    @Test func exemptPurposesNeedTheirRole() {
        let ledger = TestLedger()
        let supervision = Self.query(.supervision, consent: nil, institution: "nfra")
        #expect(Self.refusal(supervision, requester: "nfra", roles: [.regulator], ledger: ledger, on: Fixture.today) == nil)
        #expect(Self.refusal(supervision, requester: "nfra", roles: [.member], ledger: ledger, on: Fixture.today)
                == "purpose_not_permitted")
        let audit = Self.query(.audit, consent: nil, institution: "cpa")
        #expect(Self.refusal(audit, requester: "cpa", roles: [.auditor], ledger: ledger, on: Fixture.today) == nil)
        #expect(Self.refusal(audit, requester: "cpa", roles: [.regulator], ledger: ledger, on: Fixture.today)
                == "purpose_not_permitted")
    }

    @Test func auditorsMayRecordOnlyAuditQueries() throws {
        let audit = Fixture.tx(.queryRecord, ["institution": .string("cpa"), "purpose": .string("audit"),
                                              "reportHeight": .integer(3)], reporter: "cpa")
        try CreditRules.check(transaction: audit, roles: [.auditor], referenced: { _ in nil }, origin: .node, suite: Fixture.suite)
        let supervision = Fixture.tx(.queryRecord, ["institution": .string("cpa"), "purpose": .string("supervision"),
                                                    "reportHeight": .integer(3)], reporter: "cpa")
        #expect(throws: CreditError.self) {
            try CreditRules.check(transaction: supervision, roles: [.auditor], referenced: { _ in nil }, origin: .node, suite: Fixture.suite)
        }
    }
}
