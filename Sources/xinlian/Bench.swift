import ArgumentParser
import Foundation
import Logging
import XinlianAudit
import XinlianConsensus
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianNode

/// Measures the node's and the auditor's throughput as ratios of this machine's raw signature-verification rate.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput against this machine's raw signature-verification rate (use a release build).",
        discussion: Help.paragraphs(
            "Prints the raw verification rate, then the commit path (admission, block, fsync, index) and the offline "
                + "audit as multiples of it, on a temporary single-validator ledger of sample transactions.",
            Help.example(".build/release/xinlian bench --transactions 20000 --suite ed25519-sha256")))

    @Option(help: "Transactions in the measured ledger.") var transactions: Int = 20_000
    @Option(help: "Crypto suite.") var suite: CryptoSuiteID = .ed25519SHA256
    @Option(help: "Output: text, or names (`name: value` lines, suffixed _sm2 under SM2, for scripts/bench).")
    var format: LoadFormat = .text

    func run() async throws {
        try await reportingErrors {
            guard transactions > 0 else { throw CLIError("--transactions must be positive") }
            let cores = ProcessInfo.processInfo.activeProcessorCount
            let raw = try Self.rawVerificationsPerSecond(CryptoSuite(suite))
            let suffix = suite == .sm2SM3 ? "_sm2" : ""
            func figure(_ name: String, _ value: Double, _ text: String) {
                print(format == .names ? String(format: "%@%@: %@", name, suffix, value < 10 ? String(format: "%.2f", value)
                                                    : String(format: "%.0f", value)) : text)
            }
            figure("verify_raw_per_s_per_core", raw,
                   String(format: "raw %@ verifications: %.0f /s per core, %d cores", suite.rawValue, raw, cores))
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-bench-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (consortium, commitRate) = try await commitThroughput(suite: suite, directory: directory)
            figure("commit_path_per_s", commitRate,
                   String(format: "commit path (admit, block, fsync, index): %.0f tx/s = %.2f × raw single-core verification",
                          commitRate, commitRate / raw))
            if format == .names { figure("commit_path_ratio", commitRate / raw, "") }
            let start = ContinuousClock.now
            let report = try AuditVerifier.verify(dataDirectory: directory + "/data", consortium: consortium, options: AuditOptions())
            let auditRate = Double(report.transactions) / seconds(ContinuousClock.now - start)
            figure("audit_per_s", auditRate, String(format: "offline audit: %.0f tx/s = %.2f × raw verification on all %d cores",
                                                    auditRate, auditRate / (raw * Double(cores)), cores))
            if format == .names { figure("audit_ratio", auditRate / (raw * Double(cores)), "") }
        }
    }

    /// Verifications of one signature per second on one core, through the library the node uses: the best of five
    /// timed runs, the machine's limit rather than its average under whatever else is running.
    static func rawVerificationsPerSecond(_ suite: CryptoSuite) throws -> Double {
        let key = suite.generateSigningKey()
        let message = [UInt8](repeating: 7, count: 200)
        let signature = try key.sign(message)
        let count = suite.id == .sm2SM3 ? 1_000 : 4_000
        var best = 0.0
        for _ in 0..<5 {
            let start = ContinuousClock.now
            var valid = 0
            for _ in 0..<count where key.publicKey.isValidSignature(signature, for: message) { valid += 1 }
            guard valid == count else { throw CLIError("verification failed during the benchmark") }
            best = max(best, Double(count) / BenchReport.seconds(ContinuousClock.now - start))
        }
        return best
    }

    /// A consortium whose institutions are the sample generator's own, so its transactions pass every credit rule.
    private func commitThroughput(suite: CryptoSuiteID, directory: String) async throws -> (Consortium, Double) {
        let cryptoSuite = CryptoSuite(suite)
        let validator = cryptoSuite.generateSigningKey()
        var keys: [InstitutionID: SigningKey] = [:]
        var institutions: [InstitutionRecord] = []
        for (id, roles) in SampleGenerator.institutions {
            let key = cryptoSuite.generateSigningKey()
            keys[id] = key
            institutions.append(InstitutionRecord(id: id, name: id.value, roles: roles, publicKey: key.publicKey.bytes.hexString))
        }
        let consortium = try Consortium(Genesis(
            chainId: "bench", cryptoSuite: suite, genesisTimeMs: 0, parameters: .defaults, institutions: institutions,
            validators: [ValidatorRecord(id: "v", institution: institutions[0].id, publicKey: validator.publicKey.bytes.hexString,
                                         power: 1, p2pAddress: "127.0.0.1:1", apiAddress: "127.0.0.1:2")]))
        var bodies: [UnsignedStatement] = []
        var enterprises = max(1, transactions / 8)
        while bodies.count < transactions {
            bodies = try SampleGenerator(seed: 7).bodies(enterprises: enterprises, chainID: "bench", suite: cryptoSuite)
                .filter { $0.body.kind != .queryRecord }  // written by nodes, not submitted
            enterprises *= 2
        }
        let signed = try bodies.prefix(transactions).map { statement in
            guard let key = keys[statement.body.reporter] else { throw CLIError("no key for \(statement.body.reporter)") }
            return try statement.sign(with: key)
        }
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let engine = try NodeEngine(consortium: consortium, validatorID: "v", validatorKey: validator,
                                    dataDirectory: directory + "/data", metrics: NodeMetrics(), logger: logger)
        // A consortium of one: its replica decides each height as soon as the block interval allows.
        try await engine.startConsensus(link: NoPeers(), timeouts: .standard)
        let start = ContinuousClock.now
        for chunk in stride(from: 0, to: signed.count, by: Self.blockTransactions) {
            let block = signed[chunk..<min(chunk + Self.blockTransactions, signed.count)]
            for transaction in block { try engine.check(transaction) }
            for slice in stride(from: block.startIndex, to: block.endIndex, by: Self.admissionBatch) {
                let batch = Array(block[slice..<min(slice + Self.admissionBatch, block.endIndex)])
                let admitted = try await engine.admit(batch)
                if let refused = admitted.first(where: { if case .rejected = $0.state { true } else { false } }) {
                    throw CLIError("sample transaction refused: \(refused.state)")
                }
            }
            // The height before the check: a block committed in between ends the wait at once.
            while true {
                let height = await engine.height
                guard await engine.status().mempoolSize > 0 else { break }
                await engine.waitUntilHeight(height + 1)
            }
        }
        let rate = Double(signed.count) / seconds(ContinuousClock.now - start)
        await engine.shutdown()
        return (consortium, rate)
    }

    /// Transactions admitted before each block is made (the block holds them all).
    static let blockTransactions = 1_000

    /// Transactions per `admit` call. The engine looks up at most `NodeEngine.committedReferencesLimit` committed
    /// references per call (each may read a block) and refuses a reference beyond them as unknown, as the API does for
    /// a submission; a sample statement names at most a few earlier ones, so batches this small never reach the limit.
    static let admissionBatch = NodeEngine.committedReferencesLimit / 8

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
