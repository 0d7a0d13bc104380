import Foundation
import Testing
import XinlianCore
import XinlianCredit
import XinlianCrypto

/// One broken rule: the example of `kind` with `changes` applied must fail at `path` with a rule containing `rule`.
struct Violation: Sendable, CustomTestStringConvertible {
    let kind: TransactionKind
    let changes: [String: JSONValue?]
    let path: String
    let rule: String

    init(_ kind: TransactionKind, _ changes: [String: JSONValue?], _ path: String, _ rule: String) {
        self.kind = kind
        self.changes = changes
        self.path = path
        self.rule = rule
    }

    var testDescription: String { "\(path): \(rule)" }
}

/// `Fixture.other` with a wrong check character.
let badUSCC = String(Fixture.other.code.dropLast()) + (Fixture.other.code.hasSuffix("0") ? "1" : "0")

let violations: [Violation] = [
    Violation(.registration, ["name": .string("")], "registration.name", "must not be empty"),
    Violation(.registration, ["name": .string(" 西湖茶业")], "registration.name", "must not start or end with whitespace"),
    Violation(.registration, ["name": .string(String(repeating: "茶", count: 201))], "registration.name", "at most 200"),
    Violation(.registration, ["name": nil], "registration.name", "is required"),
    Violation(.registration, ["legalForm": .string("llc")], "registration.legalForm", "must be one of"),
    Violation(.registration, ["registeredCapital": Fixture.money(-1)], "registration.registeredCapital.minor", "must not be negative"),
    Violation(.registration, ["registeredCapital": Fixture.money(1, "RMB")], "registration.registeredCapital.currency", "must be one of CNY"),
    Violation(.registration, ["establishedOn": .string("2023-02-29")], "registration.establishedOn", "calendar date"),
    Violation(.registration, ["establishedOn": .string("2023-2-01")], "registration.establishedOn", "calendar date"),
    Violation(.registration, ["establishedOn": .string("2025-01-01")], "registration.establishedOn", "must not be after"),
    Violation(.registration, ["industry": .string("Z12")], "registration.industry", "GB/T 4754"),
    Violation(.registration, ["address": .string("文三路\n1号")], "registration.address", "control characters"),
    Violation(.operatingStatus, ["reason": nil], "operatingStatus.reason", "is required when status is abnormal"),
    Violation(.operatingStatus, ["status": .string("closed")], "operatingStatus.status", "must be one of"),
    Violation(.facilityOpened, ["amount": Fixture.money(0)], "facilityOpened.amount.minor", "must be positive"),
    Violation(.facilityOpened, ["amount": .object(["minor": .string("5"), "currency": .string("CNY")])],
              "facilityOpened.amount.minor", "must be an integer"),
    Violation(.facilityOpened, ["maturesOn": .string("2022-12-31")], "facilityOpened.maturesOn", "must not be before openedOn"),
    Violation(.facilityOpened, ["facilityId": .string("贷款1")], "facilityOpened.facilityId", "1-64 characters"),
    Violation(.facilityOpened, ["type": .string("mortgage")], "facilityOpened.type", "must be one of"),
    Violation(.facilityOpened, ["classification": .string("bad")], "facilityOpened.classification", "must be one of normal"),
    Violation(.facilityUpdated, ["overdue": nil], "facilityUpdated.overdue", "is required when status is overdue"),
    Violation(.facilityUpdated, ["status": .string("active")], "facilityUpdated.overdue", "must be absent when status is active"),
    Violation(.facilityUpdated, ["status": .string("closed")], "facilityUpdated.status", "must not be closed"),
    Violation(.facilityUpdated, ["overdue": .object(["days": .integer(0), "amount": Fixture.money(1)])],
              "facilityUpdated.overdue.days", "between 1 and 36500"),
    Violation(.facilityUpdated, ["overdue": .object(["days": .integer(3), "amount": Fixture.money(1, "USD")])],
              "facilityUpdated.overdue.amount.currency", "must equal balance.currency"),
    Violation(.facilityUpdated, ["balance": Fixture.money(-5)], "facilityUpdated.balance.minor", "must not be negative"),
    Violation(.facilityUpdated, ["opening": .string("abc")], "facilityUpdated.opening", "64 lowercase hex"),
    Violation(.facilityUpdated, ["opening": .string(Examples.hash.uppercased())], "facilityUpdated.opening", "64 lowercase hex"),
    Violation(.facilityClosed, ["reason": .string("paid")], "facilityClosed.reason", "must be one of"),
    Violation(.facilityClosed, ["closedOn": .string("2030-01-01")], "facilityClosed.closedOn", "must not be after"),
    Violation(.collateralRegistered, ["livestock": nil], "collateralRegistered.livestock", "is required when type is livestock"),
    Violation(.collateralRegistered, ["type": .string("realEstate")], "collateralRegistered.livestock", "must be absent unless"),
    Violation(.collateralRegistered, ["type": .string("intellectualProperty"), "livestock": nil],
              "collateralRegistered.intellectualProperty", "is required when type is intellectualProperty"),
    Violation(.collateralRegistered,
              ["livestock": .object(["species": .string("cattle"), "headCount": .integer(0), "location": .string("牧场")])],
              "collateralRegistered.livestock.headCount", "between 1 and 1000000"),
    Violation(.collateralRegistered,
              ["livestock": .object(["species": .string("unicorn"), "headCount": .integer(1), "location": .string("牧场")])],
              "collateralRegistered.livestock.species", "must be one of"),
    Violation(.collateralRegistered, ["securesFacilityIds": .array([.string("A"), .string("A")])],
              "collateralRegistered.securesFacilityIds[1]", "must not repeat"),
    Violation(.collateralRegistered, ["securesFacilityIds": .array([])], "collateralRegistered.securesFacilityIds", "1 to 50"),
    Violation(.collateralRegistered, ["value": Fixture.money(0)], "collateralRegistered.value.minor", "must be positive"),
    Violation(.collateralReleased, ["reason": .string("paid")], "collateralReleased.reason", "must be one of"),
    Violation(.collateralReleased, ["releasedOn": .string("2024-13-01")], "collateralReleased.releasedOn", "calendar date"),
    Violation(.guaranteeIssued, ["guarantor": .string(badUSCC)], "guaranteeIssued.guarantor", "check character"),
    Violation(.guaranteeIssued, ["expiresOn": .string("2022-01-01")], "guaranteeIssued.expiresOn", "must not be before issuedOn"),
    Violation(.guaranteeIssued, ["amount": Fixture.money(0)], "guaranteeIssued.amount.minor", "must be positive"),
    Violation(.guaranteeIssued, ["liability": .string("partial")], "guaranteeIssued.liability", "must be one of"),
    Violation(.guaranteeReleased, ["issuance": nil], "guaranteeReleased.issuance", "is required"),
    Violation(.publicRecord, ["settledOn": nil], "publicRecord.settledOn", "is required when status is satisfied"),
    Violation(.publicRecord, ["status": .string("inForce")], "publicRecord.settledOn", "must be absent when status is inForce"),
    Violation(.publicRecord, ["settledOn": .string("2023-07-01")], "publicRecord.settledOn", "must not be before decidedOn"),
    Violation(.publicRecord, ["amount": Fixture.money(0)], "publicRecord.amount.minor", "must be positive"),
    Violation(.publicRecord, ["type": .string("rumour")], "publicRecord.type", "must be one of"),
    Violation(.correction, ["retract": nil], "correction.payload", "one of payload or retract"),
    Violation(.correction, ["payload": .object([:])], "correction.retract", "must be absent when payload is present"),
    Violation(.correction, ["retract": .bool(false)], "correction.retract", "must be true"),
    Violation(.correction, ["retract": nil, "payload": .string("x")], "correction.payload", "must be an object"),
    Violation(.correction, ["reason": .string("")], "correction.reason", "must not be empty"),
    Violation(.dispute, ["reason": .string(" ")], "dispute.reason", "whitespace"),
    Violation(.dispute, ["disputes": nil], "dispute.disputes", "is required"),
    Violation(.disputeResolved, ["outcome": .string("partial")], "disputeResolved.outcome", "must be one of upheld, rejected"),
    Violation(.consentGranted, ["expiresOn": .string("2024-05-01")], "consentGranted.expiresOn", "must not be before grantedOn"),
    Violation(.consentGranted, ["expiresOn": .string("2027-06-02")], "consentGranted.expiresOn", "at most 3 years"),
    Violation(.consentGranted, ["purpose": .string("marketing")], "consentGranted.purpose", "must be one of"),
    Violation(.consentGranted, ["evidence": nil], "consentGranted.evidence", "is required"),
    Violation(.consentRevoked, ["consent": .integer(7)], "consentRevoked.consent", "must be a string"),
    Violation(.queryRecord, ["consent": nil], "queryRecord.consent", "is required for purpose loanApplication"),
    Violation(.queryRecord, ["purpose": .string("supervision")], "queryRecord.consent", "must be absent for purpose supervision"),
    Violation(.queryRecord, ["institution": .string("Bank A")], "queryRecord.institution", "not a valid name"),
    Violation(.queryRecord, ["reportHeight": .integer(-1)], "queryRecord.reportHeight", "out of range"),
]

