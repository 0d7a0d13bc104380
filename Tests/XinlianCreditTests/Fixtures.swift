import Foundation
import Testing
import XinlianCore
import XinlianCredit
import XinlianCrypto

/// Shared builders for credit tests.
enum Fixture {
    static let suite = CryptoSuite.ed25519SHA256
    static let chain: ChainID = "xinlian-test"
    static let subject = try! USCC.withCheckCharacter("91330106MA27XY123")
    static let other = try! USCC.withCheckCharacter("91330102MA2B45678")
    static let third = try! USCC.withCheckCharacter("91150202MA0CD9876")
    /// The "today" validation tests use: 2024-06-30.
    static let today = day("2024-06-30")

    static func day(_ text: String) -> Day { Day(text)! }

    /// Noon China Standard Time on `day`.
    static func noon(_ day: Day) -> UInt64 { UInt64(day.startMs + 12 * 3_600_000) }

    static func money(_ minor: Int64, _ currency: String = "CNY") -> JSONValue {
        .object(["minor": .integer(minor), "currency": .string(currency)])
    }

    static func tx(_ kind: TransactionKind, _ payload: [String: JSONValue], reporter: InstitutionID = "bank-a",
                   subject: USCC = Fixture.subject, on day: Day = Fixture.today, nonce: UInt64 = 0) -> Transaction {
        // Personal fields move to personal data, as every client must send them.
        let (signed, personal) = try! PersonalFields.separate(.object(payload), salt: Array(repeating: UInt8(truncatingIfNeeded: nonce), count: 32),
                                                              suite: suite)
        let body = TransactionBody(chainID: chain, kind: kind, reporter: reporter, subject: subject, timeMs: noon(day),
                                   nonce: nonce, payload: signed)
        return Transaction(body: body, signature: [], personal: personal)
    }

    static func id(_ transaction: Transaction) -> Hash32 { transaction.id(suite) }
}

/// An in-memory ledger: one transaction per block, block time = the transaction's time.
struct TestLedger {
    var entries: [LedgerEntry] = []
    var byID: [Hash32: Transaction] = [:]
    var nonce: UInt64 = 0

    @discardableResult
    mutating func add(_ kind: TransactionKind, _ payload: [String: JSONValue], reporter: InstitutionID = "bank-a",
                      subject: USCC = Fixture.subject, on day: Day, blockTimeMs: UInt64? = nil) -> Hash32 {
        nonce += 1
        let transaction = Fixture.tx(kind, payload, reporter: reporter, subject: subject, on: day, nonce: nonce)
        let id = Fixture.id(transaction)
        let height = UInt64(entries.count + 1)
        entries.append(LedgerEntry(id: id, transaction: transaction, height: height, index: 0,
                                   blockTimeMs: blockTimeMs ?? transaction.body.timeMs))
        byID[id] = transaction
        return id
    }

    func lookup(_ id: Hash32) -> Transaction? { byID[id] }

    func asOf(_ day: Day, height: UInt64? = nil) -> ReportAsOf {
        ReportAsOf(height: height ?? UInt64(entries.count), blockHash: .zero, time: Fixture.noon(day))
    }

    func asOf(ms: UInt64) -> ReportAsOf { ReportAsOf(height: UInt64(entries.count), blockHash: .zero, time: ms) }

    func report(_ subject: USCC = Fixture.subject, on day: Day, parameters: ReportParameters = ReportParameters()) -> CreditReport {
        ReportAssembler.assemble(subject: subject, entries: entries, asOf: asOf(day), parameters: parameters)
    }
}

/// A valid payload of every credit kind, as stated on or before `Fixture.today`.
enum Examples {
    static let hash = String(repeating: "ab", count: 32)

