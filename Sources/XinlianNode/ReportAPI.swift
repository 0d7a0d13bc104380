import Foundation
import HTTPTypes
import Hummingbird
import XinlianCore
import XinlianCredit
import XinlianCrypto

/// `GET /v1/enterprises/{uscc}/report`: the body (`docs/openapi.yaml`, `ReportResponse`).
public struct ReportResponse: Codable, Sendable, Equatable {
    public var report: CreditReport
    /// Id of the query record this request wrote (pending until committed).
    public var queryRecord: Hash32
}

/// The report routes: a report is served only to a signed, fresh query record that the enterprise's committed
/// consents allow, and serving it writes that query record to the ledger (`docs/credit-model.md`, "Serving").
struct ReportRoutes: Sendable {
    /// The request header carrying the requester's signed `queryRecord` transaction (base64 of its canonical encoding).
    static let queryHeader = HTTPField.Name("X-Xinlian-Query")!

    let engine: NodeEngine
    let now: @Sendable () -> UInt64

    func add(to router: Router<BasicRequestContext>) {
        router.get("/v1/enterprises/:uscc/report") { request, context in
            try await report(request, uscc: context.parameters.require("uscc"))
        }
    }

    func report(_ request: Request, uscc text: String) async throws -> Response {
        guard let subject = try? USCC(text) else {
            throw APIError(.badRequest, "invalid_uscc", "\"\(text)\" is not a valid USCC")
        }
        guard let purposeText = request.uri.queryParameters.get("purpose"), let purpose = QueryPurpose(rawValue: purposeText) else {
            throw APIError(.badRequest, "invalid_purpose",
                           "purpose must be one of \(QueryPurpose.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let (query, record) = try checkQuery(request, subject: subject, purpose: purpose)
        let served = try await engine.serve(query, record: record, subject: subject)
        let report = served.material.assemble(ReportParameters(engine.consortium.genesis.parameters))
        return try API.json(ReportResponse(report: report, queryRecord: served.id))
    }

    /// The stateless checks of the signed query: encoding, chain, reporter, signature, canonical payload, kind,
    /// schema, agreement with the request, and freshness.
    func checkQuery(_ request: Request, subject: USCC, purpose: QueryPurpose) throws -> (Transaction, QueryRecord) {
        guard let header = request.headers[Self.queryHeader] else {
            throw APIError(.unauthorized, "query_required",
                           "send the signed queryRecord transaction, base64, in the X-Xinlian-Query header")
        }
        guard let data = Data(base64Encoded: header),
              let query = try? Transaction(canonicalBytes: Array(data), limit: Limits.transactionBytes) else {
            throw APIError(.badRequest, "invalid_query", "X-Xinlian-Query is not the base64 of a canonical transaction")
        }
        do { try TransactionRules.check(query, consortium: engine.consortium) } catch {
            let status: HTTPResponse.Status = ["unknown_reporter", "bad_signature"].contains(error.code) ? .unauthorized : .badRequest
            throw APIError(status, error.code, error.message)
        }
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
        let clock = now()
        let skew = NodeEngine.clockSkewLimitMs
        let (upper, overflow) = clock.addingReportingOverflow(skew)
        guard body.timeMs >= clock - min(clock, skew), overflow || body.timeMs <= upper else {
            throw APIError(.badRequest, "query_not_fresh",
                           "the signed query's time must be within \(skew / 1000) s of the node's clock")
        }
        return (query, record)
    }
}
