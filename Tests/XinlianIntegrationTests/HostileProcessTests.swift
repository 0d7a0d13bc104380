import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOPosix
import Testing
import XinlianConsensus
import XinlianCore
import XinlianCrypto
import XinlianNetwork

/// Issue 8, with real processes: three `xinlian start` nodes, and the fourth validator's peer connections driven by
/// a hostile client that holds node0's real validator key and TLS identity. It gossips a transaction dated past
/// `Int64.max` (which, before the fix, was committed and trapped every node's index, then again on every
/// restart) and floods validly signed votes; the three keep committing, none crashes, and after a restart every
/// audit gives the same line.
@Suite("A hostile validator against real node processes", .serialized)
struct HostileProcessTests {
    @Test func threeHonestProcessesOutliveAPoisonedTransactionAndAVoteFlood() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-hostile-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let api = try freePortRun(4), p2p = try freePortRun(4), admin = try freePortRun(4)
        let testnet = try CLI.run(["testnet", "--validators", "4", "--output", root, "--api-port", String(api), "--plain-http",
                                   "--p2p-port", String(p2p), "--admin-port", String(admin)])
        try #require(testnet.status == 0, "\(testnet.stderr)")
        var cluster = ConsortiumProcessTests.Cluster(root: root, apiBase: api, processes: [nil])
        for i in 1..<4 { cluster.processes.append(try CLI.start(home: cluster.home(i))) }
        defer { for case let process? in cluster.processes where process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        for i in 1..<4 { #expect(try eventually(60) { try cluster.tip(i) != nil }, "node\(i) API") }

        // The hostile member: node0's own keys, read from its home as its operator could.
        let consortium = try Consortium(try Genesis.load(path: root + "/genesis.json"))
        let validatorKey = try KeyFile.load(path: cluster.home(0) + "/validator.key").signingKey()
        let identity = try TLSIdentity.load(keyPEMPath: cluster.home(0) + "/tls.key",
                                            certificatePEMPath: cluster.home(0) + "/tls.crt")
        let bank = try KeyFile.load(path: root + "/institutions/bank-a.key")
        let poisoned = try Transaction.sign(TransactionBody(
            chainID: consortium.chainID, kind: .facilityOpened, reporter: bank.owner,
            subject: try USCC.withCheckCharacter("91310000000000001"), timeMs: UInt64(Int64.max) + 1, nonce: 7,
            payload: try Payload.canonicalize(.object([
                "facilityId": .string("POISON"), "type": .string("loan"),
                "amount": .object(["minor": .integer(100_000), "currency": .string("CNY")]),
                "openedOn": .string("2025-01-10"), "maturesOn": .string("2027-01-10"),
                "security": .string("unsecured"), "classification": .string("normal"),
            ]))), with: try bank.signingKey())
        let hello = PeerHello(chainID: consortium.chainID, genesisHash: consortium.genesisHash, validator: "node0",
                              height: 0, lastBlockHash: consortium.genesisHash)
        let group = MultiThreadedEventLoopGroup.singleton
        var sentVotes = 0, delivered = 0
        for validator in consortium.genesis.validators.dropFirst() {
            // A loaded machine may let a handshake time out: the hostile client simply tries again, as a real one would.
            var connected: RawPeer?
            for _ in 0..<5 where connected == nil {
                guard let peer = try? await RawPeer.connect(to: validator.p2pAddress, identity: identity, group: group),
                      (try? await peer.send(.hello(hello))) != nil,
                      (try? await peer.send(.transactions([poisoned]))) != nil
                else { continue }
                connected = peer
            }
            guard let peer = connected else { continue }
            delivered += 1
            for n in 0..<300 {
                var hash = [UInt8](repeating: 0xAB, count: 32)
                hash[0] = UInt8(truncatingIfNeeded: n)
                hash[1] = UInt8(truncatingIfNeeded: n >> 8)
                let vote = Vote(chainID: consortium.chainID, kind: .prevote, height: 1, round: 0,
                                blockHash: Hash32(bytes: hash), validator: "node0")
                // The node may rightly cut a flooder off; the test is that it neither crashes nor stalls.
                guard (try? await peer.send(.consensus(.vote(SignedVote(vote: vote, signature: try validatorKey.sign(vote.signingBytes)))))) != nil
                else { break }
                sentVotes += 1
            }
        }
        #expect(delivered >= 1 && sentVotes > 0, "the hostile client reached no node")

        // The three keep committing on one chain, and none of them crashed.
        let load = try cluster.load(200, nodes: [1, 2, 3], seed: 21)
        #expect(load.status == 0, "\(load.stderr)")
        #expect(try eventually(30) { try cluster.agree([1, 2, 3], atLeast: 1) })
        for i in 1..<4 { #expect(cluster.processes[i]?.isRunning == true, "node\(i) died") }
        // The poisoned statement is in no node's chain (each was asked; none has it).
        let poisonedID = poisoned.id(consortium.suite).hex
        for i in 1..<4 {
            let lookup = try CLI.run(["audit", "prove", poisonedID, "--node", cluster.url(i),
                                      "--key", root + "/institutions/auditor.key", "--output", root + "/proof\(i).json"])
            // Refused when gossiped (remembered as rejected) or never seen: either way not committed.
            let refused = lookup.stderr.contains("is rejected") || lookup.stderr.contains("not_found")
            #expect(lookup.status != 0 && refused && cluster.processes[i]?.isRunning == true,
                    "node\(i) committed the poisoned transaction: \(lookup.stdout) \(lookup.stderr)")
        }

        // A restart replays whatever it holds and goes on; more load commits.
        if let process = cluster.processes[2] {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
        }
        cluster.processes[2] = try CLI.start(home: cluster.home(2))
        #expect(try eventually(60) { try cluster.tip(2) != nil }, "node2 back")
        let more = try cluster.load(50, nodes: [1, 2, 3], seed: 22)
        #expect(more.status == 0, "\(more.stderr)")
        try cluster.stopAndExpectOneAudit([1, 2, 3])
    }
}
