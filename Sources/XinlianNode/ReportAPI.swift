import CoreMetrics
import Foundation
import HTTPTypes
import Hummingbird
import XinlianCore
import XinlianCredit
import XinlianCrypto

/// `GET /v1/enterprises/{uscc}/report`: the body (`docs/openapi.yaml`, `ReportResponse`).
public struct ReportResponse: Codable, Sendable, Equatable {
    public var report: CreditReport
    /// Id of the query record this request wrote (committed before the report was returned).
    public var queryRecord: Hash32
    /// With `proof=true`: what a reader needs to check the report from genesis (`ReportVerifier`).
    public var proof: ReportProof?
}

/// `GET /v1/enterprises`: one page of the enterprises that have records, in USCC order.
public struct EnterprisesResponse: Codable, Sendable, Equatable {
    public var enterprises: [String]
    /// Pass as `after` for the next page; absent on the last page.
    public var next: String?
}

/// The report routes: a report is served only to a signed, fresh query record that the enterprise's committed
/// consents allow, and serving it writes that query record to the ledger (`docs/credit-model.md`, "Serving").
public struct ReportRoutes: Sendable {
    /// The request header carrying the requester's signed `queryRecord` transaction (base64 of its canonical encoding).
    public static let queryHeader = "X-Xinlian-Query"

    /// The value of the header `name` (case-insensitive), if sent.
    static func header(_ request: Request, _ name: String) -> String? {
        let lowered = name.lowercased()
        return request.headers.first { $0.name.canonicalName == lowered }?.value
    }

    let engine: NodeEngine
    let now: @Sendable () -> UInt64
    /// The reads limiter: a report query is a read.
    let limiter: RateLimiter<InstitutionID>

    func add(to router: Router<APIRequestContext>) {
        router.get("/v1/enterprises/:uscc/report") { request, context in
            try await report(request, uscc: context.parameters.require("uscc"))
        }
        router.get("/v1/enterprises") { request, _ in try await enterprises(request) }
    }

    static let pageLimit = 1_000
    /// How long a report waits for its query record to be committed before it is refused.
    static let recordTimeoutMs: UInt64 = 30_000

    /// Regulators only, with a signed request (`SignedRequest`).
    func enterprises(_ request: Request) async throws -> Response {
        let requester = try await checkSignedRequest(request)
        if let wait = limiter.take([requester: 1], nowMs: now()) {
            engine.metrics.rateLimited.increment()
            throw APIError(.tooManyRequests, "rate_limited", "too many reads from \(requester); retry later",
                           retryAfterSeconds: RetryAfter.seconds(wait))
        }
        guard engine.consortium.institutionRoles[requester]?.contains(.regulator) == true else {
            let refusal = APIError(.forbidden, "role_not_permitted", "only a regulator may list enterprises")
            await engine.recordRefusal(Refusal(request, by: requester, refusal, nowMs: now()))
            throw refusal
        }
        let after = request.uri.queryParameters.get("after") ?? ""
        let limitText = request.uri.queryParameters.get("limit") ?? "100"
        guard let limit = Int(limitText), (1...Self.pageLimit).contains(limit) else {
            throw APIError(.badRequest, "invalid_limit", "limit must be an integer from 1 to \(Self.pageLimit)")
        }
        let page = try await engine.enterprises(after: after, limit: limit)
        return try API.json(EnterprisesResponse(enterprises: page.map(\.code),
                                                next: page.count == limit ? page.last?.code : nil))
    }

    /// Checks the `X-Xinlian-Request` header (``RequestAuthenticator``).
    func checkSignedRequest(_ request: Request) async throws -> InstitutionID {
        try await RequestAuthenticator(engine: engine, now: now).institution(of: request)
    }

    func isFresh(_ timeMs: UInt64) -> Bool { RequestAuthenticator(engine: engine, now: now).isFresh(timeMs) }

