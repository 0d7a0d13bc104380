import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Logging
import Synchronization
import Testing
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianNode

/// A clock tests move by hand; the engine and the API read the same one.
final class TestClock: Sendable {
    private let value: Mutex<UInt64>
    init(_ start: UInt64) { value = Mutex(start) }
    var ms: UInt64 { value.withLock { $0 } }
    func advance(days: UInt64) { value.withLock { $0 += days * 86_400_000 } }
    var closure: @Sendable () -> UInt64 { { [self] in self.ms } }
}

/// A single-validator consortium with one institution of every role and a settable clock.
struct ReportNode {
    static let start: UInt64 = 1_767_312_000_000 // 2026-01-02T00:00:00Z, 08:00 in China
    let directory: String
    let consortium: Consortium
    let validatorKey: SigningKey
    let keys: [InstitutionID: SigningKey]
    let clock = TestClock(ReportNode.start)
    let engine: NodeEngine
    let api: API
    static let borrower = try! USCC.withCheckCharacter("91330106MA27XY123")
    static let guarantor = try! USCC.withCheckCharacter("91330102MA2B45678")

    init(personalDataRetentionDays: UInt32 = ConsensusParameters.defaultPersonalDataRetentionDays) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-report-\(UUID().uuidString)").path
        let suite = CryptoSuite(.ed25519SHA256)
        validatorKey = suite.generateSigningKey()
        var keys: [InstitutionID: SigningKey] = [:]
        var institutions: [InstitutionRecord] = []
        let roles: [(String, InstitutionRole)] = [("bank-a", .member), ("bank-b", .member), ("registry", .registry),
                                                  ("regulator", .regulator), ("auditor", .auditor)]
        for (id, role) in roles {
            let key = suite.generateSigningKey()
            keys[try Name(id)] = key
            institutions.append(InstitutionRecord(id: try Name(id), name: id, roles: [role], publicKey: key.publicKey.bytes.hexString))
        }
        self.keys = keys
        consortium = try Consortium(Genesis(
            chainId: "xinlian-test", cryptoSuite: .ed25519SHA256, genesisTimeMs: Self.start - 86_400_000,
            parameters: Self.parameters(personalDataRetentionDays: personalDataRetentionDays),
            institutions: institutions,
            validators: [ValidatorRecord(id: "node0", institution: "bank-a", publicKey: validatorKey.publicKey.bytes.hexString,
                                         power: 10, p2pAddress: "127.0.0.1:1", apiAddress: "127.0.0.1:2")]))
        engine = try NodeEngine(consortium: consortium, validatorID: "node0", validatorKey: validatorKey,
                                dataDirectory: directory + "/data", metrics: NodeMetrics(), logger: Logger(label: "test"),
                                now: clock.closure)
        var api = API(engine: engine)
        api.now = clock.closure
        self.api = api
    }

    var today: Day { Day(ms: clock.ms) }

    /// An API over this node with `limits`, on the node's clock.
    func api(_ limits: APILimits) -> API {
        var api = API(engine: engine, limits: limits)
        api.now = clock.closure
        return api
    }

    func sign(_ kind: TransactionKind, _ payload: [String: JSONValue], by reporter: InstitutionID,
              subject: USCC = ReportNode.borrower) throws -> Transaction {
        let body = TransactionBody(chainID: consortium.chainID, kind: kind, reporter: reporter, subject: subject,
                                   timeMs: clock.ms, nonce: UInt64.random(in: 0...UInt64.max), payload: [])
        var random = SystemRandomNumberGenerator()
        return try PersonalFields.sign(body, payload: .object(payload), salt: PersonalFields.salt(using: &random),
                                       suite: consortium.suite, key: try #require(keys[reporter]))
    }

    /// No block interval: the clock is moved by hand, so each admission is decided at once, in its own block.
    static func parameters(personalDataRetentionDays: UInt32) -> ConsensusParameters {
        var parameters = ConsensusParameters.defaults
        parameters.blockIntervalMs = 0
        parameters.personalDataRetentionDays = personalDataRetentionDays
        return parameters
    }

    /// Admits and commits `transactions` in one block; returns their ids.
    @discardableResult
    func commit(_ transactions: [Transaction]) async throws -> [Hash32] {
        let height = await engine.height
        let admissions = try await engine.admit(transactions)
        for admission in admissions {
            #expect(admission.state == .pending, "\(admission)")
        }
        try #require(try await engine.settle()?.height == height + 1)
        return admissions.map(\.id)
    }

    func registration(_ subject: USCC = ReportNode.borrower, name: String = "杭州西湖茶业有限公司") throws -> Transaction {
        try sign(.registration, [
            "name": .string(name), "legalForm": .string("limitedLiabilityCompany"), "legalRepresentative": .string("张伟"),
            "registeredCapital": .object(["minor": .integer(1_000_000_000), "currency": .string("CNY")]),
            "establishedOn": .string("2012-05-18"), "registrationAuthority": .string("杭州市西湖区市场监督管理局"),
            "address": .string("浙江省杭州市西湖区龙井路1号"), "industry": .string("C1530"),
        ], by: "registry", subject: subject)
    }

    func consent(_ purpose: ConsentPurpose = .loanApplication, by grantee: InstitutionID = "bank-a",
                 expiresOn: Day? = nil) throws -> Transaction {
        try sign(.consentGranted, [
            "purpose": .string(purpose.rawValue), "grantedOn": .string(today.description),
            "expiresOn": .string((expiresOn ?? today.adding(days: 365)).description),
            "evidence": .string(String(repeating: "ab", count: 32)),
        ], by: grantee)
    }

    /// A signed query record, as a client builds it.
    func query(_ purpose: QueryPurpose, consent: Hash32?, by requester: InstitutionID, subject: USCC = ReportNode.borrower,
               reportHeight: UInt64? = nil) async throws -> Transaction {
        var height = await engine.height
        if let reportHeight { height = reportHeight }
        var payload: [String: JSONValue] = [
            "institution": .string(requester.value), "purpose": .string(purpose.rawValue), "reportHeight": .integer(Int64(height)),
        ]
        if let consent { payload["consent"] = .string(consent.hex) }
        return try sign(.queryRecord, payload, by: requester, subject: subject)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

func reportRequest(_ client: some TestClientProtocol, _ query: Transaction?, purpose: String,
                   subject: USCC = ReportNode.borrower, extra: String = "") async throws -> TestResponse {
    var headers = HTTPFields()
    if let query {
        headers[HTTPField.Name("X-Xinlian-Query")!] = Data(query.canonicalBytes).base64EncodedString()
    }
    return try await client.execute(uri: "/v1/enterprises/\(subject.code)/report?purpose=\(purpose)\(extra)", method: .get,
                                    headers: headers, body: nil)
}

func errorCode(_ response: TestResponse) throws -> String {
    try decode(APIErrorBody.self, response.body).error.code
}

@Suite("Reports through the HTTP API")
struct ReportAPITests {
    @Test func consentedMemberIsServedAndTheQueryAppearsInALaterReport() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        let ids = try await node.commit([try node.registration(), try node.consent()])
        let app = Application(router: node.api.router())
        try await app.test(.router) { client in
            let query = try await node.query(.loanApplication, consent: ids[1], by: "bank-a")
            let response = try await reportRequest(client, query, purpose: "loanApplication")
            #expect(response.status == .ok)
            let served = try decode(ReportResponse.self, response.body)
            #expect(served.queryRecord == query.id(node.consortium.suite))
            #expect(served.report.subject == ReportNode.borrower)
            #expect(served.report.asOf.height == 1)
            #expect(served.report.basicInfo.current?.name == "杭州西湖茶业有限公司")
            #expect(served.report.queryRecords.isEmpty)
            // The record was admitted before the report was returned, and (no block interval) decided at once.
            guard case .committed = await node.engine.stateOf(served.queryRecord) else {
                Issue.record("the query record is not on the ledger")
                return
            }
            let later = try await node.query(.supervision, consent: nil, by: "regulator")
            let second = try await reportRequest(client, later, purpose: "supervision")
            #expect(second.status == .ok)
            let report = try decode(ReportResponse.self, second.body).report
            #expect(report.asOf.height == 2)
            #expect(report.queryRecords.map(\.tx) == [served.queryRecord])
            #expect(report.queryRecords.first?.institution == "bank-a")
            #expect(report.queryRecords.first?.consent == ids[1])
            #expect(report.queryRecords.first?.reportHeight == 1)
        }
        await node.engine.shutdown()
    }

    /// Issue 9: the query record is committed before the report leaves the node, so a crash right after cannot
    /// lose the only trace of a served query.
    @Test func aServedQueryIsOnTheLedgerBeforeItsReportLeaves() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        let ids = try await node.commit([try node.registration(), try node.consent()])
        let app = Application(router: node.api.router())
        let query = try await node.query(.loanApplication, consent: ids[1], by: "bank-a")
        let response = try await app.test(.router) { client in
            try await reportRequest(client, query, purpose: "loanApplication")
        }
        #expect(response.status == .ok)
        // The process dies the moment the report is out: nothing more is flushed or decided.
        await node.engine.shutdown()
        let restarted = try NodeEngine(consortium: node.consortium, validatorID: "node0", validatorKey: node.validatorKey,
                                       dataDirectory: node.directory + "/data", metrics: NodeMetrics(),
                                       logger: Logger(label: "test"), now: node.clock.closure)
        guard case .committed = await restarted.stateOf(query.id(node.consortium.suite)) else {
            Issue.record("the served query's record is not on the ledger after a restart")
            return
        }
        await restarted.shutdown()
    }

    /// Refused queries answer 403 with a stable code and write nothing.
    @Test func refusedQueriesWriteNoQueryRecord() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        let ids = try await node.commit([try node.registration(), try node.consent(), try node.consent(.creditLineReview),
                                         try node.consent(.guaranteeReview, expiresOn: node.today)])
        let revoked = ids[2]
        try await node.commit([try node.sign(.consentRevoked, ["consent": .string(revoked.hex),
                                                               "revokedOn": .string(node.today.description)], by: "bank-a")])
        node.clock.advance(days: 2)
        let app = Application(router: node.api.router())
        try await app.test(.router) { client in
            let cases: [(QueryPurpose, Hash32?, InstitutionID, String)] = [
                (.loanApplication, Hash32(bytes: [UInt8](repeating: 7, count: 32)), "bank-a", "consent_not_found"),
                (.loanApplication, ids[1], "bank-b", "consent_not_found"),
                (.postLoanManagement, ids[1], "bank-a", "consent_wrong_purpose"),
                (.creditLineReview, revoked, "bank-a", "consent_revoked"),
                (.guaranteeReview, ids[3], "bank-a", "consent_expired"),
                (.supervision, nil, "bank-a", "purpose_not_permitted"),
                (.audit, nil, "regulator", "purpose_not_permitted"),
            ]
            for (purpose, consent, requester, code) in cases {
                let query = try await node.query(purpose, consent: consent, by: requester)
                let response = try await reportRequest(client, query, purpose: purpose.rawValue)
                #expect(response.status == .forbidden, "\(code)")
                #expect(try errorCode(response) == code)
                #expect(await node.engine.stateOf(query.id(node.consortium.suite)) == .unknown)
            }
            #expect(await node.engine.status().mempoolSize == 0)
            let material = try await node.engine.reportMaterial(subject: ReportNode.borrower, height: node.engine.height)
            #expect(!material.own.contains { $0.transaction.body.kind == .queryRecord })
        }
        await node.engine.shutdown()
    }

    @Test func regulatorAndAuditorAreExemptFromConsent() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        try await node.commit([try node.registration()])
        let app = Application(router: node.api.router())
        try await app.test(.router) { client in
            let supervision = try await reportRequest(client, try await node.query(.supervision, consent: nil, by: "regulator"),
                                                      purpose: "supervision")
            #expect(supervision.status == .ok)
            let audit = try await reportRequest(client, try await node.query(.audit, consent: nil, by: "auditor"), purpose: "audit")
            #expect(audit.status == .ok)
            try await node.engine.settle()
            let material = try await node.engine.reportMaterial(subject: ReportNode.borrower, height: node.engine.height)
            #expect(material.own.filter { $0.transaction.body.kind == .queryRecord }.map(\.transaction.body.reporter)
                    == ["regulator", "auditor"])
        }
        await node.engine.shutdown()
    }

    @Test func malformedStaleMismatchedAndReplayedQueriesAreRefused() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        try await node.commit([try node.registration()])
        let app = Application(router: node.api.router())
        try await app.test(.router) { client in
            let missing = try await reportRequest(client, nil, purpose: "supervision")
            #expect(missing.status == .unauthorized)
            #expect(try errorCode(missing) == "query_required")

            let good = try await node.query(.supervision, consent: nil, by: "regulator")
            let forged = Transaction(body: good.body, signature: try #require(node.keys["bank-a"]).sign(good.body.signingBytes))
            #expect(try errorCode(try await reportRequest(client, forged, purpose: "supervision")) == "bad_signature")
            #expect(try errorCode(try await reportRequest(client, good, purpose: "audit")) == "query_mismatch")
            #expect(try errorCode(try await reportRequest(client, good, purpose: "supervision",
                                                          subject: ReportNode.guarantor)) == "query_mismatch")
            #expect(try errorCode(try await reportRequest(client, good, purpose: "nosy")) == "invalid_purpose")
            let ahead = try await node.query(.supervision, consent: nil, by: "regulator", reportHeight: 9)
            #expect(try errorCode(try await reportRequest(client, ahead, purpose: "supervision")) == "height_ahead")

            #expect(try await reportRequest(client, good, purpose: "supervision").status == .ok)
            let replay = try await reportRequest(client, good, purpose: "supervision")
            #expect(replay.status == .conflict)
            #expect(try errorCode(replay) == "query_replayed")

            let stale = try await node.query(.supervision, consent: nil, by: "regulator")
            node.clock.advance(days: 1)
            #expect(try errorCode(try await reportRequest(client, stale, purpose: "supervision")) == "query_not_fresh")
        }
        await node.engine.shutdown()
    }

    /// A guarantee appears in the borrower's report as received and in the guarantor's as given, with its release,
    /// found through the counterparty and reference index rather than the guarantor's own records.
    @Test func guaranteesReachTheGuarantorsReport() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        try await node.commit([try node.registration(), try node.registration(ReportNode.guarantor, name: "担保公司")])
        let issued = try node.sign(.guaranteeIssued, [
            "guaranteeId": .string("GT-1"), "guarantor": .string(ReportNode.guarantor.code),
            "liability": .string("jointAndSeveral"), "amount": .object(["minor": .integer(200_000_000), "currency": .string("CNY")]),
            "issuedOn": .string(node.today.description), "expiresOn": .string(node.today.adding(days: 700).description),
        ], by: "bank-a")
        let issuedID = try await node.commit([issued])[0]
        let dispute = try node.sign(.dispute, ["disputes": .string(issuedID.hex), "reason": .string("担保金额有误")], by: "registry")
        let release = try node.sign(.guaranteeReleased, [
            "guaranteeId": .string("GT-1"), "issuance": .string(issuedID.hex), "releasedOn": .string(node.today.description),
            "reason": .string("obligationSettled"),
        ], by: "bank-a")
        let later = try await node.commit([dispute, release])
        let material = try await node.engine.reportMaterial(subject: ReportNode.guarantor, height: node.engine.height)
        #expect(Set(material.counterparty.map(\.id)) == Set([issuedID] + later))
        let report = material.assemble(ReportParameters())
        #expect(report.guarantees.given.count == 1)
        #expect(report.guarantees.received.isEmpty)
        #expect(report.guarantees.given.first?.disputed == true)
        #expect(Set(report.sources).isSuperset(of: [issuedID, later[1]]))
        let borrower = try await node.engine.reportMaterial(subject: ReportNode.borrower, height: node.engine.height)
            .assemble(ReportParameters())
        #expect(borrower.guarantees.received.count == 1)
        #expect(borrower.guarantees.given.isEmpty)
        await node.engine.shutdown()
    }

    @Test func onlyRegulatorsPageThroughEnterprises() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        try await node.commit([try node.registration(), try node.registration(ReportNode.guarantor, name: "担保公司")])
        let app = Application(router: node.api.router())
        func list(_ target: String, as institution: InstitutionID, signedTarget: String? = nil) async throws -> TestResponse {
            let signed = try SignedRequest.sign(chainID: node.consortium.chainID, institution: institution, timeMs: node.clock.ms,
                                                method: "GET", target: signedTarget ?? target,
                                                key: try #require(node.keys[institution]))
            var fields = HTTPFields()
            fields[HTTPField.Name(SignedRequest.headerName)!] = signed.headerValue
            let headers = fields
            return try await app.test(.router) { client in
                try await client.execute(uri: target, method: .get, headers: headers, body: nil)
            }
        }
        let first = try await list("/v1/enterprises?limit=1", as: "regulator")
        #expect(first.status == .ok)
        let page = try decode(EnterprisesResponse.self, first.body)
        let all = [ReportNode.borrower, ReportNode.guarantor].sorted().map(\.code)
        #expect(page.enterprises == [all[0]])
        #expect(page.next == all[0])
        let second = try decode(EnterprisesResponse.self, try await list("/v1/enterprises?after=\(all[0])&limit=1", as: "regulator").body)
        #expect(second.enterprises == [all[1]])
        let whole = try decode(EnterprisesResponse.self, try await list("/v1/enterprises", as: "regulator").body)
        #expect(whole.enterprises == all)
        #expect(whole.next == nil)

        #expect(try errorCode(try await list("/v1/enterprises", as: "bank-a")) == "role_not_permitted")
        let tampered = try await list("/v1/enterprises?limit=2", as: "regulator", signedTarget: "/v1/enterprises?limit=1")
        #expect(tampered.status == .unauthorized)
        #expect(try errorCode(tampered) == "bad_signature")
        #expect(try errorCode(try await list("/v1/enterprises?limit=0", as: "regulator")) == "invalid_limit")
        let unsigned = try await app.test(.router) { client in try await client.execute(uri: "/v1/enterprises", method: .get) }
        #expect(try errorCode(unsigned) == "signature_required")
        let malformed = try await app.test(.router) { client in
            try await client.execute(uri: "/v1/enterprises", method: .get,
                                     headers: [HTTPField.Name(SignedRequest.headerName)!: "regulator 12 zz"], body: nil)
        }
        #expect(try errorCode(malformed) == "invalid_signed_request")
        let signed = try SignedRequest.sign(chainID: node.consortium.chainID, institution: "regulator", timeMs: node.clock.ms,
                                            method: "GET", target: "/v1/enterprises", key: try #require(node.keys["regulator"]))
        #expect(SignedRequest(headerValue: signed.headerValue) == signed)
        node.clock.advance(days: 1)
        let stale = try await app.test(.router) { client in
            try await client.execute(uri: "/v1/enterprises", method: .get,
                                     headers: [HTTPField.Name(SignedRequest.headerName)!: signed.headerValue], body: nil)
        }
        #expect(try errorCode(stale) == "request_not_fresh")
        await node.engine.shutdown()
    }
}
