import Foundation
import Hummingbird
import Synchronization
import XinlianCore

/// What the operator API can do to peer links.
public protocol PeerControl: Sendable {
    /// Drops the link to `peer` and refuses it (both directions) until ``heal(_:)``.
    func cut(_ peer: ValidatorID)
    func heal(_ peer: ValidatorID)
    var connectedPeers: [ValidatorID] { get }
}

/// A consortium of one has no peer links to cut or heal.
public struct NoPeerControl: PeerControl {
    public init() {}
    public func cut(_ peer: ValidatorID) {}
    public func heal(_ peer: ValidatorID) {}
    public var connectedPeers: [ValidatorID] { [] }
}

/// The operator API, served on a separate loopback-only listener (`adminListen`): lets a test harness cut and
/// heal this node's link to a chosen peer, and serves `/metrics` (the only place it is served when
/// `apiPublicMetrics` is false). See `docs/operations.md`.
public struct AdminAPI: Sendable {
    public let engine: NodeEngine
    public let peers: any PeerControl

    public init(engine: NodeEngine, peers: any PeerControl) {
        self.engine = engine
        self.peers = peers
    }

    struct PeersBody: Codable, Sendable {
        var connected: [String]
        var cut: [String]
    }

    public func router(cutState: CutRegistry) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: LoopbackOnlyMiddleware())
        router.get("/metrics") { _, _ in API.metrics(engine) }
        router.get("/admin/peers") { _, _ in
            try API.json(PeersBody(connected: peers.connectedPeers.map(\.value).sorted(), cut: cutState.cut.map(\.value).sorted()))
        }
        router.post("/admin/peers/:id/cut") { _, context in
            let peer = try validator(context.parameters.require("id"))
            cutState.insert(peer)
            peers.cut(peer)
            return try API.json(PeersBody(connected: peers.connectedPeers.map(\.value).sorted(), cut: cutState.cut.map(\.value).sorted()))
        }
        router.post("/admin/peers/:id/heal") { _, context in
            let peer = try validator(context.parameters.require("id"))
            cutState.remove(peer)
            peers.heal(peer)
            return try API.json(PeersBody(connected: peers.connectedPeers.map(\.value).sorted(), cut: cutState.cut.map(\.value).sorted()))
        }
        return router
    }

    private func validator(_ text: String) throws -> ValidatorID {
        guard let id = try? Name(text), engine.consortium.validators.member(id) != nil, id != engine.validatorID else {
            throw APIError(.notFound, "unknown_peer", "\(text) is not another validator in genesis")
        }
        return id
    }
}

/// Refuses what a web page open on the operator's machine could send: any request with an `Origin` header (a
/// browser's cross-origin fetch or form), and any whose `Host` is not a loopback name (DNS rebinding: a hostile
/// name resolving to 127.0.0.1). Command-line clients send neither an `Origin` nor a foreign `Host`.
struct LoopbackOnlyMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.headers[.origin] != nil {
            throw APIError(.forbidden, "origin_refused", "the operator API refuses browser requests (an Origin header was sent)")
        }
        guard let authority = request.head.authority, Self.isLoopback(authority) else {
            throw APIError(.forbidden, "host_refused",
                           "the operator API answers only to a loopback Host (127.0.0.1, localhost or [::1])")
        }
        return try await next(request, context)
    }

    /// Whether `authority` (`host[:port]`) names a loopback host.
    static func isLoopback(_ authority: String) -> Bool {
        var host = Substring(authority)
        if host.hasPrefix("["), let end = host.firstIndex(of: "]") {
            host = host[...end]
        } else if let colon = host.lastIndex(of: ":"), host.firstIndex(of: ":") == colon {
            host = host[..<colon]
        }
        return ["127.0.0.1", "localhost", "[::1]", "::1"].contains(host.lowercased())
    }
}

/// The peers an operator has cut, for `GET /admin/peers`.
public final class CutRegistry: Sendable {
    private let state = Mutex<Set<ValidatorID>>([])
    public init() {}
    public var cut: Set<ValidatorID> { state.withLock { $0 } }
    func insert(_ peer: ValidatorID) { state.withLock { _ = $0.insert(peer) } }
    func remove(_ peer: ValidatorID) { state.withLock { _ = $0.remove(peer) } }
}
