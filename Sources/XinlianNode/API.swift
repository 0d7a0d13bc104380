import CoreMetrics
import Foundation
import Hummingbird
import Logging
import NIOCore
import XinlianCore
import XinlianCrypto
import XinlianStorage

/// An API failure: an HTTP status and a JSON body with a stable code.
public struct APIError: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let body: APIErrorBody

    /// For `429`: the `Retry-After` header, in seconds.
    public let retryAfterSeconds: Int?

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, items: [APIErrorBody.ItemError]? = nil,
                retryAfterSeconds: Int? = nil) {
        self.status = status
        self.body = APIErrorBody(error: .init(code: code, message: message, items: items))
        self.retryAfterSeconds = retryAfterSeconds
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try API.json(body, status: status)
        if let retryAfterSeconds { response.headers[.retryAfter] = String(retryAfterSeconds) }
        return response
    }
}

/// The HTTP API under `/v1` (see `docs/openapi.yaml`), plus `/metrics`.
public struct API: Sendable {
    public let engine: NodeEngine
    public let bodyLimitBytes: Int
    public let batchLimit: Int
    /// The clock report requests' freshness is judged by (tests set it with the engine's).
    public var now: @Sendable () -> UInt64 = NodeEngine.wallClockMs

    /// Per-institution rates (``APILimits``).
    public let submissions: RateLimiter<InstitutionID>
    public let reads: RateLimiter<InstitutionID>
    /// Per client address, for requests that fail to authenticate (``ClientBudget``).
    public let failedAuthentications: RateLimiter<ClientAddress>
    /// Reverse proxies whose `X-Forwarded-For` names the client (``APILimits/trustedProxies``).
    public let trustedProxies: Set<ClientAddress>
    /// Client addresses with a budget remembered at once.
    public static let clientAddressLimit = 65_536

    /// Whether `/metrics` is served here (else only on the operator API).
    public let publicMetrics: Bool

    public init(engine: NodeEngine, bodyLimitBytes: Int = 8 * 1024 * 1024, batchLimit: Int = 5_000,
                limits: APILimits = APILimits(), publicMetrics: Bool = true) {
        self.engine = engine
        self.publicMetrics = publicMetrics
        self.bodyLimitBytes = bodyLimitBytes
        self.batchLimit = batchLimit
        submissions = RateLimiter(rate: limits.submissionsPerSecond, burst: limits.submissionBurst)
        reads = RateLimiter(rate: limits.readsPerSecond, burst: limits.readBurst)
        failedAuthentications = RateLimiter(rate: limits.failedAuthenticationsPerSecond,
                                            burst: limits.failedAuthenticationBurst, keyLimit: Self.clientAddressLimit)
        trustedProxies = Set(limits.trustedProxies.compactMap { ClientAddress(ipLiteral: $0) })
    }

    /// Signatures checked together; a batch stops at the first group with a bad one, so a batch of forgeries costs
    /// at most this many verifications past its valid prefix.
    public static let signatureCheckGroup = 64

    /// Charges `costs` to the institutions' buckets of `limiter`, or refuses with `429 rate_limited`.
    func charge(_ limiter: RateLimiter<InstitutionID>, _ costs: [InstitutionID: Double], what: String) throws {
        guard let wait = limiter.take(costs, nowMs: now()) else { return }
        engine.metrics.rateLimited.increment()
        let seconds = RetryAfter.seconds(wait)
        throw APIError(.tooManyRequests, "rate_limited",
                       seconds.map { "too many \(what) from \(costs.keys.map(\.value).sorted().joined(separator: ", ")); retry in \($0) s" }
                           ?? "this request asks for more \(what) than the node allows at once; split it",
                       retryAfterSeconds: seconds)
    }

