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
            "Without --rate every node gets its share as fast as it answers (a burst: throughput); with --rate the "
                + "transactions are offered at that many per second in all, whatever the nodes do (latency at a load). "
                + "--format names prints one `name: value` line per figure, for scripts. A batch a node refuses with "
                + "mempool_full (its back-pressure) is sent again until --timeout; a dropped connection is retried a "
                + "few times.",
            Help.example("""
                xinlian load --node https://127.0.0.1:8600 \\
                  --institutions .cluster/institutions \\
                  --genesis .cluster/genesis.json --count 1000
                xinlian load --node https://127.0.0.1:8600 --node https://127.0.0.1:8601 \\
                  --institutions .cluster/institutions \\
                  --genesis .cluster/genesis.json --count 20000 --rate 1000 --format names
                """, title: "Examples")))

    @Option(name: .customLong("node"), help: "Node API URL (repeat for several nodes).") var nodes: [String] = []
    @Option(help: "Directory of institution key files (*.key).") var institutions: String
    @Option(help: "The consortium's genesis file (for the institutions' roles).") var genesis: String
    @Option(help: "Number of transactions.") var count: Int = 1000
    @Option(help: "Transactions per request (default 100, or 10 with --rate).") var batch: Int?
    @Option(help: ArgumentHelp("Offer this many transactions per second in all (default: as fast as the nodes take them).",
                               valueName: "tx/s"))
    var rate: Double?
    @Option(help: "Output: text (one line) or names (`name: value` lines).") var format: LoadFormat = .text
    @Option(help: "Seconds to wait for commitment.") var timeout: Int = 120
    @Option(help: "Seed for the sample enterprises.") var seed: UInt64 = 1

    func run() async throws {
        try await reportingErrors {
            let batch = self.batch ?? (rate == nil ? 100 : 10)
            guard !nodes.isEmpty, count > 0, (1...5_000).contains(batch) else {
                throw CLIError("give at least one --node, a positive --count and --batch 1...5000")
            }
            if let rate, !(rate.isFinite && rate > 0) { throw CLIError("--rate must be a positive number of transactions per second") }
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
                                           batch: batch, timeout: timeout, rate: rate)
                .run(transactions, suite: consortium.suite, startHeight: status.height)
            print(format == .names ? report.names : report.description)
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

enum LoadFormat: String, ExpressibleByArgument, CaseIterable {
    case text, names
}

/// Submits in batches spread over the nodes by enterprise, then follows the chain on the first node to see each
/// transaction commit.
struct LoadRun {
    let nodes: [NodeClient]
    /// Signs the block reads.
    let reader: RequestSigner
    let batch: Int
    let timeout: Int
    /// Transactions offered per second in all; nil sends each node's share as fast as it answers.
    var rate: Double?

    struct Report: CustomStringConvertible {
        var count: Int
        var seconds: Double
        var latenciesMs: [Double]
        /// What was offered: transactions per second from the first submission to the last (nil for a burst).
        var offeredPerSecond: Double?

        func percentile(_ p: Double) -> Double? {
            let sorted = latenciesMs.sorted()
            guard !sorted.isEmpty else { return nil }
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }

        var description: String {
            func text(_ p: Double) -> String { percentile(p).map { String(format: "%.0f", $0) } ?? "-" }
            let offered = offeredPerSecond.map { String(format: " (offered %.0f tx/s)", $0) } ?? ""
            return String(format: "committed %d transactions in %.2f s: %.0f tx/s%@; commit latency ms p50 %@ p90 %@ p99 %@ max %@",
                          count, seconds, Double(count) / max(seconds, 0.001), offered, text(0.5), text(0.9),
                          text(0.99), text(1.0))
        }

        /// `name: value` lines (plain numbers) for scripts such as `scripts/bench`.
        var names: String {
            var lines = ["committed: \(count)", String(format: "seconds: %.3f", seconds),
                         String(format: "committed_per_s: %.0f", Double(count) / max(seconds, 0.001))]
            if let offeredPerSecond { lines.append(String(format: "offered_per_s: %.0f", offeredPerSecond)) }
            for (name, p) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
                if let value = percentile(p) { lines.append(String(format: "latency_%@_ms: %.1f", name, value)) }
            }
            return lines.joined(separator: "\n")
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
        // Each enterprise's statements all go to one node, in order, so a statement always reaches a node after
        // the statements it refers to (corrections, updates, releases name earlier statements about the same
        // enterprise), however fast gossip is. Nodes are fed concurrently.
        var perNode = [[Transaction]](repeating: [], count: nodes.count)
        for transaction in transactions {
            perNode[Self.route(transaction.body.subject, nodes: nodes.count)].append(transaction)
        }
        let ids = Set(transactions.map { $0.id(suite).hex })
        // The chain is followed while the load is submitted, so each commit is seen when it happens, not after the
        // last submission.
        let watcher = Task { try await watch(ids, from: startHeight, clock: clock) }
        let stamps: [(String, ContinuousClock.Instant)]
        do {
            stamps = try await submit(perNode, total: transactions.count, started: started, clock: clock)
        } catch {
            watcher.cancel()
            throw error
        }
        let seen = try await watcher.value
        var latencies: [Double] = []
        for (id, sent) in stamps {
            if let at = seen[id] { latencies.append(seconds(at - sent) * 1_000) }
        }
        let lastSent = stamps.map(\.1).max() ?? started
        let offered = rate == nil ? nil : Double(stamps.count) / max(seconds(lastSent - started), 0.001)
        let finished = seen.values.max() ?? clock.now
        return Report(count: transactions.count, seconds: seconds(finished - started), latenciesMs: latencies,
                      offeredPerSecond: offered)
    }

    /// Sends each node its transactions in batches (at the offered rate, or as fast as it answers); returns when
    /// each batch was sent, by transaction id.
    private func submit(_ perNode: [[Transaction]], total: Int, started: ContinuousClock.Instant,
                        clock: ContinuousClock) async throws -> [(String, ContinuousClock.Instant)] {
        try await withThrowingTaskGroup(of: [(String, ContinuousClock.Instant)].self) { group in
            for (index, assigned) in perNode.enumerated() where !assigned.isEmpty {
                let client = nodes[index]
                let size = batch
                // Each node is offered its share of the rate: its batches leave at fixed times, however long the
                // node takes to answer the previous one (a late answer only delays what is sent on this node).
                let interval = rate.map { Duration.seconds(Double(size) / ($0 * Double(assigned.count) / Double(total))) }
                group.addTask {
                    var stamps: [(String, ContinuousClock.Instant)] = []
                    var due = started
                    for start in stride(from: 0, to: assigned.count, by: size) {
                        let chunk = assigned[start..<min(start + size, assigned.count)]
                        if let interval {
                            if due > clock.now { try await Task.sleep(until: due, clock: clock) }
                            due = due + interval
                        }
                        let sent = clock.now
                        let request = SubmitRequest(Array(chunk))
                        // Submitting the same signed transactions again is harmless (they are reported as pending).
                        let response = try await retrying(mempoolFullUntil: started + .seconds(timeout)) {
                            try await client.post("/v1/transactions", json: request, as: SubmitResponse.self)
                        }
                        stamps += response.results.map { ($0.id, sent) }
                    }
                    return stamps
                }
            }
            var all: [(String, ContinuousClock.Instant)] = []
            for try await stamps in group { all += stamps }
            return all
        }
    }

    /// Follows the chain on the first node from `height` until every id in `ids` is committed; returns when each
    /// was first seen. Polled: a commit is seen up to the poll interval late (finer when latency at a load is the
    /// point).
    private func watch(_ ids: Set<String>, from height: UInt64,
                       clock: ContinuousClock) async throws -> [String: ContinuousClock.Instant] {
        var seen: [String: ContinuousClock.Instant] = [:]
        var height = height
        let deadline = clock.now + .seconds(timeout)
        while seen.count < ids.count {
            try Task.checkCancellation()
            guard clock.now < deadline else { throw CLIError("timed out: \(ids.count - seen.count) transactions not committed") }
            let status = try await retrying { try await nodes[0].get("/v1/status", as: NodeStatus.self) }
            if status.height <= height {
                try await Task.sleep(for: .milliseconds(rate == nil ? 20 : 5))
                continue
            }
            for next in (height + 1)...status.height {
                // Signed afresh on each try (a signed read is refused if replayed).
                let block = try await retrying {
                    try await nodes[0].get("/v1/blocks/\(next)", as: BlockResponse.self, signedBy: reader)
                }
                let at = clock.now
                for transaction in block.transactions where ids.contains(transaction.id) && seen[transaction.id] == nil {
                    seen[transaction.id] = at
                }
            }
            height = status.height
        }
        return seen
    }

    /// `body`, tried again after a transport failure (``CLIError/transient``), up to ``attempts`` times in all with
    /// a growing pause: on a loaded machine a node may drop one of the loader's many short connections, and a
    /// load of minutes should not end on it. With a deadline, a `mempool_full` refusal (the node's back-pressure:
    /// the institution's share of the mempool is waiting) is retried too until then (the load's start plus its
    /// timeout), as a client should; any other answer from the node is never retried.
    private func retrying<T>(mempoolFullUntil deadline: ContinuousClock.Instant? = nil,
                             _ body: () async throws -> T) async throws -> T {
        var attempt = 1
        var waits = 0
        while true {
            do {
                return try await body()
            } catch let error as CLIError where error.transient && attempt < Self.attempts {
                try await Task.sleep(for: .milliseconds(50 * attempt * attempt))
                attempt += 1
            } catch let error as CLIError where error.code == "mempool_full" && deadline.map({ ContinuousClock.now < $0 }) == true {
                waits += 1
                try await Task.sleep(for: .milliseconds(min(20 * waits, 500)))
            }
        }
    }

    static let attempts = 4

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
