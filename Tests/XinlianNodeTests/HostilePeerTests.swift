import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing
import XinlianConsensus
import XinlianCore
import XinlianCrypto
import XinlianNetwork
import XinlianNode

/// Three real engines on the real transport (pinned mutual TLS on loopback) and a scripted hostile peer that
/// holds the fourth validator's keys.
@Suite("Hostile peers against nodes on the real transport", .serialized)
struct HostilePeerTests {
    struct Node {
        let engine: NodeEngine
        let network: PeerNetwork
        let pump: Task<Void, Never>
    }

    /// A free port below the ephemeral range, from this target's band, each handed out once per run (see the
    /// network tests' fixture).
    static func freePort() async throws -> Int {
        for _ in 0..<200 {
            let port = portBand.lowerBound + nextPort.wrappingAdd(1, ordering: .relaxed).oldValue % portBand.count
            if let channel = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .bind(host: "127.0.0.1", port: port).get() {
                try await channel.close()
                return port
            }
        }
        throw TimedOut(description: "no free port found")
    }

    static let portBand = 23_000..<26_000
    static let nextPort = Atomic<Int>(Int.random(in: 0..<3_000))

    @Test func forgedVotesAndForgedSyncRepliesDisconnectThePeerAndCommitsGoOn() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-hostile-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let suite = CryptoSuite.ed25519SHA256
        let keys = (0..<4).map { _ in suite.generateSigningKey() }
        let identities = try (0..<4).map { try TLSIdentity.generate(commonName: "node\($0)") }
        var ports: [Int] = []
        for _ in 0..<4 { ports.append(try await Self.freePort()) }
        let institution = suite.generateSigningKey()
        let consortium = try Consortium(Genesis(
            chainId: "xinlian-hostile", cryptoSuite: .ed25519SHA256, genesisTimeMs: 1_764_000_000_000, parameters: .defaults,
            institutions: [InstitutionRecord(id: "bank-a", name: "Bank A", roles: [.member],
                                             publicKey: institution.publicKey.bytes.hexString)],
            validators: try (0..<4).map { i in
                ValidatorRecord(id: try Name("node\(i)"), institution: "bank-a", publicKey: keys[i].publicKey.bytes.hexString,
                                power: 10, p2pAddress: "127.0.0.1:\(ports[i])", apiAddress: "127.0.0.1:1",
                                tlsKeySHA256: identities[i].publicKeySHA256)
            }))
        var config = NetworkConfig()
        config.reconnectMinMs = 20
        config.reconnectMaxMs = 200
        config.statusIntervalMs = 100
        // node0 is the hostile one: it is the smallest id, so it dials the others (who accept it).
        func startNode(_ i: Int, cut: [ValidatorID] = []) async throws -> Node {
            var logger = Logger(label: "node\(i)")
            logger.logLevel = .critical
            let engine = try NodeEngine(consortium: consortium, validatorID: try Name("node\(i)"), validatorKey: keys[i],
                                        dataDirectory: "\(directory)/node\(i)", metrics: NodeMetrics(), logger: logger)
            let network = try PeerNetwork(consortium: consortium, local: try Name("node\(i)"), listen: "127.0.0.1:\(ports[i])",
                                          identity: identities[i], config: config, group: MultiThreadedEventLoopGroup.singleton,
                                          logger: logger, localStatus: { engine.tip.withLock { $0 } })
            for peer in cut { network.cut(peer) }
            try await engine.startConsensus(link: network, timeouts: LocalConsortium.timeouts)
            try await network.start()
            let pump = PeerEventPump(engine: engine, link: network)
            return Node(engine: engine, network: network, pump: Task { await pump.run(network.events) })
        }
        var nodes: [Node] = []
        for i in 1..<4 { nodes.append(try await startNode(i)) }
        defer { for node in nodes { node.pump.cancel() } }
        func transactions(_ range: Range<Int>) throws -> [Transaction] {
            try range.map { n in
                try Transaction.sign(TransactionBody(
                    chainID: consortium.chainID, kind: .facilityOpened, reporter: "bank-a",
                    subject: try USCC.withCheckCharacter(String(format: "91310000%09d", n % 5)), timeMs: 1_764_000_000_000,
                    nonce: UInt64(n), payload: try Payload.canonicalize(.object([
                        "facilityId": .string("F-\(n)"), "type": .string("loan"),
                        "amount": .object(["minor": .integer(100_000), "currency": .string("CNY")]),
                        "openedOn": .string("2025-01-10"), "maturesOn": .string("2027-01-10"),
                        "security": .string("unsecured"), "classification": .string("normal"),
                    ]))), with: institution)
            }
        }
        // Three of four commit on their own.
        _ = try await nodes[0].engine.admit(try transactions(0..<5))
        try await expectAgreement(nodes.map(\.engine), atLeast: 1)
        let height = await nodes[0].engine.height
        let genuine = try await nodes[0].engine.record(at: 1)
        let hello = PeerHello(chainID: consortium.chainID, genesisHash: consortium.genesisHash, validator: "node0",
                              height: height, lastBlockHash: genuine.block.header.hash(consortium.suite))