    static let valid: [TransactionKind: [String: JSONValue]] = [
        .registration: [
            "name": .string("杭州西湖茶业有限公司"), "legalForm": .string("limitedLiabilityCompany"),
            "legalRepresentative": .string("张伟"), "registeredCapital": Fixture.money(1_000_000_000),
            "establishedOn": .string("2012-05-18"), "registrationAuthority": .string("杭州市西湖区市场监督管理局"),
            "address": .string("浙江省杭州市西湖区龙井路1号"), "industry": .string("C1530"),
        ],
        .operatingStatus: ["status": .string("abnormal"), "effectiveOn": .string("2024-03-01"), "reason": .string("未公示年报")],
        .facilityOpened: [
            "facilityId": .string("LN-2023-001"), "type": .string("loan"), "amount": Fixture.money(500_000_000),
            "openedOn": .string("2023-01-10"), "maturesOn": .string("2026-01-10"), "security": .string("collateral"),
            "classification": .string("normal"),
        ],
        .facilityUpdated: [
            "facilityId": .string("LN-2023-001"), "asOf": .string("2024-03-31"), "balance": Fixture.money(400_000_000),
            "classification": .string("specialMention"), "status": .string("overdue"),
            "overdue": .object(["days": .integer(35), "amount": Fixture.money(20_000_000)]),
        ],
        .facilityClosed: ["facilityId": .string("LN-2023-001"), "closedOn": .string("2024-06-01"), "reason": .string("repaid")],
        .collateralRegistered: [
            "collateralId": .string("CL-1"), "type": .string("livestock"), "interest": .string("mortgage"),
            "description": .string("活体肉牛抵押"), "value": Fixture.money(300_000_000), "valuedOn": .string("2023-01-05"),
            "registeredOn": .string("2023-01-10"), "securesFacilityIds": .array([.string("LN-2023-001")]),
            "livestock": .object(["species": .string("cattle"), "headCount": .integer(320), "location": .string("内蒙古包头市牧场")]),
        ],
        .collateralReleased: ["collateralId": .string("CL-1"), "releasedOn": .string("2024-06-01"), "reason": .string("obligationSettled")],
        .guaranteeIssued: [
            "guaranteeId": .string("GT-1"), "guarantor": .string(Fixture.other.code), "liability": .string("jointAndSeveral"),
            "amount": Fixture.money(200_000_000), "issuedOn": .string("2023-01-10"), "expiresOn": .string("2026-01-10"),
        ],
        .guaranteeReleased: [
            "guaranteeId": .string("GT-1"), "issuance": .string(hash), "releasedOn": .string("2024-06-01"),
            "reason": .string("obligationSettled"),
        ],
        .publicRecord: [
            "recordId": .string("(2023)浙0106执1234号"), "type": .string("enforcement"), "authority": .string("杭州市西湖区人民法院"),
            "decidedOn": .string("2023-08-01"), "amount": Fixture.money(12_000_000), "status": .string("satisfied"),
            "settledOn": .string("2024-01-15"), "summary": .string("被执行人未按期履行给付义务"),
        ],
        .correction: ["corrects": .string(hash), "reason": .string("余额录入错误"), "retract": .bool(true)],
        .dispute: ["disputes": .string(hash), "reason": .string("企业称逾期系系统故障所致")],
        .disputeResolved: ["dispute": .string(hash), "outcome": .string("rejected"), "explanation": .string("逾期属实")],
        .consentGranted: [
            "purpose": .string("loanApplication"), "grantedOn": .string("2024-06-01"), "expiresOn": .string("2025-05-31"),
            "evidence": .string(hash),
        ],
        .consentRevoked: ["consent": .string(hash), "revokedOn": .string("2024-06-20")],
        .queryRecord: [
            "institution": .string("bank-a"), "purpose": .string("loanApplication"), "consent": .string(hash),
            "reportHeight": .integer(42),
        ],
        .erasureOrder: ["reason": .string("个体工商户注销满五年"), "legalBasis": .string("PIPL Art. 47")],
    ]

    static let creditKinds = TransactionKind.allCases.filter { $0 != .governance }

    static func payload(_ kind: TransactionKind, _ changes: [String: JSONValue?] = [:]) -> [String: JSONValue] {
        var members = valid[kind] ?? [:]
        for (key, value) in changes { members[key] = value }
        return members
    }
}

extension CreditError {
    static func invalidValue(_ path: String, _ rule: String) -> CreditError {
        CreditError(code: "invalid_value", path: path, rule: rule)
    }
}
