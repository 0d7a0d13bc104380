import ArgumentParser
import Foundation
import Logging
import XinlianAudit
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianNode
import XinlianStorage

/// Issue 10, "seed scale": one generated ledger grown through several sizes; at each, what it costs on disk, what a
/// node that opens it holds in memory, how long a report takes on it, and how long the offline audit takes.
struct BenchScale: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-scale",
        abstract: "Grow one generated ledger through several sizes and measure each: disk, a node's memory, reports, audit.",
        discussion: Help.paragraphs(
            "The ledger is written through the real storage with real signatures and certificates (as `bench-report` "
                + "writes it), in full blocks. --registration-share of the background statements are registrations of "
                + "new enterprises with nothing else on the ledger, so that the enterprise count grows as the seed's does "
                + "(23 million enterprises over 31 million statements); the rest are sample stories of ten enterprises each.",
            "At each size the ledger is closed and a fresh process (`xinlian bench-probe`) opens it as a node does, "
                + "serves reports on the two measured enterprises and prints its resident memory; then another runs the "
                + "offline audit of the whole ledger and prints its peak memory. Sizes grow one ledger, so the largest "
                + "costs its own build only.",
            Help.example("""
                .build/release/xinlian bench-scale \\
                  --sizes 250000,500000,1000000,2000000 \\
                  --registration-share 0.5
                """)))

    @Option(help: "Ledger sizes to measure, in transactions, comma-separated (one ledger grown through them).")
    var sizes: String = "250000,500000,1000000,2000000"
    @Option(help: "Share of background statements that register a new single-statement enterprise (0...1).")
    var registrationShare: Double = 0.5
    @Option(help: "Transactions per block.") var blockTransactions: Int = 5_000
    @Option(help: "Timed reports per enterprise at each size, after a warm-up.") var samples: Int = 200
    @Option(help: "Where to write the temporary ledger (deleted afterwards).") var directory: String?
    @Option(help: "Output: text (a table), or names (also `name_at_SIZE: value` lines).") var format: LoadFormat = .text

    func validate() throws {
        guard !parsedSizes.isEmpty, parsedSizes.allSatisfy({ $0 >= 1_000 }) else {
            throw ValidationError("--sizes must be integers of at least 1000, comma-separated")
        }
        guard (0...1).contains(registrationShare) else { throw ValidationError("--registration-share must be within 0...1") }
        guard (1...5_000).contains(blockTransactions) else { throw ValidationError("--block-transactions must be 1...5000") }
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1") }
    }

    var parsedSizes: [Int] {
        sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.sorted()
    }

    func run() async throws {
        try await reportingErrors {
            let suite = CryptoSuite(BenchReport.suiteID)
            let base = (directory ?? FileManager.default.temporaryDirectory.path) + "/xinlian-bench-scale-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: base) }
            let world = try BenchWorld(suite: suite)
            try FileManager.default.createDirectory(atPath: base + "/ledger", withIntermediateDirectories: true)
            try world.consortium.genesis.jsonData().write(to: URL(fileURLWithPath: base + "/genesis.json"))
            try KeyFile(owner: Name(BenchWorld.validatorID.value), key: world.validator).write(path: base + "/validator.key")
            let targets = [try world.large(100), try world.small(10)]
            guard let first = parsedSizes.first else { return }
            // The measured enterprises' statements lie in the first size's ledger: every size reports the same ones.
            let plan = LedgerPlan(transactions: first, blockTransactions: blockTransactions, targets: targets)
            let builder = try LedgerBuilder(world: world, plan: plan, registrationShare: registrationShare,
                                            dataDirectory: base + "/ledger")
            defer { builder.close() }
            let cores = ProcessInfo.processInfo.activeProcessorCount
            Self.say(String(format: "%d cores; blocks of %d; registration share %.2f; %d reports per enterprise and size",
                         cores, blockTransactions, registrationShare, samples))
            Self.say("transactions  enterprises  build_s  data_MB  index_MB  bytes/tx  rss_MB  open_s  report_p50_ms  report_p99_ms"
                  + "  audit_s  audit_per_s  audit_MB")
            var buildSeconds = 0.0
            for size in parsedSizes {
                let started = ContinuousClock.now
                try await builder.grow(to: size)
                buildSeconds += BenchReport.seconds(ContinuousClock.now - started)
                var row = Row(transactions: builder.written, enterprises: builder.enterprises, buildSeconds: buildSeconds)
                try await builder.reopen {
                    let data = base + "/ledger/data"
                    row.dataBytes = BenchReport.bytes(under: data)
                    row.indexBytes = ["", "-wal", "-shm"].reduce(0) { $0 + Self.size(LedgerStore.indexPath(data) + $1) }
                    row.probe = try Self.probe(base: base, subjects: targets.map(\.subject), samples: samples)
                    let audit = try Self.probe(base: base, subjects: [], samples: 0, audit: true)
                    guard audit["audit_transactions"] == Double(builder.written) else {
                        throw CLIError("the audit verified \(audit["audit_transactions"] ?? 0) of \(builder.written) transactions")
                    }
                    row.auditSeconds = audit["audit_s"] ?? 0
                    row.probe["audit_rss_peak_mb"] = audit["audit_rss_peak_mb"]
                }
                Self.say(row.text)
                if format == .names { Self.say(row.names) }
            }
        }
    }

    struct Row {
        var transactions: Int
        var enterprises: Int
        var buildSeconds: Double
        var dataBytes = 0
        var indexBytes = 0
        var probe: [String: Double] = [:]
        var auditSeconds = 0.0

        var text: String {
            String(format: "%12d  %11d  %7.0f  %7.0f  %8.0f  %8.0f  %6.0f  %6.2f  %13.2f  %13.2f  %7.0f  %11.0f  %8.0f",
                   transactions, enterprises, buildSeconds, Double(dataBytes) / 1e6, Double(indexBytes) / 1e6,
                   Double(dataBytes) / Double(max(1, transactions)), probe["rss_mb"] ?? 0, probe["open_s"] ?? 0,
                   probe["report_p50_ms"] ?? 0, probe["report_p99_ms"] ?? 0, auditSeconds,
                   Double(transactions) / max(auditSeconds, 0.001), probe["audit_rss_peak_mb"] ?? 0)
        }

        var names: String {
            let suffix = "_at_\(transactions)"
            var lines = ["enterprises\(suffix): \(enterprises)",
                         String(format: "data_mb%@: %.0f", suffix, Double(dataBytes) / 1e6),
                         String(format: "index_mb%@: %.0f", suffix, Double(indexBytes) / 1e6),
                         String(format: "audit_s%@: %.1f", suffix, auditSeconds)]
            for (name, value) in probe.sorted(by: { $0.key < $1.key }) { lines.append(String(format: "%@%@: %.2f", name, suffix, value)) }
            return lines.joined(separator: "\n")
        }
    }

    /// Writes a line unbuffered: a long run shows each size as it is measured, into a file too.
    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    /// Runs `xinlian bench-probe` on the ledger in a fresh process and returns its `name: value` lines.
    static func probe(base: String, subjects: [USCC], samples: Int, audit: Bool = false) throws -> [String: Double] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["bench-probe", "--genesis", base + "/genesis.json", "--validator-key", base + "/validator.key",
                             "--data", base + "/ledger/data", "--samples", String(samples)]
            + subjects.flatMap { ["--subject", $0.code] } + (audit ? ["--audit"] : [])
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let bytes = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CLIError("bench-probe failed (exit \(process.terminationStatus))") }
        var values: [String: Double] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, let value = Double(parts[1]) { values[parts[0]] = value }
        }
        return values
    }
}

