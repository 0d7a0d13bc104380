import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import XinlianCore
import XinlianCredit
import XinlianCrypto
import Logging
import XinlianNode

/// Issue 9: no credit data without a signature and a role. Anonymous callers get the status, the metrics and the
/// OpenAPI document; a member reads its own transactions, headers, and others' statements only through a consented
/// report; auditors, regulators and validator operators read whole blocks.
@Suite("Signed reads")
struct SignedReadTests {
    @Test func readsNeedASignatureAndARole() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        // bank-a runs the validator; bank-b is a member only.
        let loan = try node.sign(.facilityOpened, [
            "facilityId": .string("F-1"), "type": .string("loan"),
            "amount": .object(["minor": .integer(100_000), "currency": .string("CNY")]),
            "openedOn": .string(node.today.description), "maturesOn": .string(node.today.adding(days: 365).description),
            "security": .string("unsecured"), "classification": .string("normal"),
        ], by: "bank-b")
        let ids = try await node.commit([try node.registration(), loan])
        let registration = ids[0].hex, bankB = ids[1].hex
        let app = Application(router: node.api.router())
        func get(_ target: String, as institution: InstitutionID?) async throws -> TestResponse {
            let headers = try institution.map {
                try signedRead(target, as: $0, key: node.keys[$0], chainID: node.consortium.chainID, timeMs: node.clock.ms)
            } ?? [:]
            return try await app.test(.router) { client in
                try await client.execute(uri: target, method: .get, headers: headers, body: nil)
            }
        }
        // Anonymous: only status and metrics.
        for target in ["/v1/blocks/1", "/v1/headers/1", "/v1/transactions/\(bankB)", "/v1/blocks/latest"] {
            let response = try await get(target, as: nil)
            #expect(response.status == .unauthorized, "\(target)")
            #expect(try errorCode(response) == "signature_required", "\(target)")
        }
        #expect(try await get("/v1/status", as: nil).status == .ok)
        #expect(try await get("/metrics", as: nil).status == .ok)

        // A member: headers, its own transactions; not whole blocks, not another's statement.
        #expect(try await get("/v1/headers/1", as: "bank-b").status == .ok)
        #expect(try await get("/v1/transactions/\(bankB)", as: "bank-b").status == .ok)
        let block = try await get("/v1/blocks/1", as: "bank-b")
        #expect(block.status == .forbidden)
        #expect(try errorCode(block) == "role_not_permitted")
        let others = try await get("/v1/transactions/\(registration)", as: "bank-b")
        #expect(others.status == .forbidden)
        #expect(try errorCode(others) == "not_permitted")
        let loanByOther = try await get("/v1/transactions/\(bankB)", as: "registry")
        #expect(try errorCode(loanByOther) == "not_permitted", "a member cannot read another bank's loan by its id")

        // Auditors, regulators and the validator's operator read everything.
        for institution: InstitutionID in ["auditor", "regulator", "bank-a"] {
            #expect(try await get("/v1/blocks/1", as: institution).status == .ok, "\(institution)")
            let status = try decode(TransactionStatusResponse.self, try await get("/v1/transactions/\(bankB)", as: institution).body)
            #expect(status.proof != nil, "\(institution)")
        }
        // A signature over another target does not open this one.
        let forged = try signedRead("/v1/headers/1", as: "auditor", key: node.keys["auditor"], chainID: node.consortium.chainID,
                                    timeMs: node.clock.ms)
        let misused = try await app.test(.router) { client in
            try await client.execute(uri: "/v1/blocks/1", method: .get, headers: forged, body: nil)
        }
        #expect(try errorCode(misused) == "bad_signature")
    }
}

