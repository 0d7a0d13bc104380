import Logging
import NIOCore
import NIOPosix
import Testing
@testable import XinlianNetwork
import XinlianConsensus
import XinlianCore
import XinlianCrypto

/// Issue 8, attack 8, "Grow memory without bound": what the transport holds for the node is bounded per peer, and
/// one peer's flood neither grows it without bound nor crowds out another peer's messages.
@Suite(.timeLimit(.minutes(1))) struct InboundBudgetTests {
    let group = MultiThreadedEventLoopGroup.singleton

    func hello(_ fixture: NetFixture, as validator: ValidatorID) -> WireMessage {
        .hello(PeerHello(chainID: NetFixture.chainID, genesisHash: fixture.consortium.genesisHash,
                         validator: validator, height: 1, lastBlockHash: .zero))
    }

    /// Messages of `peer` in `events` for which `match` holds.
    static func count(_ events: [NetworkEvent], from peer: ValidatorID, _ match: (WireMessage) -> Bool) -> Int {
        events.count { if case .message(peer, let message) = $0 { match(message) } else { false } }
    }

    @Test func floodOfSmallFramesDoesNotCrowdOutAnotherPeer() async throws {
        let fixture = try await NetFixture(count: 3)
        // Nobody takes v2's events until the flood is in. v0 floods; v1 sends one message after it.
        let n2 = try await fixture.node("v2", consuming: false)
        let flooder = try await RawPeer.connect(to: fixture.address("v2"),
                                                identity: try #require(fixture.identities["v0"]), group: group)
        try await flooder.send(hello(fixture, as: "v0"))
        let other = try await RawPeer.connect(to: fixture.address("v2"),
                                              identity: try #require(fixture.identities["v1"]), group: group)
        try await other.send(hello(fixture, as: "v1"))
        #expect(await poll { n2.network.connectedPeers == ["v0", "v1"] })
        let flood = 10_000
        let status = WireCodec.frame(.status(PeerStatus(height: 1, lastBlockHash: .zero)))
        let burst = Array((0..<flood).map { _ in status }.joined())
        let sender = Task { try? await flooder.sendRaw(burst) }
        // v0 fills its own budget (8192 events by default, its `connected` included) and is no longer read from.
        #expect(await poll { (n2.network.stats.inboundBudgetPauses["v0"] ?? 0) >= 1 })
        #expect(n2.network.stats.inboundEvents["v0"] == NetworkConfig.defaultPeerInboundEvents)

        // v1's message comes after the flood; it must reach the node, and nothing of v0's is lost either.
        let probe = WireMessage.syncRequest(fromHeight: 5, count: 1)
        try await other.send(probe)
        #expect(await poll { n2.network.stats.inboundEvents["v1"] == 2 })
        n2.startConsuming()
        #expect(await poll(timeout: .seconds(20)) {
            Self.count(n2.log.events, from: "v0") { $0 == .status(PeerStatus(height: 1, lastBlockHash: .zero)) } == flood
        })
        // Peers take turns: v1's message was not queued behind v0's backlog.
        let events = n2.log.events
        #expect(Self.count(events, from: "v0") { _ in true } == flood)
        let probeAt = try #require(events.firstIndex { if case .message("v1", probe) = $0 { true } else { false } })
        #expect(Self.count(Array(events[..<probeAt]), from: "v0") { _ in true } <= 1)
        let stats = n2.network.stats
        #expect(stats.inboundPeakBytes["v0"].map { $0 <= NetworkConfig.defaultPeerInboundBytes } == true)
        #expect(stats.inboundBudgetPauses["v1"] == nil)
        #expect(n2.network.connectedPeers == ["v0", "v1"])
        #expect(stats.disconnects.isEmpty)
        await flooder.close()
        await other.close()
        await sender.value
        await n2.shutdown()
    }

    /// A transactions frame of `count` transactions of about 60 KiB each (under `Limits.payloadBytes`).
    func bulk(transactions count: Int) -> WireMessage {
        let body = TransactionBody(chainID: NetFixture.chainID, kind: .governance, reporter: "bank-a", subject: nil,
                                   timeMs: 1, nonce: 1, payload: [UInt8](repeating: 0x61, count: 60 * 1024))
        return .transactions(Array(repeating: Transaction(body: body, signature: [UInt8](repeating: 1, count: 64)),
                                   count: count))
    }

    @Test func floodOfLargeFramesIsHeldToItsBudget() async throws {
        let fixture = try await NetFixture(count: 3)
        var config = NetFixture.fastConfig
        config.maxFrameBytes = 256 * 1024
        config.peerInboundBytes = 1024 * 1024
        config.peerInboundEvents = 1000
        // Reading from v0 will be paused for longer than this: a paused peer is not a silent one.
        // (4 s, so that a machine loaded by other tests does not time the flooder out before its first frame.)
        config.idleTimeoutMs = 4000
        let n1 = try await fixture.node("v1", config: config, consuming: false)
        let n2 = try await fixture.node("v2")
        let raw = try await RawPeer.connect(to: fixture.address("v1"), identity: try #require(fixture.identities["v0"]),
                                            group: group)
        // Right after its hello (RawPeer sends no status: it must not go silent first), 40 frames of 180 KiB
        // (7 MiB) against a budget of 1 MiB, while nobody takes v1's events.
        let frame = bulk(transactions: 3)
        let frameBytes = WireCodec.frame(frame).count - WireLimits.lengthPrefixBytes
        let count = 40
        try await raw.send(hello(fixture, as: "v0"))
        let sender = Task {
            for _ in 0..<count { try await raw.send(frame) }
        }
        #expect(await poll(timeout: .seconds(20)) { n1.network.connectedPeers == ["v0", "v2"] })
        #expect(await poll(timeout: .seconds(20)) { (n1.network.stats.inboundBudgetPauses["v0"] ?? 0) >= 1 })
        let paused = n1.network.stats
        let v2Waiting = paused.inboundEvents["v2"] ?? 0
        // Held: as many whole frames as fit, the next one waits in the connection, the rest in TCP.
        #expect(paused.inboundBytes["v0"].map { $0 <= config.peerInboundBytes && $0 > config.peerInboundBytes - frameBytes }
                == true)
        #expect(await n1.logs.waitForWarning(containing: "over its inbound budget"))
        // v2 is untouched: its message is queued in its own budget.
        let probe = WireMessage.syncRequest(fromHeight: 6, count: 1)
        n2.network.send(probe, to: "v1")
        // v2 sends its status every 100 ms at most: once fifty more of its events wait, v0 has been paused for longer
        // than idleTimeoutMs (4 s), and kept its link.
        #expect(await poll(timeout: .seconds(30)) { (n1.network.stats.inboundEvents["v2"] ?? 0) >= v2Waiting + 50 })
        #expect(n1.logs.warnings(containing: "p2p peer silent").isEmpty)
        #expect(n1.network.stats.disconnects["idle_timeout"] == nil)
        #expect(n1.network.connectedPeers == ["v0", "v2"])

        n1.startConsuming()
        #expect(await n1.log.received("v2", timeout: .seconds(10)) { $0 == probe })
        #expect(await n1.log.wait(timeout: .seconds(20)) { events in
            events.count { if case .message("v0", .transactions) = $0 { true } else { false } } == count
        })
        try await sender.value
        let stats = n1.network.stats
        #expect(stats.inboundPeakBytes["v0"].map { $0 <= config.peerInboundBytes } == true)
        #expect(stats.inboundPeakTotalBytes <= 2 * config.peerInboundBytes)
        #expect((stats.inboundBudgetPauses["v0"] ?? 0) >= 1)
        #expect(stats.inboundBudgetPauses["v2"] == nil)
        #expect(stats.disconnects["inbound_budget"] == nil)
        await raw.close()
        await n1.shutdown()
        await n2.shutdown()
    }

    @Test func nothingBiggerThanAHelloIsBufferedBeforeTheHello() async throws {
        let fixture = try await NetFixture(count: 2)
        let n1 = try await fixture.node("v1")
        let raw = try await RawPeer.connect(to: fixture.address("v1"), identity: try #require(fixture.identities["v0"]),
                                            group: group)
        // Past TLS with a genesis key, but the first frame declares one byte more than the largest hello.
        #expect(await raw.receive { if case .hello = $0 { true } else { false } } != nil)
        let length = UInt32(WireLimits.helloFrameBytes + 1)
        try? await raw.sendRaw([0, 0, UInt8(length >> 8), UInt8(truncatingIfNeeded: length)])
        #expect(await raw.waitForClose())
        #expect(n1.network.stats.framesRejected["frame_too_large"] == 1)
        #expect(n1.network.connectedPeers.isEmpty)
        await n1.shutdown()
    }
}
