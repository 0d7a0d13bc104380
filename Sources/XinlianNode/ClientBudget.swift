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

/// A budget for the signature checks a caller can cause before anyone knows who it is: each signature that is
/// checked and fails (a signed request's, a report query's, each badly signed transaction of a batch) spends one
/// token, and a caller with none left is refused (`429 address_rate_limited`) before any more of its signatures are
/// checked. The caller is its client address (``ClientAddress``; an IPv6 client's /48 is charged a share too) and,
/// for signed reads, the institution its header claims: a hostile client behind a bank's gateway address can exhaust only the budget of the institution it
/// claims to be at that address, not every member's. One token is reserved before a request runs (so concurrent
/// requests cannot all pass on the last one) and given back when no signature failed; failures past it are owed
/// as debt. Callers whose signatures verify are limited per institution (``APILimits``) instead. Checks that cost
/// no verification (a missing, malformed or stale header, an unknown signer) are not charged.
///
/// Requests without a socket address (tests in router mode, Unix sockets) are not budgeted.
struct ClientBudget<Context: RemoteAddressRequestContext>: RouterMiddleware {
    let limiter: RateLimiter<ClientAddress>
    let metrics: NodeMetrics
    let now: @Sendable () -> UInt64
    /// Reverse proxies whose `X-Forwarded-For` is believed (``APILimits/trustedProxies``).
    var trustedProxies: Set<ClientAddress> = []

    /// The client a request is budgeted by: the socket's address, or, from a trusted proxy, the rightmost address
    /// of `X-Forwarded-For` that is not a trusted proxy (entries left of it are the client's own claims).
    func client(_ socket: ClientAddress, _ request: Request) -> ClientAddress {
        guard trustedProxies.contains(socket), let forwarded = ReportRoutes.header(request, "X-Forwarded-For") else { return socket }
        for entry in forwarded.split(separator: ",").reversed() {
            guard let address = ClientAddress(ipLiteral: String(entry)) else { return socket }
            if !trustedProxies.contains(address) { return address }
        }
        return socket
    }

    /// Error codes that mean a signature was checked and failed.
    static var failedSignatureCodes: Set<String> { ["bad_signature"] }

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let socket = ClientAddress(context.remoteAddress) else { return try await next(request, context) }
        let address = client(socket, request)
        let claimed = ReportRoutes.header(request, SignedRequest.headerName)?.split(separator: " ").first.map(String.init)
        let claim = claimed.map { " as " + String($0.prefix(64)) } ?? ""
        // The client's own bucket costs 1 a failure; its IPv6 /48's (shared by every /64 in it) a share of one.
        var costs = [ClientAddress(literal: address.description + claim): 1.0]
        if let aggregate = address.aggregate { costs[ClientAddress(literal: aggregate + claim)] = ClientAddress.aggregateShare }
        if let wait = limiter.take(costs, nowMs: now()) {
            metrics.rateLimited.increment()
            throw APIError(.tooManyRequests, "address_rate_limited",
                           "too many signatures from \(address.aggregate.map { "\(address) (or its \($0))" } ?? "\(address)") failed to verify; retry later",
                           retryAfterSeconds: RetryAfter.seconds(wait))
        }
        func settle(_ failures: Int) {
            for (key, cost) in costs {
                if failures == 0 {
                    limiter.refund(key, cost: cost, nowMs: now())
                } else if failures > 1 {
                    limiter.spend(key, cost: cost * Double(failures - 1), nowMs: now())
                }
            }
        }
        do {
            let response = try await next(request, context)
            settle(0)
            return response
        } catch let error as APIError {
            settle(Self.failures(error.body.error))
            throw error
        } catch {
            settle(0)
            throw error
        }
    }

    /// How many signatures an error reports as checked and failed: one per such item of a batch, or one.
    static func failures(_ detail: APIErrorBody.Detail) -> Int {
        if let items = detail.items, !items.isEmpty {
            return items.count { failedSignatureCodes.contains($0.code) }
        }
        return failedSignatureCodes.contains(detail.code) ? 1 : 0
    }
}