@Suite struct ValidationTests {
    /// Decodes as admission does: personal fields joined from their personal data first (a registration's name
    /// and representative are checked there).
    func decode(_ kind: TransactionKind, _ payload: [String: JSONValue]) throws(CreditError) -> CreditStatement {
        let transaction = Fixture.tx(kind, payload, on: Fixture.today)
        let joined = try PersonalFields.join(transaction, suite: Fixture.suite, required: true)
        return try CreditStatement.decode(kind: kind, value: joined.value, root: kind.rawValue, today: Fixture.today)
    }

    @Test(arguments: Examples.creditKinds)
    func validExampleIsAccepted(kind: TransactionKind) throws {
        _ = try decode(kind, Examples.payload(kind))
    }

    @Test(arguments: violations)
    func brokenRuleIsRefusedWithItsPath(violation: Violation) {
        do {
            _ = try decode(violation.kind, Examples.payload(violation.kind, violation.changes))
            Issue.record("accepted \(violation.testDescription)")
        } catch {
            #expect(error.path == violation.path)
            #expect(error.rule.contains(violation.rule), "rule was: \(error.rule)")
            #expect(error.description == "\(error.path): \(error.rule)")
        }
    }

    @Test(arguments: Examples.creditKinds)
    func unknownFieldIsRefused(kind: TransactionKind) {
        #expect(throws: CreditError(code: "unknown_field", path: "\(kind.rawValue).remark", rule: "is not a field of this payload")) {
            _ = try decode(kind, Examples.payload(kind, ["remark": .string("x")]))
        }
    }

    @Test func nestedUnknownFieldAndNullAreRefused() {
        var payload = Examples.payload(.facilityOpened)
        payload["amount"] = .object(["minor": .integer(5), "currency": .string("CNY"), "scale": .integer(2)])
        #expect(throws: CreditError(code: "unknown_field", path: "facilityOpened.amount.scale", rule: "is not a field of this payload")) {
            _ = try decode(.facilityOpened, payload)
        }
        #expect(throws: CreditError(code: "wrong_type", path: "facilityOpened.purpose", rule: "must not be null (omit an absent field)")) {
            _ = try decode(.facilityOpened, Examples.payload(.facilityOpened, ["purpose": .some(.null)]))
        }
    }

    /// Closed sets compare bytes: `"H\u{212A}D"` (a Kelvin sign) equals `"HKD"` to Swift's `==`, and would have let the
    /// same statement be written in other bytes (review of issue 10's parser).
    @Test func closedSetsCompareBytesNotCanonicalEquivalence() throws {
        var payload = Examples.payload(.facilityOpened)
        payload["amount"] = Fixture.money(5, "H\u{212A}D")
        #expect(throws: CreditError.self) { _ = try decode(.facilityOpened, payload) }
        payload["amount"] = Fixture.money(5, "HKD")
        _ = try decode(.facilityOpened, payload)
    }

    @Test func fractionsAndNonObjectsAreRefused() {
        let text = Array(#"{"amount":{"currency":"CNY","minor":1.5}}"#.utf8)
        #expect(throws: CreditError.self) { _ = try CreditStatement.decode(kind: .facilityOpened, payload: text) }
        #expect(throws: CreditError(code: "wrong_type", path: "dispute", rule: "must be an object")) {
            _ = try CreditStatement.decode(kind: .dispute, payload: Array("[1]".utf8))
        }
        #expect(throws: CreditError(code: "invalid_payload", path: "dispute", rule: "must be a JSON object")) {
            _ = try CreditStatement.decode(kind: .dispute, payload: Array("{".utf8))
        }
    }

    @Test func governanceIsNotACreditStatement() {
        #expect(throws: CreditError.self) { _ = try CreditStatement.decode(kind: .governance, payload: Array("{}".utf8)) }
    }

    @Test func intellectualPropertyCollateralIsAccepted() throws {
        let payload = Examples.payload(.collateralRegistered, [
            "type": .string("intellectualProperty"), "interest": .string("pledge"), "livestock": nil,
            "intellectualProperty": .object(["kind": .string("patent"), "registrationNumber": .string("ZL201910123456.7"),
                                             "expiresOn": .string("2039-01-01")]),
        ])
        guard case .collateralRegistered(let collateral) = try decode(.collateralRegistered, payload) else {
            Issue.record("wrong statement")
            return
        }
        #expect(collateral.intellectualProperty?.kind == .patent)
    }

    @Test func payloadRoundTripsThroughJSONValue() throws {
        guard case .facilityUpdated(let update) = try decode(.facilityUpdated, Examples.payload(.facilityUpdated)) else {
            Issue.record("wrong statement")
            return
        }
        #expect(try update.jsonValue == .object(Examples.payload(.facilityUpdated)))
        #expect(update.isNegative)
    }
}

