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

    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

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
        var nodes: [Node] = []
        for i in 1..<4 {
            var logger = Logger(label: "node\(i)")
            logger.logLevel = .error
            let engine = try NodeEngine(consortium: consortium, validatorID: try Name("node\(i)"), validatorKey: keys[i],
                                        dataDirectory: "\(directory)/node\(i)", metrics: NodeMetrics(), logger: logger)
            let network = try PeerNetwork(consortium: consortium, local: try Name("node\(i)"), listen: "127.0.0.1:\(ports[i])",
                                          identity: identities[i], config: config, group: MultiThreadedEventLoopGroup.singleton,
                                          logger: logger, localStatus: { engine.tip.withLock { $0 } })
            try await engine.startConsensus(link: network, timeouts: LocalConsortium.timeouts)
            try await network.start()
            let pump = PeerEventPump(engine: engine, link: network)
            nodes.append(Node(engine: engine, network: network, pump: Task { await pump.run(network.events) }))
        }
        defer { for node in nodes { node.pump.cancel() } }
        let victim = nodes[0]
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
        _ = try await victim.engine.admit(try transactions(0..<5))
        try await expectAgreement(nodes.map(\.engine), atLeast: 1)
        let genuine = try await victim.engine.record(at: 1)

        // 1. A vote with a wrong signature.
        let hostile = try await RawPeer.connect(to: "127.0.0.1:\(ports[1])", identity: identities[0],
                                                group: MultiThreadedEventLoopGroup.singleton)
        let hello = PeerHello(chainID: consortium.chainID, genesisHash: consortium.genesisHash, validator: "node0",
                              height: 0, lastBlockHash: consortium.genesisHash)
        try await hostile.send(.hello(hello))
        let vote = Vote(chainID: consortium.chainID, kind: .prevote, height: 2, round: 0, blockHash: nil, validator: "node0")
        try await hostile.send(.consensus(.vote(SignedVote(vote: vote, signature: try keys[2].sign(vote.signingBytes)))))
        #expect(await hostile.waitForClose(timeout: .seconds(10)), "a forged vote must disconnect the peer")

        // 2. A sync reply with a forged block: claim to be ahead, wait for the request, answer with a block whose
        //    transactions were swapped.
        let liar = try await RawPeer.connect(to: "127.0.0.1:\(ports[1])", identity: identities[0],
                                             group: MultiThreadedEventLoopGroup.singleton)
        let height = await victim.engine.height
        var ahead = hello
        ahead.height = height + 5
        try await liar.send(.hello(ahead))
        let request = await liar.receive(timeout: .seconds(10)) { if case .syncRequest = $0 { true } else { false } }
        guard case .syncRequest(let from, _) = request else {
            Issue.record("no sync request from a node told it is behind")
            return
        }
        var forged = genuine
        forged.block.header = BlockHeader(chainID: genuine.block.header.chainID, height: from, timeMs: genuine.block.header.timeMs,
                                          previousHash: genuine.block.header.previousHash,
                                          transactionsRoot: genuine.block.header.transactionsRoot,
                                          stateRoot: genuine.block.header.stateRoot,
                                          validatorSetHash: genuine.block.header.validatorSetHash,
                                          proposer: genuine.block.header.proposer,
                                          transactionCount: genuine.block.header.transactionCount)
        try await liar.send(.syncResponse(fromHeight: from, blocks: [forged]))
        #expect(await liar.waitForClose(timeout: .seconds(10)), "a forged sync reply must disconnect the peer")
        #expect(await victim.engine.height >= height)

        // The nodes keep committing, on one chain.
        _ = try await nodes[1].engine.admit(try transactions(5..<10))
        try await expectAgreement(nodes.map(\.engine), atLeast: height + 1)
        for node in nodes {
            await node.network.shutdown()
            await node.engine.shutdown()
        }
    }
}
