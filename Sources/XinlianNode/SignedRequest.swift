import Hummingbird
import XinlianCore
import XinlianCrypto

/// A request signed by an institution, for requests that are not a ledger transaction (`GET /v1/enterprises`).
///
/// Header `X-Xinlian-Request: <institution> <timeMs> <signature hex>` (single spaces). The signature is the
/// institution's, over `0x24 ‖ str(chainId) ‖ str(institution) ‖ u64(timeMs) ‖ str(method) ‖ str(target)`, where
/// `str` is a big-endian u32 byte length followed by the UTF-8 bytes, `u64` is big-endian, `method` is the upper-case
/// HTTP method and `target` the request target exactly as sent (path and query, e.g. `/v1/enterprises?limit=100`).
/// The node accepts it when `timeMs` is within 5 minutes of its clock (either way).
public struct SignedRequest: Sendable, Equatable {
    public static let headerName = "X-Xinlian-Request"

    public var institution: InstitutionID
    public var timeMs: UInt64
    public var signature: [UInt8]

    public init(institution: InstitutionID, timeMs: UInt64, signature: [UInt8]) {
        self.institution = institution
        self.timeMs = timeMs
        self.signature = signature
    }

    /// The bytes signed.
    public static func signingBytes(chainID: ChainID, institution: InstitutionID, timeMs: UInt64, method: String,
                                    target: String) -> [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.u8(Domain.signRequest)
        encoder.string(chainID.value)
        encoder.string(institution.value)
        encoder.u64(timeMs)
        encoder.string(method)
        encoder.string(target)
        return encoder.bytes
    }

    /// Signs `method target` as `institution`.
    public static func sign(chainID: ChainID, institution: InstitutionID, timeMs: UInt64, method: String, target: String,
                            key: SigningKey) throws -> SignedRequest {
        let bytes = signingBytes(chainID: chainID, institution: institution, timeMs: timeMs, method: method, target: target)
        return SignedRequest(institution: institution, timeMs: timeMs, signature: try key.sign(bytes))
    }

    /// The header value.
    public var headerValue: String { "\(institution.value) \(timeMs) \(signature.hexString)" }

    /// Parses a header value; nil when malformed.
    public init?(headerValue: String) {
        let parts = headerValue.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, let institution = try? Name(String(parts[0])), let time = UInt64(parts[1]),
              parts[2].count <= 2 * Limits.signatureBytes, let signature = [UInt8](hex: String(parts[2])) else { return nil }
        self.init(institution: institution, timeMs: time, signature: signature)
    }
}

/// Who is asking: checks a request's `X-Xinlian-Request` header (well formed, a genesis institution, fresh, and
/// signed over this very method and target) and says what that institution may read.
struct RequestAuthenticator: Sendable {
    let engine: NodeEngine
    let now: @Sendable () -> UInt64

    var consortium: Consortium { engine.consortium }

    /// What an institution may read of the ledger.
    enum Scope: Sendable, Equatable {
        /// Whole blocks and every transaction: auditors (audit accesses), regulators (supervision accesses), and
        /// institutions that run a validator (they hold every block anyway).
        case wholeLedger(reason: String)
        /// Its own transactions, headers, and reports as consent allows.
        case member
    }

    func scope(of institution: InstitutionID) -> Scope {
        let roles = consortium.institutionRoles[institution] ?? []
        if roles.contains(.auditor) { return .wholeLedger(reason: "audit") }
        if roles.contains(.regulator) { return .wholeLedger(reason: "supervision") }
        if consortium.genesis.validators.contains(where: { $0.institution == institution }) {
            return .wholeLedger(reason: "validator operator")
        }
        return .member
    }

    /// The institution that signed `request`, or an `APIError` (401 without or with a bad signature, 409 for a
    /// request already answered: each signed request is used once in its validity window, across restarts too).
    func institution(of request: Request) async throws -> InstitutionID {
        guard let header = ReportRoutes.header(request, SignedRequest.headerName) else {
            throw APIError(.unauthorized, "signature_required", "sign the request in the X-Xinlian-Request header")
        }
        guard let signed = SignedRequest(headerValue: header) else {
            throw APIError(.badRequest, "invalid_signed_request", "X-Xinlian-Request must be \"<institution> <timeMs> <signature hex>\"")
        }
        guard let key = consortium.institutionKeys[signed.institution] else {
            throw APIError(.unauthorized, "unknown_reporter", "\(signed.institution) is not a member")
        }
        // Freshness first: a stale header is refused without spending a verification on it.
        guard isFresh(signed.timeMs) else {
            throw APIError(.badRequest, "request_not_fresh",
                           "the signed request's time must be within \(NodeEngine.clockSkewLimitMs / 1000) s of the node's clock")
        }
        let bytes = SignedRequest.signingBytes(chainID: consortium.chainID, institution: signed.institution, timeMs: signed.timeMs,
                                               method: request.method.rawValue, target: request.head.path ?? "")
        guard key.isValidSignature(signed.signature, for: bytes) else {
            throw APIError(.unauthorized, "bad_signature", "the request signature does not verify with \(signed.institution)'s key")
        }
        // A replay is refused but not recorded against the institution: whoever replays it need not be the signer.
        guard try await engine.useSignedRequest(signed.signature, timeMs: signed.timeMs) else {
            throw APIError(.conflict, "request_replayed", "this signed request was already used; sign it again (a new time)")
        }
        return signed.institution
    }

    func isFresh(_ timeMs: UInt64) -> Bool {
        let clock = now()
        let skew = NodeEngine.clockSkewLimitMs
        let (upper, overflow) = clock.addingReportingOverflow(skew)
        return timeMs >= clock - min(clock, skew) && (overflow || timeMs <= upper)
    }
}

extension Refusal {
    /// A refusal of `request` signed by `institution`.
    init(_ request: Request, by institution: InstitutionID, _ error: APIError, nowMs: UInt64, query: Transaction? = nil,
         suite: CryptoSuite? = nil) {
        self.init(sequence: 0, timeMs: nowMs, institution: institution.value,
                  target: String("\(request.method.rawValue) \(request.head.path ?? "")".prefix(Self.textLimit)),
                  code: error.body.error.code,
                  message: String(error.body.error.message.prefix(Self.textLimit)), query: suite.flatMap { query?.id($0).hex },
                  subject: query?.body.subject?.code, purpose: nil)
    }
}
