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

/// The operator API, served on a separate loopback-only listener (`adminListen`): lets a test harness cut and
/// heal this node's link to a chosen peer. See `docs/operations.md`.
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

/// The peers an operator has cut, for `GET /admin/peers`.
public final class CutRegistry: Sendable {
    private let state = Mutex<Set<ValidatorID>>([])
    public init() {}
    public var cut: Set<ValidatorID> { state.withLock { $0 } }
    func insert(_ peer: ValidatorID) { state.withLock { _ = $0.insert(peer) } }
    func remove(_ peer: ValidatorID) { state.withLock { _ = $0.remove(peer) } }
}
