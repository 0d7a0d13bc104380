import ArgumentParser
import Foundation
import XinlianCore
import XinlianCrypto
import XinlianNode

struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit signed sample transactions spread over nodes; print throughput and commit-latency percentiles.",
        discussion: "Example: xinlian load --node http://127.0.0.1:8600 --key .cluster/institutions/bank-a.key --count 1000")

    @Option(name: .customLong("node"), help: "Node API URL (repeat for several nodes).") var nodes: [String] = []
    @Option(name: .customLong("key"), help: "Institution key file (repeat; transactions rotate over them).") var keys: [String] = []
    @Option(help: "Number of transactions.") var count: Int = 1000
    @Option(help: "Transactions per request.") var batch: Int = 100
    @Option(help: "Seconds to wait for commitment.") var timeout: Int = 120
    @Option(help: "Seed for the sample subjects.") var seed: UInt64 = 1

    func run() async throws {
        try await reportingErrors {
            guard !nodes.isEmpty, !keys.isEmpty, count > 0, (1...5_000).contains(batch) else {
                throw CLIError("give at least one --node and --key, a positive --count and --batch 1...5000")
            }
            let signers = try keys.map { path -> (KeyFile, SigningKey) in
                let file = try KeyFile.load(path: path)
                return (file, try file.signingKey())
            }
            let status = try await NodeClient(nodes[0]).get("/v1/status", as: NodeStatus.self)
            let transactions = try sample(chainID: try Name(status.chainId), signers: signers)
            let report = try await LoadRun(nodes: nodes.map(NodeClient.init), batch: batch, timeout: timeout)
                .run(transactions, suite: CryptoSuite(signers[0].0.suite), startHeight: status.height)
            print(report)
        }
    }

    private func sample(chainID: ChainID, signers: [(KeyFile, SigningKey)]) throws -> [Transaction] {
        let kinds: [TransactionKind] = [.facilityOpened, .facilityUpdated, .collateralRegistered, .guaranteeIssued]
        let start = nowMs()
        return try (0..<count).map { index in
            let (file, key) = signers[index % signers.count]
            let number = (UInt64(index) &* 2_654_435_761 &+ seed) % 1_000_000_000
            let subject = try USCC.withCheckCharacter(String(format: "91310000%09llu", number % 100_000))
            let payload = JSONValue.object(["amount": .integer(Int64(number % 10_000_000)), "currency": .string("CNY"),
                                            "sample": .integer(Int64(index))])
            let body = TransactionBody(chainID: chainID, kind: kinds[index % kinds.count], reporter: file.owner, subject: subject,
                                       timeMs: start, nonce: seed &* 1_000_003 &+ UInt64(index),
                                       payload: try Payload.canonicalize(payload))
            return try Transaction.sign(body, with: key)
        }
    }
}

/// Submits in batches round-robin over the nodes, then follows the chain on the first node to see each transaction commit.
struct LoadRun {
    let nodes: [NodeClient]
    let batch: Int
    let timeout: Int

    struct Report: CustomStringConvertible {
        var count: Int
        var seconds: Double
        var latenciesMs: [Double]

        var description: String {
            let sorted = latenciesMs.sorted()
            func percentile(_ p: Double) -> String {
                guard !sorted.isEmpty else { return "-" }
                return String(format: "%.0f", sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))])
            }
            return String(format: "committed %d transactions in %.2f s: %.0f tx/s; commit latency ms p50 %@ p90 %@ p99 %@ max %@",
                          count, seconds, Double(count) / max(seconds, 0.001), percentile(0.5), percentile(0.9),
                          percentile(0.99), percentile(1.0))
        }
    }

    func run(_ transactions: [Transaction], suite: CryptoSuite, startHeight: UInt64) async throws -> Report {
        let clock = ContinuousClock()
        let started = clock.now
        var submittedAt: [String: ContinuousClock.Instant] = [:]
        let batches = stride(from: 0, to: transactions.count, by: batch).map { Array(transactions[$0..<min($0 + batch, transactions.count)]) }
        try await withThrowingTaskGroup(of: [(String, ContinuousClock.Instant)].self) { group in
            for (index, chunk) in batches.enumerated() {
                let client = nodes[index % nodes.count]
                group.addTask {
                    let sent = clock.now
                    let request = SubmitRequest(transactions: chunk.map { Data($0.canonicalBytes).base64EncodedString() })
                    let response = try await client.post("/v1/transactions", json: request, as: SubmitResponse.self)
                    return response.results.map { ($0.id, sent) }
                }
                if index >= 8 { if let done = try await group.next() { for (id, at) in done { submittedAt[id] = at } } }
            }
            for try await done in group { for (id, at) in done { submittedAt[id] = at } }
        }
        var latencies: [Double] = []
        var height = startHeight
        var remaining = Set(submittedAt.keys)
        let deadline = clock.now + .seconds(timeout)
        while !remaining.isEmpty {
            guard clock.now < deadline else { throw CLIError("timed out: \(remaining.count) transactions not committed") }
            let status = try await nodes[0].get("/v1/status", as: NodeStatus.self)
            if status.height == height {
                try await Task.sleep(for: .milliseconds(20))
                continue
            }
            for next in (height + 1)...status.height {
                let block = try await nodes[0].get("/v1/blocks/\(next)", as: BlockResponse.self)
                let seen = clock.now
                for transaction in block.transactions where remaining.remove(transaction.id) != nil {
                    if let sent = submittedAt[transaction.id] {
                        latencies.append(Double((seen - sent).components.attoseconds) / 1e15 + Double((seen - sent).components.seconds) * 1000)
                    }
                }
            }
            height = status.height
        }
        let elapsed = clock.now - started
        return Report(count: transactions.count,
                      seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                      latenciesMs: latencies)
    }
}