        // 1. A vote with a wrong signature (node2's signature on a vote claiming to be node0's).
        let hostile = try await RawPeer.connect(to: "127.0.0.1:\(ports[1])", identity: identities[0],
                                                group: MultiThreadedEventLoopGroup.singleton)
        try await hostile.send(.hello(hello))
        let vote = Vote(chainID: consortium.chainID, kind: .prevote, height: height + 1, round: 0, blockHash: nil,
                        validator: "node0")
        try await hostile.send(.consensus(.vote(SignedVote(vote: vote, signature: try keys[2].sign(vote.signingBytes)))))
        // Closed well before the 10 s idle timeout, and by the node's own decision.
        #expect(await hostile.waitForClose(timeout: .seconds(5)), "a forged vote must disconnect the peer")
        let victimNetwork = nodes[0].network
        try await eventually(5, "the disconnect counted as the node's own") {
            victimNetwork.stats.disconnects["disconnect", default: 0] >= 1
        }

        // 2. Node 3 is rebuilt from scratch (its data lost) and is behind. Its links to nodes 1 and 2 start cut, so
        //    the hostile peer connects first; then node 2 is let in, more than a third of the power now claims
        //    the height, and node 3 asks the first such peer, the liar, which answers with a forged block.
        await nodes[2].network.shutdown()
        await nodes[2].engine.shutdown()
        nodes[2].pump.cancel()
        try FileManager.default.removeItem(atPath: "\(directory)/node3")
        let rebuilt = try await startNode(3, cut: ["node1", "node2"])
        nodes[2] = rebuilt
        let liar = try await RawPeer.connect(to: "127.0.0.1:\(ports[3])", identity: identities[0],
                                             group: MultiThreadedEventLoopGroup.singleton)
        try await liar.send(.hello(hello))
        rebuilt.network.heal("node2")
        let request = await liar.receive(timeout: .seconds(10)) { if case .syncRequest = $0 { true } else { false } }
        guard case .syncRequest(let from, _) = request else {
            Issue.record("no sync request to the first peer claiming the consortium's height")
            return
        }
        #expect(from == 1)
        var forged = genuine
        forged.block.transactions[0] = try transactions(100..<101)[0]
        try await liar.send(.syncResponse(fromHeight: 1, blocks: [forged]))
        #expect(await liar.waitForClose(timeout: .seconds(5)), "a forged sync reply must disconnect the peer")
        // The honest peer serves it next; node 3 catches up to the same chain.
        rebuilt.network.heal("node1")
        try await expectAgreement(nodes.map(\.engine), atLeast: height)

        // The nodes keep committing, on one chain.
        _ = try await nodes[1].engine.admit(try transactions(5..<10))
        try await expectAgreement(nodes.map(\.engine), atLeast: height + 1)
        for node in nodes {
            await node.network.shutdown()
            await node.engine.shutdown()
        }
    }
}
