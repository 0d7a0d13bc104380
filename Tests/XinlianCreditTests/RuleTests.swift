import Testing
import XinlianCore
import XinlianCredit
import XinlianCrypto

struct RoleCase: Sendable, CustomTestStringConvertible {
    let kind: TransactionKind
    let roles: Set<InstitutionRole>
    let allowed: Bool
    var testDescription: String { "\(kind.rawValue) by \(roles.map(\.rawValue).sorted()) \(allowed ? "allowed" : "refused")" }
}

let directRoleCases: [RoleCase] = [
    RoleCase(kind: .registration, roles: [.registry], allowed: true),
    RoleCase(kind: .registration, roles: [.member], allowed: false),
    RoleCase(kind: .registration, roles: [.regulator], allowed: false),
    RoleCase(kind: .operatingStatus, roles: [.registry], allowed: true),
    RoleCase(kind: .operatingStatus, roles: [.member], allowed: false),
    RoleCase(kind: .facilityOpened, roles: [.member], allowed: true),
    RoleCase(kind: .facilityOpened, roles: [.registry], allowed: false),
    RoleCase(kind: .facilityOpened, roles: [.auditor], allowed: false),
    RoleCase(kind: .facilityUpdated, roles: [.member], allowed: true),
    RoleCase(kind: .facilityClosed, roles: [.bureau], allowed: false),
    RoleCase(kind: .collateralRegistered, roles: [.member], allowed: true),
    RoleCase(kind: .collateralReleased, roles: [.regulator], allowed: false),
    RoleCase(kind: .guaranteeIssued, roles: [.member], allowed: true),
    RoleCase(kind: .guaranteeIssued, roles: [.bureau], allowed: false),
    RoleCase(kind: .publicRecord, roles: [.registry], allowed: true),
    RoleCase(kind: .publicRecord, roles: [.regulator], allowed: true),
    RoleCase(kind: .publicRecord, roles: [.member], allowed: false),
    RoleCase(kind: .consentGranted, roles: [.member], allowed: true),
    RoleCase(kind: .consentGranted, roles: [.bureau], allowed: true),
    RoleCase(kind: .consentGranted, roles: [.regulator], allowed: false),
    RoleCase(kind: .facilityOpened, roles: [], allowed: false),
    RoleCase(kind: .facilityOpened, roles: [.registry, .member], allowed: true),
]

@Suite struct RoleRuleTests {
    static func none(_ id: Hash32) -> Transaction? { nil }

    @Test(arguments: directRoleCases)
    func rolesPermitKinds(role: RoleCase) {
        let transaction = Fixture.tx(role.kind, Examples.payload(role.kind))
        do {
            try CreditRules.check(transaction: transaction, roles: role.roles, referenced: Self.none, suite: Fixture.suite)
            #expect(role.allowed)
        } catch {
            #expect(!role.allowed, "\(error)")
            #expect(error.code == "role_not_permitted")
            #expect(error.path == role.kind.rawValue)
        }
    }

