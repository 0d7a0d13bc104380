import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import XinlianNetwork
import XinlianConsensus
import XinlianCore
import XinlianCrypto

/// Issue 8, attack 7, "Starve peers before authentication": plain TCP connections that never start TLS must not
/// keep a genesis validator out.
@Suite(.timeLimit(.minutes(1))) struct HandshakeFloodTests {
    let group = MultiThreadedEventLoopGroup.singleton

    @Test func silentConnectionsFromOneAddressDoNotStarveAValidator() async throws {
        let fixture = try await NetFixture(count: 2)
        var config = NetFixture.fastConfig
        config.maxInboundConnections = 8
        // A handshake timeout that outlasts the test even on a loaded machine (the fixture's 10 s did not, once, in a
        // full run: an admitted silent connection timed out and was counted among the flood's closes): the flood
        // keeps whatever it was given, so the validator gets in because of the limits, not because the flood timed
        // out.
        config.handshakeTimeoutMs = 300_000
        let n1 = try await fixture.node("v1", config: config)
        let port = try #require(fixture.ports["v1"])
        let start = ContinuousClock.now
        let flood = try await SilentTCPFlood.open(count: 20, toPort: port, from: "127.0.0.2", group: group)
        // All but the per-address limit's worth of handshakes are closed at once.
        #expect(await flood.waitUntilClosed(atLeast: 16))
        let floodSeconds = (ContinuousClock.now - start).components.seconds
        #expect(flood.closed == 16)
        #expect(await poll { n1.network.stats.handshaking == 4 })
        #expect(n1.network.stats.inboundRefused == ["handshakes_per_address": 16])

        // The validator dials from 127.0.0.1 and is linked promptly, both ways.
        let n0 = try await fixture.node("v0")
        #expect(await n1.log.connected("v0", timeout: .seconds(3)))
        #expect(await n0.log.connected("v1", timeout: .seconds(3)))
        // Its link left the handshake pool; the flood still holds its four places there.
        #expect(n1.network.stats.handshaking == 4)
        #expect(flood.closed == 16)
        // Sixteen refusals, but their warnings are rate-limited: one a second (with the count of those not logged).
        let warnings = n1.logs.warnings(containing: "p2p inbound connection refused")
        #expect((1...Int(floodSeconds) + 1).contains(warnings.count))
        #expect(warnings.first?.contains("handshakes_per_address") == true)
        await flood.close()
        await n0.shutdown()
        await n1.shutdown()
    }

    @Test func authenticatedValidatorsDoNotUseTheHandshakePool() async throws {
        let fixture = try await NetFixture(count: 4)
        var config = NetFixture.fastConfig
        config.maxInboundConnections = 2
        let n3 = try await fixture.node("v3", config: config)
        // v0, v1 and v2 all dial v3: three links, though only two connections may be in the handshake at once.
        let n0 = try await fixture.node("v0")
        let n1 = try await fixture.node("v1")
        let n2 = try await fixture.node("v2")
        for peer: ValidatorID in ["v0", "v1", "v2"] { #expect(await n3.log.connected(peer)) }
        // Silent connections fill the handshake pool; the validators keep their links.
        let port = try #require(fixture.ports["v3"])
        let flood = try await SilentTCPFlood.open(count: 2, toPort: port, from: "127.0.0.2", group: group)
        // Accepted connections are set up on several event loops, in no set order: wait for these two first.
        #expect(await poll { n3.network.stats.handshaking == 2 })
        let extra = try await SilentTCPFlood.open(count: 1, toPort: port, from: "127.0.0.3", group: group)
        #expect(await extra.waitUntilClosed(atLeast: 1))
        #expect(flood.closed == 0)
        #expect(n3.network.stats.handshaking == 2)
        #expect((n3.network.stats.inboundRefused["handshake_pool_full"] ?? 0) >= 1)
        #expect(n3.network.connectedPeers == ["v0", "v1", "v2"])
        let probe = WireMessage.syncRequest(fromHeight: 4, count: 1)
        n3.network.send(probe, to: "v2")
        #expect(await n2.log.received("v3") { $0 == probe })
        await flood.close()
        await extra.close()
        for node in [n0, n1, n2, n3] { await node.shutdown() }
    }

    @Test func refusalWarningsAreRateLimitedPerKey() {
        final class Clock: Sendable { let now = Atomic<UInt64>(0) }
        let clock = Clock()
        let limiter = LogRateLimiter(intervalNanoseconds: 1_000_000_000) { clock.now.load(ordering: .relaxed) }
        #expect(limiter.admit("a") == 0)
        for _ in 0..<99 { #expect(limiter.admit("a") == nil) }
        #expect(limiter.admit("b") == 0)
        clock.now.store(999_999_999, ordering: .relaxed)
        #expect(limiter.admit("a") == nil)
        clock.now.store(1_000_000_000, ordering: .relaxed)
        #expect(limiter.admit("a") == 100)
        #expect(limiter.admit("a") == nil)
        clock.now.store(5_000_000_000, ordering: .relaxed)
        #expect(limiter.admit("a") == 1)
    }
}