    public func router() -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: ClientBudget(limiter: failedAuthentications, metrics: engine.metrics, now: now,
                                            trustedProxies: trustedProxies))
        router.get("/v1/status") { _, _ in try API.json(await engine.status()) }
        router.get("/v1/openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"],
                     body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml + "\n")))
        }
        router.post("/v1/transactions") { request, _ in try await submit(request) }
        router.get("/v1/transactions/:id") { request, context in
            let reader = try await reader(of: request)
            return try await refusing(request, reader.institution) {
                try await transactionStatus(context.parameters.require("id"), reader: reader)
            }
        }
        router.get("/v1/transactions/:id/proof") { request, context in
            let reader = try await reader(of: request)
            return try await refusing(request, reader.institution) {
                try await proof(context.parameters.require("id"), reader: reader)
            }
        }
        router.get("/v1/blocks/:height") { request, context in
            let reader = try await reader(of: request)
            return try await refusing(request, reader.institution) {
                try await block(context.parameters.require("height"), reader: reader)
            }
        }
        router.get("/v1/headers/:height") { request, context in
            _ = try await reader(of: request)
            return try await header(context.parameters.require("height"))
        }
        router.get("/v1/refusals") { request, _ in try await refusals(request) }
        ReportRoutes(engine: engine, now: now, limiter: reads).add(to: router)
        if publicMetrics {
            router.get("/metrics") { _, _ in API.metrics(engine) }
        }
        return router
    }

    // MARK: Who reads

    /// The institution that signed a read, and what it may read. Anonymous callers get `401 signature_required`.
    func reader(of request: Request) async throws -> (institution: InstitutionID, scope: RequestAuthenticator.Scope) {
        let authenticator = RequestAuthenticator(engine: engine, now: now)
        let institution = try await authenticator.institution(of: request)
        // Over its rate: refused and counted, not recorded one by one (a flood must not become a flood of fsyncs).
        try charge(reads, [institution: 1], what: "reads")
        let scope = authenticator.scope(of: institution)
        if case .wholeLedger(let reason) = scope {
            // An auditor's, a regulator's or a validator operator's read of ledger contents is an access to
            // account for.
            engine.logger.info("ledger read", metadata: [
                "institution": "\(institution)", "access": "\(reason)", "target": "\(request.head.path ?? "")",
            ])
        }
        return (institution, scope)
    }

    /// Runs `body` for a signed request of `institution`; a refusal it raises (a 403, 404 ...) is recorded
    /// durably before it is answered.
    func refusing(_ request: Request, _ institution: InstitutionID, _ body: () async throws -> Response) async throws -> Response {
        do { return try await body() } catch let error as APIError where error.status.code < 500 && error.status != .notFound {
            await engine.recordRefusal(Refusal(request, by: institution, error, nowMs: now()))
            throw error
        }
    }

    static let refusalPageLimit = 1_000

    /// `GET /v1/refusals`: regulators and auditors page through the refused requests this node recorded.
    func refusals(_ request: Request) async throws -> Response {
        let reader = try await reader(of: request)
        return try await refusing(request, reader.institution) {
            let roles = engine.consortium.institutionRoles[reader.institution] ?? []
            guard roles.contains(.regulator) || roles.contains(.auditor) else {
                throw APIError(.forbidden, "role_not_permitted", "only a regulator or an auditor may read the refusals")
            }
            let afterText = request.uri.queryParameters.get("after") ?? "0"
            let limitText = request.uri.queryParameters.get("limit") ?? "100"
            guard let after = UInt64(afterText) else {
                throw APIError(.badRequest, "invalid_after", "after must be a refusal sequence number (0 for the first page)")
            }
            guard let limit = Int(limitText), (1...Self.refusalPageLimit).contains(limit) else {
                throw APIError(.badRequest, "invalid_limit", "limit must be an integer from 1 to \(Self.refusalPageLimit)")
            }
            let page = await engine.refusals(after: after, limit: limit)
            return try API.json(RefusalsResponse(refusals: page, next: page.count == limit ? page.last?.sequence : nil))
        }
    }

    // MARK: Handlers

    func submit(_ request: Request) async throws -> Response {
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: bodyLimitBytes) } catch {
            throw APIError(.contentTooLarge, "body_too_large", "request body exceeds \(bodyLimitBytes) bytes")
        }
        let submitted: SubmitRequest
        do { submitted = try JSONDecoder().decode(SubmitRequest.self, from: Data(body.readableBytesView)) } catch {
            throw APIError(.badRequest, "invalid_json", "body must be {\"transactions\": [base64, ...]}")
        }
        guard !submitted.transactions.isEmpty, submitted.transactions.count <= batchLimit else {
            throw APIError(.badRequest, "invalid_batch", "send between 1 and \(batchLimit) transactions")
        }
        guard submitted.personal.map({ $0.count == submitted.transactions.count }) ?? true else {
            throw APIError(.badRequest, "invalid_batch", "personal must have one entry (or null) per transaction")
        }
        let (transactions, fresh) = try await decodeAndCheck(submitted.transactions, personal: submitted.personal)
        // Every new signature verified: the reporters are who they say, and each is charged for its own new
        // statements (re-posting someone's committed statements costs them nothing and the node no verification).
        var counts: [InstitutionID: Double] = [:]
        for transaction in fresh { counts[transaction.body.reporter, default: 0] += 1 }
        if !counts.isEmpty { try charge(submissions, counts, what: "transactions") }
        let admissions: [Admission]
        do { admissions = try await engine.admit(transactions) } catch {
            throw APIError(.serviceUnavailable, error.code, error.message)
        }
        let refused = admissions.enumerated().compactMap { position, admission -> APIErrorBody.ItemError? in
            guard case .rejected(let error) = admission.state else { return nil }
            return APIErrorBody.ItemError(index: position, code: error.code, message: error.message)
        }
        if let first = refused.first {
            let message = refused.count == 1 ? first.message
                : "\(refused.count) of \(admissions.count) transactions refused; nothing was admitted"
            throw APIError(.badRequest, first.code, message, items: refused)
        }
        let items = admissions.map { admission -> SubmitResponse.Item in
            if case .committed(let location) = admission.state {
                return .init(id: admission.id.hex, status: "committed", height: location.height)
            }
            return .init(id: admission.id.hex, status: "pending", height: nil)
        }
        return try API.json(SubmitResponse(results: items), status: .accepted)
    }

    /// Decodes every transaction and checks those this node does not already hold (pending or committed: their
    /// signatures were verified when they were first admitted), signatures verified concurrently in groups; any
    /// failure refuses the whole batch. Returns all of them, and the ones that were new.
    func decodeAndCheck(_ encoded: [String], personal: [String?]? = nil) async throws -> (all: [Transaction], fresh: [Transaction]) {
        let engine = engine
        let suite = engine.consortium.suite
        let personal = personal ?? Array(repeating: nil, count: encoded.count)
        for (index, text) in personal.enumerated() {
            guard let text else { continue }
            guard Self.decodedPersonal(text) != nil else {
                throw APIError(.badRequest, "invalid_personal_data", "personal[\(index)] is not the base64 of canonical personal data",
                               items: [.init(index: index, code: "invalid_personal_data", message: "not canonical personal data")])
            }
        }
        let decoded = encoded.indices.map { Self.decoded(encoded[$0], personal: personal[$0]) }
        let known = await engine.knownTransactions(decoded.compactMap { $0?.id(suite) })
        // In groups: a batch stops at the first group holding a failure, so forged signatures under a real
        // reporter's id cost at most one group of verifications.
        var outcomes: [(Int, Result<Transaction, APIErrorBody.ItemError>)] = []
        for start in stride(from: 0, to: encoded.count, by: Self.signatureCheckGroup) {
            let group = Array(encoded.enumerated())[start..<min(start + Self.signatureCheckGroup, encoded.count)]
            let checked = await withTaskGroup(of: (Int, Result<Transaction, APIErrorBody.ItemError>).self) { tasks in
                for (index, text) in group {
                    if let transaction = decoded[index], known.contains(transaction.id(suite)) {
                        tasks.addTask { (index, .success(transaction)) }
                    } else {
                        let carried = personal[index]
                        tasks.addTask { (index, API.checkOne(text, personal: carried, index: index, engine: engine)) }
                    }
                }
                var results: [(Int, Result<Transaction, APIErrorBody.ItemError>)] = []
                for await outcome in tasks { results.append(outcome) }
                return results.sorted { $0.0 < $1.0 }
            }
            outcomes += checked
            if checked.contains(where: { if case .failure = $0.1 { true } else { false } }) { break }
        }
        var transactions: [Transaction] = []
        var failures: [APIErrorBody.ItemError] = []
        for (_, outcome) in outcomes {
            switch outcome {
            case .success(let transaction): transactions.append(transaction)
            case .failure(let failure): failures.append(failure)
            }
        }
        guard let first = failures.first else {
            let fresh = zip(decoded, transactions).filter { decoded, transaction in
                !known.contains(transaction.id(suite)) || decoded == nil
            }.map(\.1)
            return (transactions, fresh)
        }
        // The signatures that did verify were work done for their reporters: charged to them even though the batch
        // is refused, so that one bad item cannot make thousands of verifications free.
        var verified: [InstitutionID: Double] = [:]
        for (index, outcome) in outcomes {
            if case .success(let transaction) = outcome, !known.contains(transaction.id(suite)) || decoded[index] == nil {
                verified[transaction.body.reporter, default: 0] += 1
            }
        }
        for (reporter, count) in verified { submissions.spend(reporter, cost: count, nowMs: now()) }
        // Remember a refusal only once the reporter's signature verified: anyone could otherwise post a
        // real transaction's body with a bad signature and have it reported as rejected.
        for failure in failures where Self.codesAfterSignature.contains(failure.code) {
            if let transaction = Self.decoded(encoded[failure.index], personal: nil) {
                await engine.recordRejection(transaction.id(engine.consortium.suite),
                                             VerificationError(code: failure.code, message: failure.message))
            }
        }
        let message = failures.count == 1 ? first.message
            : "\(failures.count) of \(encoded.count) transactions refused (checking stopped at the first group with a failure); nothing was admitted"
        throw APIError(.badRequest, first.code, message, items: failures)
    }

    static let codesAfterSignature: Set<String> = ["invalid_payload", "kind_not_submittable", "role_not_permitted"]

    static func decoded(_ text: String, personal: String?) -> Transaction? {
        guard let data = Data(base64Encoded: text),
              var transaction = try? Transaction(canonicalBytes: Array(data), limit: Limits.transactionBytes) else { return nil }
        transaction.personal = personal.flatMap(decodedPersonal)
        return transaction
    }

    static func decodedPersonal(_ text: String) -> PersonalData? {
        guard let data = Data(base64Encoded: text) else { return nil }
        return try? PersonalData(canonicalBytes: Array(data), limit: PersonalData.encodedLimit)
    }

    static func checkOne(_ text: String, personal: String?, index: Int,
                         engine: NodeEngine) -> Result<Transaction, APIErrorBody.ItemError> {
        guard let data = Data(base64Encoded: text) else {
            return .failure(.init(index: index, code: "invalid_encoding", message: "transaction is not base64"))
        }
        var transaction: Transaction
        do { transaction = try Transaction(canonicalBytes: Array(data), limit: Limits.transactionBytes) } catch {
            let code = switch (error.field, error.code) {
            case ("transaction.subject", "invalid_value"): "invalid_uscc"
            case ("transaction.payload", "too_large"): "payload_too_large"
            default: "invalid_transaction"
            }
            return .failure(.init(index: index, code: code, message: error.description))
        }
        transaction.personal = personal.flatMap(decodedPersonal)
        do { try engine.check(transaction) } catch {
            return .failure(.init(index: index, code: error.code, message: error.message))
        }
        return .success(transaction)
    }

    /// A transaction's state. Its contents (and the inclusion proof, which carries them) go only to its reporter and
    /// to whole-ledger readers; anyone else signed learns nothing of a pending or committed transaction
    /// (`403 not_permitted`): a member reads other banks' statements only through a consented report.
    func transactionStatus(_ text: String, reader: (institution: InstitutionID, scope: RequestAuthenticator.Scope))
        async throws -> Response {
        guard let id = Hash32(hex: text) else {
            throw APIError(.badRequest, "invalid_id", "transaction id must be 64 hex characters")
        }
        let suite = engine.consortium.suite
        func permit(_ reporter: InstitutionID) throws {
            guard reader.scope == .member, reporter != reader.institution else { return }
            throw APIError(.forbidden, "not_permitted",
                           "\(reader.institution) may read only its own transactions; others' statements are read through a consented report")
        }
        switch await engine.stateOf(id) {
        case .pending:
            if let transaction = await engine.pendingTransaction(id) { try permit(transaction.body.reporter) }
            return try API.json(TransactionStatusResponse(id: id.hex, status: "pending"))
        case .rejected(let error):
            return try API.json(TransactionStatusResponse(id: id.hex, status: "rejected",
                                                          error: .init(code: error.code, message: error.message)))
        case .unknown:
            throw APIError(.notFound, "not_found", "no transaction \(id.hex) is pending, committed or recently rejected")
        case .committed(let location):
            let record = try await engine.record(at: location.height)
            let transaction = record.block.transactions[location.index]
            try permit(transaction.body.reporter)
            let proof = try await engine.inclusion(of: id)
            return try API.json(TransactionStatusResponse(
                id: id.hex, status: "committed", height: location.height, index: location.index,
                transaction: TransactionView(transaction, suite: suite), proof: proof))
        }
    }

    /// `GET /v1/transactions/{id}/proof`: any institution's signed read. The proof carries the transaction only for
    /// those who may read it (its reporter, whole-ledger readers); anyone else gets the proof without the payload,
    /// which ties the leaf to the transaction only for whoever already holds the transaction's bytes.
    func proof(_ text: String, reader: (institution: InstitutionID, scope: RequestAuthenticator.Scope)) async throws -> Response {
        guard let id = Hash32(hex: text) else {
            throw APIError(.badRequest, "invalid_id", "transaction id must be 64 hex characters")
        }
        guard let location = try await engine.location(of: id), let proof = try await engine.inclusion(of: id) else {
            throw APIError(.notFound, "not_found", "no committed transaction \(id.hex)")
        }
        var mayRead = reader.scope != .member
        if !mayRead {
            let record = try await engine.record(at: location.height)
            mayRead = record.block.transactions[location.index].body.reporter == reader.institution
        }
        return try API.json(mayRead ? proof : proof.withoutPayload)
    }

    func committedRecord(_ text: String) async throws -> CommittedBlock {
        let height: UInt64
        if text == "latest" {
            height = await engine.height
        } else if let parsed = UInt64(text), parsed >= 1 {
            height = parsed
        } else {
            throw APIError(.badRequest, "invalid_height", "height must be a positive integer or \"latest\"")
        }
        guard height >= 1, height <= (await engine.height) else {
            throw APIError(.notFound, "not_found", "no block at height \(height)")
        }
        return try await engine.record(at: height)
    }

    /// A whole block: for auditors, regulators and validator operators only.
    func block(_ text: String, reader: (institution: InstitutionID, scope: RequestAuthenticator.Scope)) async throws -> Response {
        guard reader.scope != .member else {
            throw APIError(.forbidden, "role_not_permitted",
                           "whole blocks are for auditors, regulators and institutions that run a validator; \(reader.institution) is none of these")
        }
        let record = try await committedRecord(text)
        let suite = engine.consortium.suite
        return try API.json(BlockResponse(
            header: HeaderView(record.block.header, suite: suite),
            transactions: record.block.transactions.map { TransactionView($0, suite: suite) },
            certificate: CertificateView(record.certificate),
            encoded: Data(record.canonicalBytes).base64EncodedString()))
    }

    func header(_ text: String) async throws -> Response {
        let record = try await committedRecord(text)
        return try API.json(HeaderResponse(header: HeaderView(record.block.header, suite: engine.consortium.suite),
                                           certificate: CertificateView(record.certificate)))
    }

    /// The Prometheus text of the node's metrics.
    static func metrics(_ engine: NodeEngine) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                 body: .init(byteBuffer: ByteBuffer(bytes: engine.metrics.render())))
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension TransactionStatusResponse {
    init(id: String, status: String, error: APIErrorBody.Detail? = nil) {
        self.init(id: id, status: status, height: nil, index: nil, error: error, transaction: nil, proof: nil)
    }
}

/// Turns every error that is not already an `APIError` (unknown routes, bad parameters,
/// storage failures) into the same JSON error body.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            let code = error.status == .notFound ? "not_found" : "http_\(error.status.code)"
            throw APIError(error.status, code, error.body ?? error.status.reasonPhrase)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)", "uri": "\(request.uri)"])
            throw APIError(.internalServerError, "internal", "internal error; the node's log has the details")
        }
    }
}