    @Test func queryRecordsComeOnlyFromNodes() throws {
        var ledger = TestLedger()
        let consent = ledger.add(.consentGranted, Examples.payload(.consentGranted), on: Fixture.day("2024-06-01"))
        let query = Fixture.tx(.queryRecord, Examples.payload(.queryRecord, ["consent": .string(consent.hex)]), reporter: "bank-a")
        #expect(throws: CreditError(code: "kind_not_submittable", path: "queryRecord", rule: "is written by a node, never through the API")) {
            try CreditRules.check(transaction: query, roles: [.member], referenced: ledger.lookup, suite: Fixture.suite)
        }
        try CreditRules.check(transaction: query, roles: [.member], referenced: ledger.lookup, origin: .node, suite: Fixture.suite)
    }

    @Test func queryRecordMustNameAMatchingConsent() {
        var ledger = TestLedger()
        let consent = ledger.add(.consentGranted, Examples.payload(.consentGranted), reporter: "bank-b", on: Fixture.day("2024-06-01"))
        let wrongInstitution = Fixture.tx(.queryRecord, Examples.payload(.queryRecord, ["consent": .string(consent.hex)]))
        #expect(throws: CreditError(code: "invalid_reference", path: "queryRecord.consent", rule: "must name a consent granted to bank-a")) {
            try CreditRules.check(transaction: wrongInstitution, roles: [.member], referenced: ledger.lookup, origin: .node, suite: Fixture.suite)
        }
        let wrongPurpose = Fixture.tx(.queryRecord, Examples.payload(.queryRecord, [
            "consent": .string(consent.hex), "institution": .string("bank-b"), "purpose": .string("guaranteeReview"),
        ]), reporter: "bank-b")
        #expect(throws: CreditError(code: "invalid_reference", path: "queryRecord.consent", rule: "must name a consent for purpose guaranteeReview")) {
            try CreditRules.check(transaction: wrongPurpose, roles: [.member], referenced: ledger.lookup, origin: .node, suite: Fixture.suite)
        }
        let late = Fixture.tx(.queryRecord, Examples.payload(.queryRecord, ["consent": .string(consent.hex), "institution": .string("bank-b")]),
                              reporter: "bank-b", on: Fixture.day("2025-06-01"))
        #expect(throws: CreditError(code: "invalid_reference", path: "queryRecord.consent", rule: "must name an unexpired consent")) {
            try CreditRules.check(transaction: late, roles: [.member], referenced: ledger.lookup, origin: .node, suite: Fixture.suite)
        }
    }

    /// Issue 8, attack 3: a query record is its requester's own statement, whatever carries it (gossip, a
    /// proposal, a synced block): a member could otherwise record queries in another institution's name, or
    /// permanent "supervised by the regulator" entries in any report.
    @Test func queryRecordsAreTheReportersOwnAndSupervisionIsTheRegulators() {
        let impersonation = Fixture.tx(.queryRecord, Examples.payload(.queryRecord, [
            "institution": .string("nfra"), "purpose": .string("supervision"), "consent": nil,
        ]), reporter: "bank-a")
        #expect(throws: CreditError(code: "query_mismatch", path: "queryRecord.institution",
                                    rule: "must be the reporter, bank-a (a query is recorded by the institution that asked)")) {
            try CreditRules.check(transaction: impersonation, roles: [.member], referenced: Self.none, origin: .node, suite: Fixture.suite)
        }
        let supervision = Fixture.tx(.queryRecord, Examples.payload(.queryRecord, [
            "institution": .string("bank-a"), "purpose": .string("supervision"), "consent": nil,
        ]), reporter: "bank-a")
        #expect(throws: CreditError(code: "purpose_not_permitted", path: "queryRecord.purpose",
                                    rule: "supervision is only for the regulator role")) {
            try CreditRules.check(transaction: supervision, roles: [.member], referenced: Self.none, origin: .node, suite: Fixture.suite)
        }
        let regulator = Fixture.tx(.queryRecord, Examples.payload(.queryRecord, [
            "institution": .string("nfra"), "purpose": .string("supervision"), "consent": nil,
        ]), reporter: "nfra")
        #expect(throws: Never.self) {
            try CreditRules.check(transaction: regulator, roles: [.regulator], referenced: Self.none, origin: .node, suite: Fixture.suite)
        }
    }

    @Test func governanceIsNotACreditKind() {
        let body = TransactionBody(chainID: Fixture.chain, kind: .governance, reporter: "bank-a", subject: nil, timeMs: 0, nonce: 0,
                                   payload: Array("{}".utf8))
        #expect(throws: CreditError(code: "kind_not_supported", path: "governance", rule: "governance is not a credit statement")) {
            try CreditRules.check(transaction: Transaction(body: body, signature: []), roles: [.registry], referenced: Self.none, suite: Fixture.suite)
        }
    }

    @Test func statementDatesMayNotBeAfterTheTransaction() {
        let transaction = Fixture.tx(.facilityOpened, Examples.payload(.facilityOpened), on: Fixture.day("2023-01-09"))
        #expect(throws: CreditError.invalidValue("facilityOpened.openedOn", "must not be after the transaction's date 2023-01-09")) {
            try CreditRules.check(transaction: transaction, roles: [.member], referenced: Self.none, suite: Fixture.suite)
        }
    }

    @Test func itemReferencesMustMatch() {
        var ledger = TestLedger()
        let opening = ledger.add(.facilityOpened, Examples.payload(.facilityOpened), on: Fixture.day("2023-01-10"))
        let good = Fixture.tx(.facilityUpdated, Examples.payload(.facilityUpdated, ["opening": .string(opening.hex)]))
        #expect(throws: Never.self) { try CreditRules.check(transaction: good, roles: [.member], referenced: ledger.lookup, suite: Fixture.suite) }
        let otherID = Fixture.tx(.facilityUpdated, Examples.payload(.facilityUpdated, [
            "opening": .string(opening.hex), "facilityId": .string("LN-OTHER"),
        ]))
        #expect(throws: CreditError.invalidValue("facilityUpdated.facilityId", "must equal the facilityId of the facilityOpened named by opening")) {
            try CreditRules.check(transaction: otherID, roles: [.member], referenced: ledger.lookup, suite: Fixture.suite)
        }
        let otherReporter = Fixture.tx(.facilityClosed, Examples.payload(.facilityClosed, ["opening": .string(opening.hex)]), reporter: "bank-b")
        #expect(throws: CreditError(code: "invalid_reference", path: "facilityClosed.opening", rule: "must name a statement by the same reporter")) {
            try CreditRules.check(transaction: otherReporter, roles: [.member], referenced: ledger.lookup, suite: Fixture.suite)
        }
        let wrongKind = Fixture.tx(.guaranteeReleased, Examples.payload(.guaranteeReleased, ["issuance": .string(opening.hex)]))
        #expect(throws: CreditError(code: "invalid_reference", path: "guaranteeReleased.issuance",
                                    rule: "must name a guaranteeIssued transaction, not facilityOpened")) {
            try CreditRules.check(transaction: wrongKind, roles: [.member], referenced: ledger.lookup, suite: Fixture.suite)
        }
        let missing = Fixture.tx(.guaranteeReleased, Examples.payload(.guaranteeReleased))
        #expect(throws: CreditError(code: "unknown_reference", path: "guaranteeReleased.issuance", rule: "must name a committed transaction")) {
            try CreditRules.check(transaction: missing, roles: [.member], referenced: ledger.lookup, suite: Fixture.suite)
        }
    }

    @Test func guarantorMustDifferFromBorrower() {
        let own = Fixture.tx(.guaranteeIssued, Examples.payload(.guaranteeIssued, ["guarantor": .string(Fixture.subject.code)]))
        #expect(throws: CreditError.invalidValue("guaranteeIssued.guarantor", "must differ from the subject (the borrower)")) {
            try CreditRules.check(transaction: own, roles: [.member], referenced: Self.none, suite: Fixture.suite)
        }
    }

    @Test func referencesMustBeAboutTheSameEnterprise() {
        var ledger = TestLedger()
        let foreign = ledger.add(.facilityUpdated, Examples.payload(.facilityUpdated), subject: Fixture.other, on: Fixture.day("2024-04-01"))
        let dispute = Fixture.tx(.dispute, Examples.payload(.dispute, ["disputes": .string(foreign.hex)]), reporter: "bureau")
        #expect(throws: CreditError(code: "invalid_reference", path: "dispute.disputes", rule: "must name a transaction about the same enterprise")) {
            try CreditRules.check(transaction: dispute, roles: [.bureau], referenced: ledger.lookup, suite: Fixture.suite)
        }
    }
}

