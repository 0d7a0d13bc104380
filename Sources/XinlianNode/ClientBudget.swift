import CoreMetrics
import Hummingbird
import NIOCore

/// The API's request context: Hummingbird's, plus the address the connection came from (for ``ClientBudget``).
public struct APIRequestContext: RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// A budget per client address for the work a caller can cause before anyone knows who it is: every request that
/// fails to authenticate (no signature, a malformed, stale or unknown signer's header, a signature that does not
/// verify, each badly signed transaction of a batch) spends one token of its address's bucket, and an address
/// with an empty bucket is refused (`429 address_rate_limited`) before any signature of its next request is checked.
/// Authenticated callers are limited per institution (``APILimits``) instead, so a bank behind one gateway address
/// is never slowed by its address's budget while its signatures verify.
///
/// Requests without a socket address (tests in router mode, Unix sockets) are not budgeted.
struct ClientBudget<Context: RemoteAddressRequestContext>: RouterMiddleware {
    let limiter: RateLimiter<ClientAddress>
    let metrics: NodeMetrics
    let now: @Sendable () -> UInt64

    /// Error codes that mean the caller did not prove who it is.
    static var unauthenticatedCodes: Set<String> {
        ["signature_required", "invalid_signed_request", "unknown_reporter", "bad_signature", "request_not_fresh",
         "query_required", "invalid_query", "query_not_fresh", "invalid_encoding", "invalid_transaction",
         "invalid_uscc", "payload_too_large", "wrong_chain"]
    }

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let address = ClientAddress(context.remoteAddress) else { return try await next(request, context) }
        if let wait = limiter.wait(address, nowMs: now()) {
            metrics.rateLimited.increment()
            throw APIError(.tooManyRequests, "address_rate_limited",
                           "too many requests from \(address) failed to authenticate; retry later",
                           retryAfterSeconds: RetryAfter.seconds(wait))
        }
        do {
            return try await next(request, context)
        } catch let error as APIError {
            let failures = Self.failures(error.body.error)
            if failures > 0 { limiter.spend(address, cost: Double(failures), nowMs: now()) }
            throw error
        }
    }

    /// How many authentication failures an error reports: one per refused item of a batch, or one.
    static func failures(_ detail: APIErrorBody.Detail) -> Int {
        if let items = detail.items, !items.isEmpty {
            return items.count { unauthenticatedCodes.contains($0.code) }
        }
        return unauthenticatedCodes.contains(detail.code) ? 1 : 0
    }
}
