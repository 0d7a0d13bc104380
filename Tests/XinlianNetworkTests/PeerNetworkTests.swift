import Logging
import NIOCore
import NIOPosix
import Testing
@testable import XinlianNetwork
import XinlianConsensus
import XinlianCore
import XinlianCrypto

@Suite(.timeLimit(.minutes(1))) struct PeerNetworkTests {
    let group = MultiThreadedEventLoopGroup.singleton

    func vote(_ validator: ValidatorID, height: UInt64) -> WireMessage {
        let vote = Vote(chainID: NetFixture.chainID, kind: .prevote, height: height, round: 0, blockHash: nil,
                        validator: validator)
        return .consensus(.vote(SignedVote(vote: vote, signature: [UInt8](repeating: 7, count: 64))))
    }

    @Test func refusesGenesisWithoutPinsOrWithAnotherKey() async throws {
        let fixture = try await NetFixture(count: 2)
        let v0: ValidatorID = "v0"
        let identity = try #require(fixture.identities[v0])
        let logger = Logger(label: "test")
        // Our identity is not the one genesis pins for v0.
        #expect(throws: NetworkError.self) {
            _ = try PeerNetwork(consortium: fixture.consortium, local: v0, listen: "127.0.0.1:0",
                                identity: try TLSIdentity.generate(commonName: "other"), config: NetworkConfig(),
                                group: group, logger: logger, localStatus: { PeerStatus(height: 0, lastBlockHash: .zero) })
        }
        // A validator without tlsKeySHA256: mutual TLS cannot be switched off.
        var genesis = fixture.consortium.genesis
        genesis.validators[1].tlsKeySHA256 = nil
        let unpinned = try Consortium(genesis)
        #expect(throws: NetworkError.self) {
            _ = try PeerNetwork(consortium: unpinned, local: v0, listen: "127.0.0.1:0", identity: identity,
                                config: NetworkConfig(), group: group, logger: logger,
                                localStatus: { PeerStatus(height: 0, lastBlockHash: .zero) })
        }
    }

    @Test func threeNodesConnectAndDeliver() async throws {
        let fixture = try await NetFixture(count: 3)
        let (v0, v1, v2): (ValidatorID, ValidatorID, ValidatorID) = ("v0", "v1", "v2")
        let n0 = try await fixture.node(v0, height: 10)
        let n1 = try await fixture.node(v1, height: 11)
        let n2 = try await fixture.node(v2, height: 12)
        #expect(await n0.log.connected(v1))
        #expect(await n0.log.connected(v2))
        #expect(await n1.log.connected(v0))
        #expect(await n1.log.connected(v2))
        #expect(await n2.log.connected(v0))
        #expect(await n2.log.connected(v1))
        #expect(n0.network.connectedPeers == [v1, v2])
        // The hello carries the sender's status and identity.
        let hello = n2.log.events.compactMap { if case .connected(v1, let hello) = $0 { hello } else { nil } }.first
        #expect(hello?.height == 11)
        #expect(hello?.genesisHash == fixture.consortium.genesisHash)
        #expect(hello?.chainID == NetFixture.chainID)

        let gossip = vote(v0, height: 99)
        n0.network.broadcast(gossip)
        #expect(await n1.log.received(v0) { $0 == gossip })
        #expect(await n2.log.received(v0) { $0 == gossip })
        let request = WireMessage.syncRequest(fromHeight: 3, count: 2)
        n2.network.send(request, to: v1)
        #expect(await n1.log.received(v2) { $0 == request })
        // Periodic status (every 100 ms in the fixture's config).
        #expect(await n0.log.received(v2) { $0 == .status(PeerStatus(height: 12, lastBlockHash: .zero)) })
        // No hello ever surfaces as a message.
        #expect(!n1.log.events.contains { if case .message(_, .hello) = $0 { true } else { false } })

        for node in [n0, n1, n2] { await node.shutdown() }
        #expect(n0.log.disconnectReasons(v1).count == 1)
    }

    @Test func outsiderKeyIsRefusedAndLegitPeersStay() async throws {
        let fixture = try await NetFixture(count: 2)
        let (v0, v1): (ValidatorID, ValidatorID) = ("v0", "v1")
        let n0 = try await fixture.node(v0)
        let n1 = try await fixture.node(v1)
        #expect(await n1.log.connected(v0))
        #expect(await n0.log.connected(v1))

        let outsider = try TLSIdentity.generate(commonName: "mallory")
        let raw = try await RawPeer.connect(to: fixture.address(v1), identity: outsider, group: group)
        try? await raw.send(.hello(PeerHello(chainID: NetFixture.chainID, genesisHash: fixture.consortium.genesisHash,
                                             validator: v0, height: 1, lastBlockHash: .zero)))
        #expect(await raw.waitForClose())
        #expect(n1.network.stats.handshakesRefused["unknown_key"] == 1)
        #expect(!n1.logs.warnings(containing: outsider.publicKeySHA256).isEmpty)
        #expect(n1.network.connectedPeers == [v0])
        #expect(n0.network.connectedPeers == [v1])
        #expect(n1.log.disconnectReasons(v0).isEmpty)
        await n0.shutdown()
        await n1.shutdown()
    }

    /// v0's key played by a RawPeer against the real v1 and v2 (which stay linked to each other).
    func hostileFixture() async throws -> (NetFixture, TestNode, TestNode, TLSIdentity) {
        let fixture = try await NetFixture(count: 3)
        let n1 = try await fixture.node("v1")
        let n2 = try await fixture.node("v2")
        #expect(await n2.log.connected("v1"))
        #expect(await n1.log.connected("v2"))
        return (fixture, n1, n2, try #require(fixture.identities["v0"]))
    }

    func hello(_ fixture: NetFixture, as validator: ValidatorID, genesis: Hash32? = nil) -> WireMessage {
        .hello(PeerHello(chainID: NetFixture.chainID, genesisHash: genesis ?? fixture.consortium.genesisHash,
                         validator: validator, height: 1, lastBlockHash: .zero))
    }

    @Test func wrongHelloIsRefused() async throws {
        let (fixture, n1, n2, v0Identity) = try await hostileFixture()
        // Right key, but the hello claims another validator.
        let impostor = try await RawPeer.connect(to: fixture.address("v2"), identity: v0Identity, group: group)
        try? await impostor.send(hello(fixture, as: "v1"))
        #expect(await impostor.waitForClose())
        // Right key and validator, wrong genesis.
        let forked = try await RawPeer.connect(to: fixture.address("v2"), identity: v0Identity, group: group)
        try? await forked.send(hello(fixture, as: "v0", genesis: Hash32(bytes: [UInt8](repeating: 1, count: 32))))
        #expect(await forked.waitForClose())
        // Anything but hello first.
        let rude = try await RawPeer.connect(to: fixture.address("v2"), identity: v0Identity, group: group)
        try? await rude.send(.status(PeerStatus(height: 1, lastBlockHash: .zero)))
        #expect(await rude.waitForClose())

        // v2's own key dialing v1: the larger id only accepts, so v1 refuses it.
        let backwards = try await RawPeer.connect(to: fixture.address("v1"), identity: try #require(fixture.identities["v2"]),
                                                  group: group)
        try? await backwards.send(hello(fixture, as: "v2"))
        #expect(await backwards.waitForClose())
        #expect(n1.network.stats.handshakesRefused["wrong_direction"] == 1)

        let stats = n2.network.stats
        #expect(stats.handshakesRefused["hello_validator_mismatch"] == 1)
        #expect(stats.handshakesRefused["wrong_genesis"] == 1)
        #expect(stats.framesRejected["expected_hello"] == 1)
        #expect(!n2.logs.warnings(containing: "wrong_genesis").isEmpty)
        #expect(!n2.log.events.contains { if case .connected("v0", _) = $0 { true } else { false } })
        #expect(n2.network.connectedPeers == ["v1"])
        #expect(n1.network.connectedPeers == ["v2"])
        await n1.shutdown()
        await n2.shutdown()
    }

    @Test func oversizedFrameDisconnects() async throws {
        let (fixture, n1, n2, v0Identity) = try await hostileFixture()
        let raw = try await RawPeer.connect(to: fixture.address("v2"), identity: v0Identity, group: group)
        try await raw.send(hello(fixture, as: "v0"))
        #expect(await raw.receive { if case .hello = $0 { true } else { false } } != nil)
        #expect(await n2.log.connected("v0"))
        // Declare one byte more than the limit and send nothing else: refused on the header alone.
        let length = UInt32(NetFixture.fastConfig.maxFrameBytes + 1)
        try? await raw.sendRaw([UInt8(length >> 24), UInt8(truncatingIfNeeded: length >> 16),
                                UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)])
        #expect(await raw.waitForClose())
        #expect(await n2.log.disconnected("v0"))
        #expect(n2.log.disconnectReasons("v0").first?.hasPrefix("frame_too_large") == true)
        #expect(n2.network.stats.framesRejected["frame_too_large"] == 1)
        #expect(n2.network.connectedPeers == ["v1"])
        #expect(n1.network.connectedPeers == ["v2"])
        await n1.shutdown()
        await n2.shutdown()
    }

    @Test func malformedFrameDisconnects() async throws {
        let (fixture, n1, n2, v0Identity) = try await hostileFixture()
        let raw = try await RawPeer.connect(to: fixture.address("v2"), identity: v0Identity, group: group)
        try await raw.send(hello(fixture, as: "v0"))
        #expect(await n2.log.connected("v0"))
        // A good frame is delivered...
        try await raw.send(.syncRequest(fromHeight: 1, count: 1))
        #expect(await n2.log.received("v0") { $0 == .syncRequest(fromHeight: 1, count: 1) })
        // ...a status frame with a truncated hash is not, nor anything after it in the same write.
        let after = WireMessage.syncRequest(fromHeight: 2, count: 2)
        try? await raw.sendRaw([0, 0, 0, 10, WireType.status] + [UInt8](repeating: 0, count: 9) + WireCodec.frame(after))
        #expect(await raw.waitForClose())
        #expect(await n2.log.disconnected("v0"))
        #expect(n2.network.stats.framesRejected["malformed"] == 1)
        #expect(!n2.log.events.contains { if case .message("v0", after) = $0 { true } else { false } })
        #expect(!n2.logs.warnings(containing: "malformed").isEmpty)
        #expect(n2.network.connectedPeers == ["v1"])
        await n1.shutdown()
        await n2.shutdown()
    }

    @Test func dialedAddressAnsweringWithAnotherKeyIsRefused() async throws {
        let fixture = try await NetFixture(count: 3)
        // v2 listens where genesis puts v1: v0 dials "v1" and meets v2's key.
        let logs = LogStore()
        let impostor = try PeerNetwork(consortium: fixture.consortium, local: "v2", listen: fixture.address("v1"),
                                       identity: try #require(fixture.identities["v2"]), config: NetFixture.fastConfig,
                                       group: group, logger: Logger(label: "v2") { _ in CapturingLogHandler(store: logs) },
                                       localStatus: { PeerStatus(height: 0, lastBlockHash: .zero) })
        try await impostor.start()
        let n0 = try await fixture.node("v0")
        #expect(await n0.logs.waitForWarning(containing: "wrong_key"))
        #expect((n0.network.stats.handshakesRefused["wrong_key"] ?? 0) >= 1)
        #expect(n0.network.connectedPeers.isEmpty)
        await n0.shutdown()
        await impostor.shutdown()
    }

    @Test func cutAndHeal() async throws {
        let fixture = try await NetFixture(count: 2)
        let (v0, v1): (ValidatorID, ValidatorID) = ("v0", "v1")
        let n0 = try await fixture.node(v0)
        let n1 = try await fixture.node(v1)
        #expect(await n0.log.connected(v1))
        #expect(await n1.log.connected(v0))

        // Cut on the dialing side.
        var mark0 = n0.log.count, mark1 = n1.log.count
        n0.network.cut(v1)
        #expect(await n0.log.disconnected(v1, after: mark0))
        #expect(await n1.log.disconnected(v0, after: mark1))
        #expect(await !n0.log.connected(v1, after: mark0, timeout: .milliseconds(600)))
        #expect(n0.network.connectedPeers.isEmpty)
        n0.network.heal(v1)
        #expect(await n0.log.connected(v1, after: mark0))
        #expect(await n1.log.connected(v0, after: mark1))

        // Cut on the accepting side: the dialer keeps retrying and is refused until heal.
        mark0 = n0.log.count
        mark1 = n1.log.count
        n1.network.cut(v0)
        #expect(await n1.log.disconnected(v0, after: mark1))
        #expect(await !n1.log.connected(v0, after: mark1, timeout: .milliseconds(600)))
        #expect((n1.network.stats.handshakesRefused["cut"] ?? 0) >= 1)
        n1.network.heal(v0)
        #expect(await n1.log.connected(v0, after: mark1))
        #expect(await n0.log.connected(v1, after: mark0))
        await n0.shutdown()
        await n1.shutdown()
    }

    @Test func restartedPeerIsReconnected() async throws {
        let fixture = try await NetFixture(count: 3)
        let (v0, v1, v2): (ValidatorID, ValidatorID, ValidatorID) = ("v0", "v1", "v2")
        let n0 = try await fixture.node(v0)
        let n1 = try await fixture.node(v1)
        let n2 = try await fixture.node(v2)
        for (node, peers) in [(n0, [v1, v2]), (n1, [v0, v2]), (n2, [v0, v1])] {
            for peer in peers { #expect(await node.log.connected(peer)) }
        }

        // The accepting side restarts on the same port: v0 and v1 dial it again.
        let mark0 = n0.log.count, mark1 = n1.log.count
        await n2.shutdown()
        #expect(await n0.log.disconnected(v2, after: mark0))
        let n2again = try await fixture.node(v2, height: 20)
        #expect(await n0.log.connected(v2, after: mark0))
        #expect(await n1.log.connected(v2, after: mark1))
        #expect(await n2again.log.connected(v0))

        // The dialing side restarts: v1 and v2 accept the new connection.
        let mark2 = n2again.log.count
        await n0.shutdown()
        let n0again = try await fixture.node(v0)
        #expect(await n0again.log.connected(v1))
        #expect(await n0again.log.connected(v2))
        #expect(await n2again.log.connected(v0, after: mark2))
        let message = vote(v0, height: 5)
        n0again.network.broadcast(message)
        #expect(await n2again.log.received(v0) { $0 == message })
        for node in [n0again, n1, n2again] { await node.shutdown() }
    }

    @Test func inboundLimitAndHandshakeTimeout() async throws {
        let fixture = try await NetFixture(count: 2)
        var config = NetFixture.fastConfig
        config.maxInboundConnections = 1
        // Long enough that the silent peer still holds the slot when the second one arrives, even on a loaded
        // machine (the full test suite runs alongside).
        config.handshakeTimeoutMs = 3_000
        let n1 = try await fixture.node("v1", config: config)
        let v0Identity = try #require(fixture.identities["v0"])
        // Holds the one inbound slot without ever sending hello: closed by the handshake timeout.
        let silent = try await RawPeer.connect(to: fixture.address("v1"), identity: v0Identity, group: group)
        // Over the limit: closed at once.
        let extra = try await RawPeer.connect(to: fixture.address("v1"), identity: v0Identity, group: group)
        #expect(await extra.waitForClose(timeout: .seconds(2)))
        #expect(n1.network.stats.inboundRefused == ["handshake_pool_full": 1])
        #expect(await silent.waitForClose(timeout: .seconds(8)))
        #expect(n1.network.stats.handshakesRefused["handshake_timeout"] == 1)
        await n1.shutdown()
    }
}