    func report(_ request: Request, uscc text: String) async throws -> Response {
        guard let subject = try? USCC(text) else {
            throw APIError(.badRequest, "invalid_uscc", "\"\(text)\" is not a valid USCC")
        }
        guard let purposeText = request.uri.queryParameters.get("purpose"), let purpose = QueryPurpose(rawValue: purposeText) else {
            throw APIError(.badRequest, "invalid_purpose",
                           "purpose must be one of \(QueryPurpose.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let withProof: Bool
        switch request.uri.queryParameters.get("proof") {
        case nil, "false": withProof = false
        case "true": withProof = true
        default: throw APIError(.badRequest, "invalid_proof", "proof must be true or false")
        }
        let query = try signedQuery(request)
        let record = try checkQuery(query, subject: subject, purpose: purpose)
        // A query already used or refused is answered without reading anything, charging anyone or recording a
        // refusal: whoever replays a signed query need not be the institution that signed it.
        guard await engine.isFirstUse(query: query.id(engine.consortium.suite)) else {
            throw APIError(.conflict, "query_replayed", "this signed query was already used or refused; sign a new one (fresh nonce)")
        }
        if let wait = limiter.take([query.body.reporter: 1], nowMs: now()) {
            engine.metrics.rateLimited.increment()
            throw APIError(.tooManyRequests, "rate_limited", "too many reads from \(query.body.reporter); retry later",
                           retryAfterSeconds: RetryAfter.seconds(wait))
        }
        // From here the query is fresh and used for the first time: a refusal is recorded durably before it is
        // answered, and a query refused for consent or role cannot be tried again.
        let served: (material: ReportMaterial, id: Hash32)
        do {
            if withProof, record.reportHeight == 0 {
                throw APIError(.conflict, "nothing_committed", "there is no block to prove a report against yet")
            }
            served = try await engine.serve(query, record: record, subject: subject)
            // The query is on the ledger before its report leaves the node: a crash after this cannot lose the
            // only trace of a served query.
            guard await engine.waitUntilCommitted(served.id, timeoutMs: Self.recordTimeoutMs) else {
                throw APIError(.serviceUnavailable, "query_not_recorded",
                               "the query record \(served.id.hex) was not committed within \(Self.recordTimeoutMs / 1000) s; no report was served (retry with a new signed query)")
            }
        } catch let error as APIError {
            var refusal = Refusal(request, by: query.body.reporter, error, nowMs: now(), query: query,
                                  suite: engine.consortium.suite)
            refusal.purpose = purpose.rawValue
            refusal.judged = error.status == .forbidden
            await engine.recordRefusal(refusal)
            throw error
        }
        let report = served.material.assemble(ReportParameters(engine.consortium.genesis))
        let proof = withProof ? try await engine.reportProof(served.material) : nil
        return try API.json(ReportResponse(report: report, queryRecord: served.id, proof: proof))
    }

    /// The signed query of the `X-Xinlian-Query` header: encoding, chain, reporter and signature.
    func signedQuery(_ request: Request) throws -> Transaction {
        guard let header = Self.header(request, Self.queryHeader) else {
            throw APIError(.unauthorized, "query_required",
                           "send the signed queryRecord transaction, base64, in the X-Xinlian-Query header")
        }
        guard let data = Data(base64Encoded: header),
              let query = try? Transaction(canonicalBytes: Array(data), limit: Limits.transactionBytes) else {
            throw APIError(.badRequest, "invalid_query", "X-Xinlian-Query is not the base64 of a canonical transaction")
        }
        // Freshness first: a stale query is refused without spending a verification on it.
        guard isFresh(query.body.timeMs) else {
            throw APIError(.badRequest, "query_not_fresh",
                           "the signed query's time must be within \(NodeEngine.clockSkewLimitMs / 1000) s of the node's clock")
        }
        do { try TransactionRules.check(query, consortium: engine.consortium) } catch {
            let status: HTTPResponse.Status = ["unknown_reporter", "bad_signature"].contains(error.code) ? .unauthorized : .badRequest
            throw APIError(status, error.code, error.message)
        }
        return query
    }

    /// The stateless checks of a signed query: canonical payload, kind, schema, agreement with the request, and
    /// freshness.
    func checkQuery(_ query: Transaction, subject: USCC, purpose: QueryPurpose) throws -> QueryRecord {
        let body = query.body
        guard body.kind == .queryRecord else {
            throw APIError(.badRequest, "invalid_query", "the signed transaction must be a queryRecord, not \(body.kind.rawValue)")
        }
        let record: QueryRecord
        do {
            guard case .queryRecord(let decoded) = try CreditStatement.decode(kind: .queryRecord, payload: body.payload,
                                                                              today: Day(ms: body.timeMs)) else {
                throw APIError(.badRequest, "invalid_query", "the payload is not a query record")
            }
            record = decoded
        } catch let error as CreditError {
            throw APIError(.badRequest, "invalid_query", error.description)
        }
        guard body.subject == subject, record.purpose == purpose, record.institution == body.reporter else {
            throw APIError(.badRequest, "query_mismatch",
                           "the signed query must have subject \(subject), purpose \(purpose.rawValue) and institution = its reporter")
        }
        guard isFresh(body.timeMs) else {
            throw APIError(.badRequest, "query_not_fresh",
                           "the signed query's time must be within \(NodeEngine.clockSkewLimitMs / 1000) s of the node's clock")
        }
        return record
    }
}