/// Issue 9: refused attempts are kept durably and shown to regulators; replays of any signed request or of a
/// refused query are refused for their whole validity window, across a restart too.
@Suite("Refusals and replays")
struct RefusalTests {
    @Test func refusalsAreRecordedDurablyAndReplaysRefused() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        try await node.commit([try node.registration()])
        let app = Application(router: node.api.router())
        func get(_ target: String, headers: HTTPFields) async throws -> TestResponse {
            try await app.test(.router) { client in try await client.execute(uri: target, method: .get, headers: headers, body: nil) }
        }
        @Sendable func signed(_ target: String, as institution: InstitutionID, at offset: UInt64 = 0) throws -> HTTPFields {
            try signedRead(target, as: institution, key: node.keys[institution], chainID: node.consortium.chainID,
                           timeMs: node.clock.ms + offset)
        }
        // bank-b asks for a report with no consent: refused, recorded, and the same signed query is not tried again.
        let query = try await node.query(.loanApplication, consent: Hash32(bytes: [UInt8](repeating: 7, count: 32)), by: "bank-b")
        let refused = try await app.test(.router) { client in try await reportRequest(client, query, purpose: "loanApplication") }
        #expect(try errorCode(refused) == "consent_not_found")
        let again = try await app.test(.router) { client in try await reportRequest(client, query, purpose: "loanApplication") }
        #expect(try errorCode(again) == "query_replayed")
        // bank-b reads a whole block: refused and recorded.
        #expect(try errorCode(try await get("/v1/blocks/1", headers: try signed("/v1/blocks/1", as: "bank-b"))) == "role_not_permitted")
        // A signed request is answered once.
        let header = try signed("/v1/headers/1", as: "bank-b")
        #expect(try await get("/v1/headers/1", headers: header).status == .ok)
        let replay = try await get("/v1/headers/1", headers: header)
        #expect(replay.status == .conflict)
        #expect(try errorCode(replay) == "request_replayed")

        // The regulator sees them; a member may not. Replays are refused but not recorded: whoever replays a signed
        // request or query need not be the institution that signed it.
        #expect(try errorCode(try await get("/v1/refusals", headers: try signed("/v1/refusals", as: "bank-b", at: 1)))
                == "role_not_permitted")
        let page = try decode(RefusalsResponse.self,
                              try await get("/v1/refusals", headers: try signed("/v1/refusals", as: "regulator")).body)
        #expect(page.refusals.map(\.code) == ["consent_not_found", "role_not_permitted", "role_not_permitted"])
        #expect(page.refusals.first?.query == query.id(node.consortium.suite).hex)
        #expect(page.refusals.first?.institution == "bank-b")
        #expect(page.refusals.map(\.sequence) == [1, 2, 3])

        // After a restart: the refusals are still there, and the used request and the refused query stay refused.
        await node.engine.shutdown()
        let engine = try NodeEngine(consortium: node.consortium, validatorID: "node0", validatorKey: node.validatorKey,
                                    dataDirectory: node.directory + "/data", metrics: NodeMetrics(),
                                    logger: Logger(label: "test"), now: node.clock.closure)
        var api = API(engine: engine)
        api.now = node.clock.closure
        let restarted = Application(router: api.router())
        try await restarted.test(.router) { client in
            let replayed = try await client.execute(uri: "/v1/headers/1", method: .get, headers: header, body: nil)
            #expect(try errorCode(replayed) == "request_replayed")
            let query = try await reportRequest(client, query, purpose: "loanApplication")
            #expect(try errorCode(query) == "query_replayed")
            // A long target is kept short, so no record can be too long to read back (and cut the file there).
            let long = "/v1/blocks/1?p=" + String(repeating: "/", count: 40_000)
            let refused = try await client.execute(uri: long, method: .get, headers: try signed(long, as: "bank-b", at: 5), body: nil)
            #expect(try errorCode(refused) == "role_not_permitted")
            let after = try await client.execute(uri: "/v1/refusals?after=2", method: .get,
                                                 headers: try signed("/v1/refusals?after=2", as: "auditor"), body: nil)
            let rest = try decode(RefusalsResponse.self, after.body).refusals
            #expect(rest.map(\.sequence) == [3, 4])
            #expect((rest.last?.target.count ?? 0) <= Refusal.textLimit)
        }
        await engine.shutdown()
        // Everything recorded reads back after another restart.
        let reopened = try NodeEngine(consortium: node.consortium, validatorID: "node0", validatorKey: node.validatorKey,
                                      dataDirectory: node.directory + "/data", metrics: NodeMetrics(),
                                      logger: Logger(label: "test"), now: node.clock.closure)
        #expect(await reopened.refusals(after: 0, limit: 100).map(\.sequence) == [1, 2, 3, 4])
        await reopened.shutdown()
    }

    /// Someone replaying an institution's signed query (captured, or read off the ledger) neither spends that
    /// institution's rate nor writes refusals in its name.
    @Test func replaysDoNotChargeOrFrameTheSigner() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        try await node.commit([try node.registration()])
        var limits = APILimits()
        limits.readsPerSecond = 0.001
        limits.readBurst = 2
        let api = node.api(limits)
        let app = Application(router: api.router())
        let served = try await node.query(.supervision, consent: nil, by: "regulator")
        let first = try await app.test(.router) { client in try await reportRequest(client, served, purpose: "supervision") }
        #expect(first.status == .ok)
        for _ in 0..<5 {
            let replay = try await app.test(.router) { client in try await reportRequest(client, served, purpose: "supervision") }
            #expect(try errorCode(replay) == "query_replayed")
        }
        let fresh = try await node.query(.supervision, consent: nil, by: "regulator")
        let second = try await app.test(.router) { client in try await reportRequest(client, fresh, purpose: "supervision") }
        #expect(second.status == .ok, "the regulator's own second query is within its rate")
        #expect(await node.engine.refusals(after: 0, limit: 100).isEmpty)
    }
}