@Suite struct DayTests {
    @Test(arguments: ["2024-02-29", "2000-02-29", "1900-01-01", "9999-12-31", "2023-12-31"])
    func validDaysParseAndPrint(text: String) {
        #expect(Day(text)?.description == text)
    }

    @Test(arguments: ["2023-02-29", "1900-02-29", "2024-04-31", "2024-00-10", "2024-1-10", "20240110", "2024-01-1x",
                      "1899-12-31", "２０２４-01-01", "", "2024-01-10T00:00"])
    func invalidDaysAreRefused(text: String) {
        #expect(Day(text) == nil)
    }

    @Test func epochDaysRoundTrip() {
        for days in stride(from: Int64(-25_567), through: 2_932_896, by: 997) {
            let day = Day(daysSinceEpoch: days)
            #expect(day.daysSinceEpoch == days)
            #expect(Day(day.description) == day)
        }
        #expect(Day(daysSinceEpoch: 0).description == "1970-01-01")
        #expect(Fixture.day("2019-01-01").daysSinceEpoch == 17_897)
    }

    @Test func ledgerTimesAreChinaStandardTimeDays() {
        let start = Fixture.day("2024-06-30").startMs
        #expect(start == 1_719_676_800_000)  // 2024-06-29T16:00:00Z
        #expect(Day(ms: UInt64(start)) == Fixture.day("2024-06-30"))
        #expect(Day(ms: UInt64(start - 1)) == Fixture.day("2024-06-29"))
    }

    @Test func addingYearsClampsLeapDay() {
        #expect(Fixture.day("2020-02-29").adding(years: 5) == Fixture.day("2025-02-28"))
        #expect(Fixture.day("2020-02-29").adding(years: 4) == Fixture.day("2024-02-29"))
        #expect(Fixture.day("2019-03-01").adding(years: 5) == Fixture.day("2024-03-01"))
    }
}
