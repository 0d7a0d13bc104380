import Foundation
import Testing
import XinlianConsensus
import XinlianCore
import XinlianCrypto
import XinlianNetwork
import XinlianNode
import XinlianStorage

/// Four real engines (storage, signer, journal, consensus core) over an in-process network.
@Suite("BFT consensus between engines", .serialized)
struct ConsensusNodeTests {
    @Test func fourValidatorsAgreeOnOneChain() async throws {
        let cluster = try LocalConsortium(validators: 4)
        defer { cluster.remove() }
        let hub = LocalHub()
        defer { hub.stop() }
        var engines: [NodeEngine] = []
        for index in 0..<4 { engines.append(try await cluster.start(index, hub: hub)) }
        let transactions = try cluster.transactions(0..<40)
        _ = try await engines[1].admit(Array(transactions[..<20]))
        _ = try await engines[2].admit(Array(transactions[20...]))
        // Every transaction ends up committed on every node.
        try await expectCommitted(transactions, on: engines, seconds: 20)
        let height = await engines[0].height
        try await expectAgreement(engines, atLeast: height)
        for engine in engines {
            let status = await engine.status()
            #expect(status.consensus?.peers.count == 3)
            #expect(status.consensus?.equivocations == 0)
        }
        for engine in engines { await engine.shutdown() }
    }

    /// A third of all proposals and votes lost on the way, at random (seeded): timeouts, round changes and the
    /// node's re-gossip of what it holds still get every transaction committed, on one chain.
    @Test func progressDespiteLostConsensusMessages() async throws {
        let cluster = try LocalConsortium(validators: 4)
        defer { cluster.remove() }
        let hub = LocalHub()
        defer { hub.stop() }
        var engines: [NodeEngine] = []
        for index in 0..<4 { engines.append(try await cluster.start(index, hub: hub)) }
        hub.lose(percent: 33, seed: 7)
        let transactions = try cluster.transactions(0..<30)
        for (index, chunk) in stride(from: 0, to: 30, by: 10).enumerated() {
            _ = try await engines[index].admit(Array(transactions[chunk..<(chunk + 10)]))
        }
        do { try await expectCommitted(transactions, on: engines, seconds: 60) } catch {
            for engine in engines {
                let status = await engine.status()
                print("stalled: \(engine.validatorID) h=\(status.height) mempool=\(status.mempoolSize) c=\(String(describing: status.consensus))")
            }
            throw error
        }
        #expect(hub.lostCount > 0)
        let height = await engines[0].height
        try await expectAgreement(engines, atLeast: height)
        for engine in engines { await engine.shutdown() }
    }

    @Test func threeOfFourKeepCommittingAndTheFourthCatchesUp() async throws {
        let cluster = try LocalConsortium(validators: 4)
        defer { cluster.remove() }
        let hub = LocalHub()
        defer { hub.stop() }
        var engines: [NodeEngine] = []
        for index in 0..<4 { engines.append(try await cluster.start(index, hub: hub)) }
        _ = try await engines[0].admit(try cluster.transactions(0..<5))
        try await expectAgreement(engines, atLeast: 1)
        // Node 3 goes away (its process dies); the other three hold 30 of 40 voting power: enough.
        await engines[3].shutdown()
        hub.detach(cluster.id(3))
        let before = await engines[0].height
        _ = try await engines[1].admit(try cluster.transactions(5..<30))
        try await expectAgreement(Array(engines[..<3]), atLeast: before + 1)
        let reached = await engines[0].height
        // It comes back on the same data directory and syncs the blocks it missed.
        let restarted = try await cluster.start(3, hub: hub)
        try await expectAgreement([engines[0], restarted], atLeast: reached)
        for engine in engines[..<3] { await engine.shutdown() }
        await restarted.shutdown()
    }

    @Test func twoOfFourDownStopsCommitsWithoutForking() async throws {
        let cluster = try LocalConsortium(validators: 4)
        defer { cluster.remove() }
        let hub = LocalHub()
        defer { hub.stop() }
        var engines: [NodeEngine] = []
        for index in 0..<4 { engines.append(try await cluster.start(index, hub: hub)) }
        _ = try await engines[0].admit(try cluster.transactions(0..<3))
        try await expectAgreement(engines, atLeast: 1)
        let stuckAt = await engines[0].height
        // Cut the cluster in halves: neither half holds more than two thirds.
        for a in 0..<2 { for b in 2..<4 { hub.cut(cluster.id(a), cluster.id(b)) } }
        _ = try await engines[0].admit(try cluster.transactions(3..<6))
        _ = try await engines[2].admit(try cluster.transactions(3..<6))
        // Each half prevotes nil once its propose timeout passes, and then waits: Tendermint moves past the
        // prevote step only on prevotes from more than two thirds, which neither half can gather.
        for engine in engines {
            try await within(20, "\(engine.validatorID) to prevote at height \(stuckAt + 1)") {
                while await engine.status().consensus.map({ $0.height == stuckAt + 1 && $0.step != "propose" }) != true {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
        }
        for engine in engines { #expect(await engine.height == stuckAt) }
        // Healing the links lets the same transactions commit, on one chain.
        for a in 0..<2 { for b in 2..<4 { hub.heal(cluster.id(a), cluster.id(b)) } }
        try await expectAgreement(engines, atLeast: stuckAt + 1, seconds: 30)
        for engine in engines { await engine.shutdown() }
    }
}