/// Issue 9: per-institution rates, a cap on signature checks per request, and a mempool that forgets.
@Suite("Fairness and limits")
struct LimitTests {
    @Test func readsAndSubmissionsAreRatedPerInstitution() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        try await node.commit([try node.registration()])
        var limits = APILimits()
        limits.readsPerSecond = 0.001
        limits.readBurst = 2
        limits.submissionsPerSecond = 0.001
        limits.submissionBurst = 3
        let api = node.api(limits)
        let app = Application(router: api.router())
        func read(_ target: String, as institution: InstitutionID, at offset: UInt64) async throws -> TestResponse {
            let headers = try signedRead(target, as: institution, key: node.keys[institution], chainID: node.consortium.chainID,
                                         timeMs: node.clock.ms + offset)
            return try await app.test(.router) { client in try await client.execute(uri: target, method: .get, headers: headers, body: nil) }
        }
        #expect(try await read("/v1/headers/1", as: "bank-b", at: 1).status == .ok)
        #expect(try await read("/v1/headers/1", as: "bank-b", at: 2).status == .ok)
        let third = try await read("/v1/headers/1", as: "bank-b", at: 3)
        #expect(third.status == .tooManyRequests)
        #expect(try errorCode(third) == "rate_limited")
        #expect(third.headers[.retryAfter] != nil)
        #expect(try await read("/v1/headers/1", as: "registry", at: 4).status == .ok, "another institution is untouched")

        // Submissions: a batch above the burst is refused whole, before admission; another reporter still submits.
        @Sendable func facility(_ n: Int, by reporter: InstitutionID) throws -> Transaction {
            try node.sign(.facilityOpened, [
                "facilityId": .string("F-\(n)"), "type": .string("loan"),
                "amount": .object(["minor": .integer(100_000), "currency": .string("CNY")]),
                "openedOn": .string(node.today.description), "maturesOn": .string(node.today.adding(days: 365).description),
                "security": .string("unsecured"), "classification": .string("normal"),
            ], by: reporter)
        }
        let flood = try (0..<4).map { try facility($0, by: "bank-b") }
        let refused = try await app.test(.router) { client in
            try await client.execute(uri: "/v1/transactions", method: .post, body: try submitBody(flood))
        }
        #expect(refused.status == .tooManyRequests)
        #expect(try errorCode(refused) == "rate_limited")
        #expect(await node.engine.status().mempoolSize == 0)
        let other = try await app.test(.router) { client in
            try await client.execute(uri: "/v1/transactions", method: .post, body: try submitBody([try facility(9, by: "bank-a")]))
        }
        #expect(other.status == .accepted)
    }

    /// A batch of forged signatures under a real reporter's id costs at most one group of verifications.
    @Test func forgedBatchesStopAtTheFirstBadGroup() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        try await node.commit([try node.registration()])
        let app = Application(router: node.api.router())
        let good = try node.registration(ReportNode.guarantor, name: "担保公司")
        let forged = (0..<500).map { n -> Transaction in
            var body = good.body
            body.nonce = UInt64(n)
            return Transaction(body: body, signature: good.signature)
        }
        let response = try await app.test(.router) { client in
            try await client.execute(uri: "/v1/transactions", method: .post, body: try submitBody(forged))
        }
        #expect(response.status == .badRequest)
        let items = try #require(try decode(APIErrorBody.self, response.body).error.items)
        #expect(items.count <= API.signatureCheckGroup, "\(items.count) signatures checked")
        #expect(items.allSatisfy { $0.code == "bad_signature" })
    }

    @Test func transactionsNotDecidedInTimeExpire() throws {
        var mempool = Mempool(expiryMs: 1_000)
        let node = try ReportNode()
        defer { node.remove() }
        let transaction = try node.registration()
        let id = transaction.id(node.consortium.suite)
        mempool.insert(Mempool.Entry(id: id, transaction: transaction, sizeBytes: transaction.canonicalBytes.count, admittedMs: 5_000))
        #expect(mempool.expire(nowMs: 6_000).isEmpty)
        #expect(mempool.expire(nowMs: 6_001).map(\.id) == [id])
        #expect(mempool.count == 0)
        #expect(mempool.held(by: "registry").count == 0)
    }
}
