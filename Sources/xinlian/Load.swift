import ArgumentParser
import Foundation
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianNode

struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit signed sample transactions of every kind and print throughput and commit-latency percentiles.",
        discussion: Help.paragraphs(
            "The transactions come from the credit model's sample generator (as `xinlian sample` prints them) and are "
                + "spread over the given nodes by enterprise. Sample reporters are mapped by role onto the institutions "
                + "whose keys are given.",
            Help.example("""
                xinlian load --node http://127.0.0.1:8600 \\
                  --institutions .cluster/institutions \\
                  --genesis .cluster/genesis.json --count 1000
                """)))

    @Option(name: .customLong("node"), help: "Node API URL (repeat for several nodes).") var nodes: [String] = []
    @Option(help: "Directory of institution key files (*.key).") var institutions: String
    @Option(help: "The consortium's genesis file (for the institutions' roles).") var genesis: String
    @Option(help: "Number of transactions.") var count: Int = 1000
    @Option(help: "Transactions per request.") var batch: Int = 100
    @Option(help: "Seconds to wait for commitment.") var timeout: Int = 120
    @Option(help: "Seed for the sample enterprises.") var seed: UInt64 = 1

    func run() async throws {
        try await reportingErrors {
            guard !nodes.isEmpty, count > 0, (1...5_000).contains(batch) else {
                throw CLIError("give at least one --node, a positive --count and --batch 1...5000")
            }
            let consortium = try Consortium(try Genesis.load(path: genesis))
            let keys = try loadKeys()
            let status = try await NodeClient(nodes[0]).get("/v1/status", as: NodeStatus.self)
            guard status.chainId == consortium.chainID.value else {
                throw CLIError("the node runs chain \(status.chainId), the genesis file is for \(consortium.chainID)")
            }
            let transactions = try sample(consortium: consortium, keys: keys)
            // Blocks are read (to time each commit) with a key that may read whole blocks.
            let readers = keys.keys.sorted().filter { id in
                let roles = consortium.institutionRoles[id] ?? []
                return roles.contains(.auditor) || roles.contains(.regulator)
                    || consortium.genesis.validators.contains { $0.institution == id }
            }
            guard let reader = readers.first, let readerKey = keys[reader] else {
                throw CLIError("no key in \(institutions) may read whole blocks (an auditor, a regulator or a validator's operator)")
            }
            let report = try await LoadRun(nodes: nodes.map(NodeClient.init),
                                           reader: RequestSigner(chainID: consortium.chainID, institution: reader, key: readerKey),
                                           batch: batch, timeout: timeout)
                .run(transactions, suite: consortium.suite, startHeight: status.height)
            print(report)
        }
    }

    private func loadKeys() throws -> [InstitutionID: SigningKey] {
        var keys: [InstitutionID: SigningKey] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: institutions).sorted() where name.hasSuffix(".key") {
            let file = try KeyFile.load(path: institutions + "/" + name)
            keys[file.owner] = try file.signingKey()
        }
        guard !keys.isEmpty else { throw CLIError("no *.key files in \(institutions)") }
        return keys
    }

    /// Each sample institution is mapped to one of ours holding its role, consistently, so that corrections and
    /// releases still come from the institution that made the original statement.
    private func sample(consortium: Consortium, keys: [InstitutionID: SigningKey]) throws -> [Transaction] {
        var mapping: [InstitutionID: InstitutionID] = [:]
        var used: [InstitutionRole: Int] = [:]
        for (id, roles) in SampleGenerator.institutions {
            guard let role = roles.first else { continue }
            let candidates = keys.keys.filter { consortium.institutionRoles[$0]?.contains(role) == true }.sorted()
            guard !candidates.isEmpty else { throw CLIError("no key in \(institutions) for an institution with role \(role)") }
            mapping[id] = candidates[used[role, default: 0] % candidates.count]
            used[role, default: 0] += 1
        }
        let generator = SampleGenerator(seed: seed)
        var enterprises = max(1, count / 8)
        var bodies: [UnsignedStatement] = []
        while bodies.count < count {
            bodies = try generator.bodies(enterprises: enterprises, chainID: consortium.chainID, suite: consortium.suite,
                                          reporter: { mapping[$0] ?? $0 }, nonceBase: seed << 32)
                .filter { $0.body.kind != .queryRecord }  // the node writes those itself when it serves a report
            enterprises *= 2
        }
        return try bodies.prefix(count).map { statement in
            guard let key = keys[statement.body.reporter] else { throw CLIError("no key for \(statement.body.reporter)") }
            return try statement.sign(with: key)
        }
    }
}

/// Submits in batches spread over the nodes by enterprise, then follows the chain on the first node to see each
/// transaction commit.
struct LoadRun {
    let nodes: [NodeClient]
    /// Signs the block reads.
    let reader: RequestSigner
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

    /// The node for an enterprise's statements: FNV-1a of its USCC, modulo the node count.
    static func route(_ subject: USCC?, nodes: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in (subject?.code ?? "").utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return Int(hash % UInt64(max(nodes, 1)))
    }

    func run(_ transactions: [Transaction], suite: CryptoSuite, startHeight: UInt64) async throws -> Report {
        let clock = ContinuousClock()
        let started = clock.now
        var submittedAt: [String: ContinuousClock.Instant] = [:]
        // Each enterprise's statements all go to one node, in order, so a statement always reaches a node after
        // the statements it refers to (corrections, updates, releases name earlier statements about the same
        // enterprise), however fast gossip is. Nodes are fed concurrently.
        var perNode = [[Transaction]](repeating: [], count: nodes.count)
        for transaction in transactions {
            perNode[Self.route(transaction.body.subject, nodes: nodes.count)].append(transaction)
        }
        let stamps = try await withThrowingTaskGroup(of: [(String, ContinuousClock.Instant)].self) { group in
            for (index, assigned) in perNode.enumerated() where !assigned.isEmpty {
                let client = nodes[index]
                let size = batch
                group.addTask {
                    var stamps: [(String, ContinuousClock.Instant)] = []
                    for start in stride(from: 0, to: assigned.count, by: size) {
                        let chunk = assigned[start..<min(start + size, assigned.count)]
                        let sent = clock.now
                        let request = SubmitRequest(Array(chunk))
                        let response = try await client.post("/v1/transactions", json: request, as: SubmitResponse.self)
                        stamps += response.results.map { ($0.id, sent) }
                    }
                    return stamps
                }
            }
            var all: [(String, ContinuousClock.Instant)] = []
            for try await stamps in group { all += stamps }
            return all
        }
        for (id, sent) in stamps { submittedAt[id] = sent }
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
                let block = try await nodes[0].get("/v1/blocks/\(next)", as: BlockResponse.self, signedBy: reader)
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