/// The node side of `bench-scale`: opens a ledger as a node does (`NodeEngine`), serves reports on the given
/// enterprises, and prints its resident memory and the reports' times. A separate process, so that what it holds
/// is what a node holds, not what built the ledger.
struct BenchProbe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-probe",
        abstract: "Open a ledger as a node does, time reports on it (or audit it) and print the process's memory (for bench-scale).",
        discussion: Help.paragraphs(
            "Run by `xinlian bench-scale` in a fresh process at each ledger size, so that the memory it prints is what a "
                + "node (or an auditor) holds, not what built the ledger. Prints `name: value` lines.",
            Help.example("""
                xinlian bench-probe --genesis genesis.json \\
                  --validator-key validator.key --data ledger/data \\
                  --subject 91330106MABENCH01X --samples 200
                """)),
        shouldDisplay: false)

    @Option(help: "The consortium's genesis file.") var genesis: String
    @Option(help: "The validator's key file (its id is the key file's owner).") var validatorKey: String
    @Option(help: "The node's data directory.") var data: String
    @Option(help: "An enterprise to report on (repeat).") var subject: [String] = []
    @Option(help: "Timed reports per enterprise, after a warm-up.") var samples: Int = 200
    @Flag(help: "Run the offline audit of the data directory instead (as `xinlian audit verify`).") var audit = false

    func run() async throws {
        try await reportingErrors {
            let consortium = try Consortium(try Genesis.load(path: genesis))
            if audit {
                let started = ContinuousClock.now
                let report = try AuditVerifier.verify(dataDirectory: data, consortium: consortium, options: AuditOptions())
                print(String(format: "audit_s: %.2f", BenchReport.seconds(ContinuousClock.now - started)))
                print("audit_transactions: \(report.transactions)")
                print(String(format: "audit_rss_peak_mb: %.1f", Double(Self.status("VmHWM") ?? 0) / 1024))
                return
            }
            let keyFile = try KeyFile.load(path: validatorKey)
            let personal = try PersonalDataKey.loadOrCreate(path: PersonalDataKey.defaultPath(forDataDirectory: data),
                                                            dataDirectory: data).key
            var logger = Logger(label: "bench-probe")
            logger.logLevel = .warning
            let opened = ContinuousClock.now
            let engine = try NodeEngine(consortium: consortium, validatorID: ValidatorID(keyFile.owner.value),
                                        validatorKey: try keyFile.signingKey(), dataDirectory: data,
                                        personalDataKey: personal, metrics: NodeMetrics(), logger: logger)
            let openSeconds = BenchReport.seconds(ContinuousClock.now - opened)
            let subjects = try subject.map { try USCC($0) }
            let parameters = ReportParameters(consortium.genesis)
            let height = await engine.height
            // One series per enterprise: the first is the one the figures name (`report_*`), the others `report_N_*`.
            var times = [[Double]](repeating: [], count: subjects.count)
            do {
                for round in 0..<(max(10, samples / 10) + samples) {
                    for (number, subject) in subjects.enumerated() {
                        let start = ContinuousClock.now
                        let material = try await engine.reportMaterial(subject: subject, height: height)
                        _ = material.assemble(parameters)
                        if round >= max(10, samples / 10) {
                            times[number].append(BenchReport.seconds(ContinuousClock.now - start) * 1e3)
                        }
                    }
                }
            } catch {
                await engine.shutdown()
                throw error
            }
            // Memory while the engine is open, as a node holds it (its storage and report path; a running node adds
            // consensus, the network and the mempool: `rss_mb_at_1m` of scripts/bench measures one).
            let rss = Double(Self.status("VmRSS") ?? 0) / 1024
            await engine.shutdown()
            print(String(format: "open_s: %.3f", openSeconds))
            for (number, series) in times.enumerated() where !series.isEmpty {
                let sorted = series.sorted()
                let name = number == 0 ? "report" : "report_\(number + 1)"
                print(String(format: "%@_p50_ms: %.3f", name, sorted[sorted.count / 2]))
                print(String(format: "%@_p99_ms: %.3f", name, sorted[min(sorted.count - 1, sorted.count * 99 / 100)]))
            }
            print(String(format: "rss_mb: %.1f", rss))
            print(String(format: "rss_peak_mb: %.1f", Double(Self.status("VmHWM") ?? 0) / 1024))
        }
    }

    /// A field of /proc/self/status in kB (nil where there is no /proc).
    static func status(_ field: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
        }
        return nil
    }
}