@Suite(.timeLimit(.minutes(1))) struct PeerFlowControlTests {
    let group = MultiThreadedEventLoopGroup.singleton

    /// A transactions frame of about `kib` KiB.
    func bulk(kib: Int) throws -> WireMessage {
        let body = TransactionBody(chainID: NetFixture.chainID, kind: .governance, reporter: "bank-a", subject: nil,
                                   timeMs: 1, nonce: 1, payload: [UInt8](repeating: 0x61, count: kib * 1024))
        return .transactions([Transaction(body: body, signature: [UInt8](repeating: 1, count: 64))])
    }

    @Test func slowPeerIsDroppedWithoutStallingTheNode() async throws {
        let fixture = try await NetFixture(count: 3)
        var config = NetFixture.fastConfig
        config.peerQueuedBytes = 512 * 1024
        let n1 = try await fixture.node("v1", config: config)
        let n2 = try await fixture.node("v2", config: config)
        #expect(await n1.log.connected("v2"))
        #expect(await n2.log.connected("v1"))
        let slow = try await RawPeer.connect(to: fixture.address("v1"), identity: try #require(fixture.identities["v0"]),
                                             group: group)
        try await slow.send(.hello(PeerHello(chainID: NetFixture.chainID, genesisHash: fixture.consortium.genesisHash,
                                             validator: "v0", height: 1, lastBlockHash: .zero)))
        #expect(await n1.log.connected("v0"))
        try await slow.pauseReading()
        // Far more than the socket buffers and the queue cap hold: the caller never blocks, v0 is dropped.
        let frame = try bulk(kib: 60)
        for _ in 0..<400 { n1.network.send(frame, to: "v0") }
        #expect(await n1.log.disconnected("v0"))
        #expect(n1.log.disconnectReasons("v0").first?.hasPrefix("slow_peer") == true)
        // The healthy link still carries traffic.
        let probe = WireMessage.syncRequest(fromHeight: 9, count: 3)
        n1.network.send(probe, to: "v2")
        #expect(await n2.log.received("v1") { $0 == probe })
        #expect(n1.network.connectedPeers == ["v2"])
        await n1.shutdown()
        await n2.shutdown()
    }

    @Test func inboundRateIsLimitedNotRefused() async throws {
        let fixture = try await NetFixture(count: 2)
        var config = NetFixture.fastConfig
        config.peerBytesPerSecond = 256 * 1024
        let n1 = try await fixture.node("v1", config: config)
        let raw = try await RawPeer.connect(to: fixture.address("v1"), identity: try #require(fixture.identities["v0"]),
                                            group: group)
        try await raw.send(.hello(PeerHello(chainID: NetFixture.chainID, genesisHash: fixture.consortium.genesisHash,
                                            validator: "v0", height: 1, lastBlockHash: .zero)))
        #expect(await n1.log.connected("v0"))
        // 1 MiB at 256 KiB/s with one second of burst, less one read's overshoot (up to 4 reads of 64 KiB
        // are taken per read request): at least two seconds, and nothing is dropped.
        let start = ContinuousClock.now
        let frame = try bulk(kib: 32)
        for _ in 0..<32 { try await raw.send(frame) }
        let marker = WireMessage.syncRequest(fromHeight: 1, count: 1)
        try await raw.send(marker)
        #expect(await n1.log.received("v0", timeout: .seconds(10)) { $0 == marker })
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(1500))
        let delivered = n1.log.events.filter { if case .message("v0", .transactions) = $0 { true } else { false } }
        #expect(delivered.count == 32)
        #expect(n1.network.connectedPeers == ["v0"])
        await raw.close()
        await n1.shutdown()
    }

    @Test func oversizedOutboundIsNotSent() async throws {
        let fixture = try await NetFixture(count: 2)
        let n0 = try await fixture.node("v0")
        let n1 = try await fixture.node("v1")
        #expect(await n0.log.connected("v1"))
        #expect(await n1.log.connected("v0"))
        // The fixture's maxFrameBytes is 1 MiB: 20 transactions of 60 KiB do not fit; a sync request for 0 blocks breaks the count.
        let big = try bulk(kib: 60)
        guard case .transactions(let one) = big else { return }
        n0.network.broadcast(.transactions(Array(repeating: one[0], count: 20)))
        n0.network.send(.syncRequest(fromHeight: 1, count: 0), to: "v1")
        #expect(n0.network.stats.framesNotSent == 2)
        let probe = WireMessage.syncRequest(fromHeight: 2, count: 2)
        n0.network.send(probe, to: "v1")
        #expect(await n1.log.received("v0") { $0 == probe })
        #expect(!n1.log.events.contains { if case .message(_, .transactions) = $0 { true } else { false } })
        #expect(n1.log.disconnectReasons("v0").isEmpty)
        await n0.shutdown()
        await n1.shutdown()
    }

    @Test func silentPeerIsDroppedLiveOnesStay() async throws {
        let fixture = try await NetFixture(count: 3)
        var config = NetFixture.fastConfig
        config.idleTimeoutMs = 400
        let n1 = try await fixture.node("v1", config: config)
        let n2 = try await fixture.node("v2", config: config)
        #expect(await n1.log.connected("v2"))
        #expect(await n2.log.connected("v1"))
        let silent = try await RawPeer.connect(to: fixture.address("v2"), identity: try #require(fixture.identities["v0"]),
                                               group: group)
        try await silent.send(.hello(PeerHello(chainID: NetFixture.chainID, genesisHash: fixture.consortium.genesisHash,
                                               validator: "v0", height: 1, lastBlockHash: .zero)))
        #expect(await n2.log.connected("v0"))
        #expect(await n2.log.disconnected("v0"))
        #expect(n2.log.disconnectReasons("v0").first?.hasPrefix("idle_timeout") == true)
        #expect(await silent.waitForClose())
        // v1 and v2 exchange status every 100 ms, so their link outlived the 400 ms of silence.
        #expect(n2.log.disconnectReasons("v1").isEmpty)
        #expect(n2.network.connectedPeers == ["v1"])
        await n1.shutdown()
        await n2.shutdown()
    }

    @Test func disconnectLetsThePeerComeBack() async throws {
        let fixture = try await NetFixture(count: 2)
        let n0 = try await fixture.node("v0")
        let n1 = try await fixture.node("v1")
        #expect(await n0.log.connected("v1"))
        #expect(await n1.log.connected("v0"))
        let mark0 = n0.log.count, mark1 = n1.log.count
        n1.network.disconnect("v0", reason: "forged vote")
        #expect(await n1.log.disconnected("v0", after: mark1))
        #expect(await n0.log.disconnected("v1", after: mark0))
        #expect(n1.log.disconnectReasons("v0").first == "disconnect: forged vote")
        #expect(!n1.logs.warnings(containing: "forged vote").isEmpty)
        #expect(await n0.log.connected("v1", after: mark0))
        #expect(await n1.log.connected("v0", after: mark1))
        await n0.shutdown()
        await n1.shutdown()
    }
}