@Suite struct CorrectionAndDisputeRuleTests {
    var ledger = TestLedger()
    let update: Hash32
    let consent: Hash32

    init() {
        update = ledger.add(.facilityUpdated, Examples.payload(.facilityUpdated), on: Fixture.day("2024-04-01"))
        consent = ledger.add(.consentGranted, Examples.payload(.consentGranted), on: Fixture.day("2024-06-01"))
    }

    func correction(_ changes: [String: JSONValue?], reporter: InstitutionID = "bank-a") -> Transaction {
        Fixture.tx(.correction, Examples.payload(.correction, ["corrects": .string(update.hex)].merging(changes) { $1 }), reporter: reporter)
    }

    @Test func originalReporterMayRetractOrRestate() throws {
        try CreditRules.check(transaction: correction([:]), roles: [.member], referenced: ledger.lookup, suite: Fixture.suite)
        let restated = Examples.payload(.facilityUpdated, ["balance": Fixture.money(390_000_000)])
        try CreditRules.check(transaction: correction(["retract": nil, "payload": .object(restated)]), roles: [.member],
                              referenced: ledger.lookup, suite: Fixture.suite)
    }

    @Test func anotherReporterMayNotCorrect() {
        #expect(throws: CreditError(code: "not_original_reporter", path: "correction.corrects",
                                    rule: "must name a statement by the same reporter (bank-a)")) {
            try CreditRules.check(transaction: correction([:], reporter: "bank-b"), roles: [.member], referenced: ledger.lookup, suite: Fixture.suite)
        }
    }

    @Test func theOriginalReporterMustStillHoldTheRole() {
        #expect(throws: CreditError.self) {
            try CreditRules.check(transaction: correction([:]), roles: [.bureau], referenced: ledger.lookup, suite: Fixture.suite)
        }
    }

    @Test func restatedPayloadFollowsTheCorrectedKind() {
        let broken = Examples.payload(.facilityUpdated, ["balance": Fixture.money(-1)])
        #expect(throws: CreditError.invalidValue("correction.payload.balance.minor", "must not be negative")) {
            try CreditRules.check(transaction: correction(["retract": nil, "payload": .object(broken)]), roles: [.member],
                                  referenced: ledger.lookup, suite: Fixture.suite)
        }
        let renamed = Examples.payload(.facilityUpdated, ["facilityId": .string("LN-X")])
        #expect(throws: CreditError.invalidValue("correction.payload.facilityId",
                                            "must equal the corrected statement's facilityId (retract and restate instead)")) {
            try CreditRules.check(transaction: correction(["retract": nil, "payload": .object(renamed)]), roles: [.member],
                                  referenced: ledger.lookup, suite: Fixture.suite)
        }
    }

    /// A restatement may not slip in a reference the original statement could not have carried.
    @Test func restatedReferencesAreChecked() throws {
        let dangling = Examples.payload(.facilityUpdated, ["opening": .string(String(repeating: "ab", count: 32))])
        let error = try #require(throws: CreditError.self) {
            try CreditRules.check(transaction: correction(["retract": nil, "payload": .object(dangling)]), roles: [.member],
                                  referenced: ledger.lookup, suite: Fixture.suite)
        }
        #expect(error.code == "unknown_reference")
    }

    @Test func consentsAndMissingStatementsAreNotCorrectable() {
        let onConsent = Fixture.tx(.correction, Examples.payload(.correction, ["corrects": .string(consent.hex)]))
        #expect(throws: CreditError(code: "invalid_reference", path: "correction.corrects", rule: "must name a factual statement, not consentGranted")) {
            try CreditRules.check(transaction: onConsent, roles: [.member], referenced: ledger.lookup, suite: Fixture.suite)
        }
        let dangling = Fixture.tx(.correction, Examples.payload(.correction))
        #expect(throws: CreditError(code: "unknown_reference", path: "correction.corrects", rule: "must name a committed transaction")) {
            try CreditRules.check(transaction: dangling, roles: [.member], referenced: ledger.lookup, suite: Fixture.suite)
        }
    }

    @Test func disputesAreFiledForTheEnterpriseByOthers() throws {
        let payload = Examples.payload(.dispute, ["disputes": .string(update.hex)])
        try CreditRules.check(transaction: Fixture.tx(.dispute, payload, reporter: "bureau"), roles: [.bureau], referenced: ledger.lookup, suite: Fixture.suite)
        try CreditRules.check(transaction: Fixture.tx(.dispute, payload, reporter: "registry"), roles: [.registry], referenced: ledger.lookup, suite: Fixture.suite)
        try CreditRules.check(transaction: Fixture.tx(.dispute, payload, reporter: "bank-b"), roles: [.member], referenced: ledger.lookup, suite: Fixture.suite)
        #expect(throws: CreditError.invalidValue("dispute.disputes", "must name another reporter's statement (correct your own instead)")) {
            try CreditRules.check(transaction: Fixture.tx(.dispute, payload), roles: [.member], referenced: ledger.lookup, suite: Fixture.suite)
        }
        #expect(throws: CreditError.self) {
            try CreditRules.check(transaction: Fixture.tx(.dispute, payload, reporter: "audit"), roles: [.auditor], referenced: ledger.lookup, suite: Fixture.suite)
        }
        let onConsent = Examples.payload(.dispute, ["disputes": .string(consent.hex)])
        #expect(throws: CreditError.self) {
            try CreditRules.check(transaction: Fixture.tx(.dispute, onConsent, reporter: "bureau"), roles: [.bureau], referenced: ledger.lookup, suite: Fixture.suite)
        }
    }

    @Test func disputesAreResolvedByTheReporterOrARegulator() throws {
        var ledger = self.ledger
        let dispute = ledger.add(.dispute, Examples.payload(.dispute, ["disputes": .string(update.hex)]), reporter: "bureau",
                                 on: Fixture.day("2024-06-10"))
        let payload = Examples.payload(.disputeResolved, ["dispute": .string(dispute.hex)])
        try CreditRules.check(transaction: Fixture.tx(.disputeResolved, payload), roles: [.member], referenced: ledger.lookup, suite: Fixture.suite)
        try CreditRules.check(transaction: Fixture.tx(.disputeResolved, payload, reporter: "cbirc"), roles: [.regulator],
                              referenced: ledger.lookup, suite: Fixture.suite)
        #expect(throws: CreditError.self) {
            try CreditRules.check(transaction: Fixture.tx(.disputeResolved, payload, reporter: "bank-b"), roles: [.member],
                                  referenced: ledger.lookup, suite: Fixture.suite)
        }
        let notADispute = Examples.payload(.disputeResolved, ["dispute": .string(update.hex)])
        #expect(throws: CreditError(code: "invalid_reference", path: "disputeResolved.dispute",
                                    rule: "must name a dispute transaction, not facilityUpdated")) {
            try CreditRules.check(transaction: Fixture.tx(.disputeResolved, notADispute), roles: [.member], referenced: ledger.lookup, suite: Fixture.suite)
        }
    }

    @Test func consentsAreRevokedByTheGranteeOrARegistry() throws {
        let payload = Examples.payload(.consentRevoked, ["consent": .string(consent.hex)])
        try CreditRules.check(transaction: Fixture.tx(.consentRevoked, payload), roles: [.member], referenced: ledger.lookup, suite: Fixture.suite)
        try CreditRules.check(transaction: Fixture.tx(.consentRevoked, payload, reporter: "samr"), roles: [.registry],
                              referenced: ledger.lookup, suite: Fixture.suite)
        #expect(throws: CreditError.self) {
            try CreditRules.check(transaction: Fixture.tx(.consentRevoked, payload, reporter: "bank-b"), roles: [.member],
                                  referenced: ledger.lookup, suite: Fixture.suite)
        }
    }
}
