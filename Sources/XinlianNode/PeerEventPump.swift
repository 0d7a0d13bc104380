import Foundation
import Synchronization
import XinlianConsensus
import XinlianCore
import XinlianCrypto
import XinlianNetwork

/// Carries network events into the engine in arrival order, checking on the way (off the engine's thread) what
/// can be checked without the ledger: transaction signatures and the signatures of proposals and votes. A
/// peer that sends something signed wrongly is disconnected; validators verify what they relay, so even a
/// relayed forgery is the relayer's fault.
public struct PeerEventPump: Sendable {
    public let engine: NodeEngine
    public let link: any PeerLink
    /// Proposals and votes already checked recently: a duplicate (re-gossip, or a peer replaying) is dropped
    /// here without a second signature check.
    private let recent = RecentBox()
    /// The proposer schedule and genesis's block limits: checked before a proposal's signature, so that an
    /// off-schedule or oversized proposal costs nothing but this lookup.
    private let rules: PeerGate.Rules

    final class RecentBox: Sendable {
        let state = Mutex(RecentMessages())
    }

    struct RecentMessages {
        var keys: Set<[UInt8]> = []
        var order: [[UInt8]] = []
        var next = 0

        func contains(_ key: [UInt8]) -> Bool { keys.contains(key) }

        /// Remembers `key`, forgetting the oldest past the limit.
        mutating func insert(_ key: [UInt8]) {
            guard keys.insert(key).inserted else { return }
            if order.count < PeerEventPump.recentLimit {
                order.append(key)
            } else {
                keys.remove(order[next])
                order[next] = key
                next = (next + 1) % PeerEventPump.recentLimit
            }
        }
    }

    /// Signed proposals and votes remembered for duplicate dropping.
    static let recentLimit = 65_536

    public init(engine: NodeEngine, link: any PeerLink) {
        self.engine = engine
        self.link = link
        self.rules = PeerGate.Rules(chainID: engine.consortium.chainID, validators: engine.consortium.validators,
                                    parameters: engine.consortium.genesis.parameters)
    }

    /// Consumes `events` until the stream ends or the task is cancelled.
    public func run(_ events: AsyncStream<NetworkEvent>) async {
        for await event in events {
            await process(event)
        }
    }

    public func process(_ event: NetworkEvent) async {
        guard case .message(let peer, let message) = event else {
            await engine.handle(event)
            return
        }
        // The signed part identifies a proposal or vote (a proposal's block is bound to it by its hash). It is
        // remembered only once the engine took it, so neither a forged copy nor a message that came too early
        // can shadow a later genuine one. Heights the engine cannot use are dropped before any signature check.
        var key: [UInt8]?
        if case .consensus(let consensus) = message {
            let next = engine.tip.withLock { $0.height } + 1
            guard consensus.height >= next, consensus.height <= next + ConsensusCore.futureHeightsLimit else { return }
            let signed: [UInt8] = switch consensus {
            case .proposal(let signed, _): [1] + signed.canonicalBytes
            case .vote(let signed): [2] + signed.canonicalBytes
            }
            guard !recent.state.withLock({ $0.contains(signed) }) else { return }
            key = signed
        }
        if let reason = refusal(message) {
            await engine.dropPeer(peer, reason: reason)
            return
        }
        if await engine.handle(event), let key { recent.state.withLock { $0.insert(key) } }
    }

    /// Why `message` must be refused before it reaches the engine, or nil (``PeerGate/Rules/frameRefusal(_:consortium:verifier:)``).
    func refusal(_ message: WireMessage) -> String? {
        rules.frameRefusal(message, consortium: engine.consortium, verifier: DirectSignatureVerifier())
    }
}
