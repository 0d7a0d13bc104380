import ArgumentParser
import Foundation
import Logging
import XinlianAudit
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianNode
import XinlianStorage

/// Measures report assembly for one enterprise on ledgers of different sizes (issue 4: the time must not grow
/// with the ledger). Each ledger is written through the real storage (`LedgerStore`), with real signatures and
/// certificates, and read back by a `NodeEngine` the way the report API reads it.
struct BenchReport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-report",
        abstract: "Measure report assembly for one enterprise on ledgers of different sizes (use a release build).",
        discussion: Help.paragraphs(
            "The block size is the same for every ledger, and the measured enterprise's statements each sit in their own "
                + "block spread evenly through the ledger, so that only the ledger's size differs between the runs.",
            Help.example("""
                .build/release/xinlian bench-report --ledger-transactions 10000,1000000 \\
                  --samples 200
                """)))

    @Option(help: "Ledger sizes to compare, in transactions, comma-separated.") var ledgerTransactions: String = "10000,1000000"
    @Option(help: "Statements about the measured enterprise.") var enterpriseTransactions: Int = 100
    @Option(help: "Statements about the second, small enterprise.") var smallEnterpriseTransactions: Int = 10
    @Option(help: "Transactions per block (the same for every ledger size; 5,000 fills a block under the default genesis).")
    var blockTransactions: Int = 5_000
    @Option(help: "Timed reports per enterprise and ledger, after a warm-up.") var samples: Int = 200
    @Option(help: "Where to write the temporary ledgers (deleted afterwards).") var directory: String?
    @Option(help: "Output: text, or names (also `name: value` lines for the largest ledger, for scripts/bench).")
    var format: LoadFormat = .text

    /// Background enterprises per sample story group: a group's statements fill consecutive blocks, so that a block
    /// touches ten to twenty enterprises, not one state-tree key per transaction; the number of enterprises grows
    /// with the ledger (about one per 18 transactions).
    static let groupEnterprises = 10
    static let suiteID = CryptoSuiteID.ed25519SHA256

    func validate() throws {
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--ledger-transactions must be positive integers, comma-separated")
        }
        guard enterpriseTransactions >= 4, smallEnterpriseTransactions >= 4 else {
            throw ValidationError("each measured enterprise needs at least 4 statements")
        }
        guard (1...5_000).contains(blockTransactions) else { throw ValidationError("--block-transactions must be 1...5000") }
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1") }
        guard let smallest = sizes.min(), smallest >= enterpriseTransactions + smallEnterpriseTransactions else {
            throw ValidationError("every ledger must hold both measured enterprises' statements")
        }
    }

    var sizes: [Int] { ledgerTransactions.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func run() async throws {
        try await reportingErrors {
            let suite = CryptoSuite(Self.suiteID)
            let rawMicros = 1e6 / (try Bench.rawVerificationsPerSecond(suite))
            print(String(format: "raw %@ verification: %.1f µs (one core); %d cores", Self.suiteID.rawValue, rawMicros,
                         ProcessInfo.processInfo.activeProcessorCount))
            let base = (directory ?? FileManager.default.temporaryDirectory.path) + "/xinlian-bench-report-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: base) }
            let world = try BenchWorld(suite: suite)
            let targets = [try world.large(enterpriseTransactions), try world.small(smallEnterpriseTransactions)]
            var ledgers: [(size: Int, data: String)] = []
            for size in sizes {
                let data = base + "/\(size)"
                let start = ContinuousClock.now
                let built = try await world.build(LedgerPlan(transactions: size, blockTransactions: blockTransactions, targets: targets),
                                                  dataDirectory: data)
                print(String(format: "ledger of %d transactions: %d blocks of %d, %d enterprises, %.0f MB, built in %.0f s",
                             size, built.height, blockTransactions, built.enterprises, Double(Self.bytes(under: data)) / 1e6,
                             Self.seconds(ContinuousClock.now - start)))
                ledgers.append((size, data))
            }
            let (times, throughput) = try await measure(world: world, ledgers: ledgers, targets: targets, rawMicros: rawMicros)
            let medians = times.map { $0.map { $0[$0.count / 2] } }
            for (index, ledger) in ledgers.enumerated().dropFirst() {
                let ratios = targets.indices.map { String(format: "%.2f (%d statements)", medians[index][$0] / medians[0][$0],
                                                         targets[$0].transactions.count) }
                print("ratio of medians, \(ledger.size) vs \(ledgers[0].size) transactions: " + ratios.joined(separator: ", "))
            }
            if format == .names, let largest = ledgers.last, let sorted = times.last?.first {
                try names(largest, sorted: sorted, throughput: throughput, world: world, rawPerSecond: 1e6 / rawMicros)
            }
        }
    }

    /// `name: value` lines for the largest ledger: the report figures of the large enterprise (assembled in
    /// process as the report route does before HTTP: its p99 one report at a time, its rate with one requester per
    /// core, as a node serves concurrent requests), the ledger's bytes per transaction, and the offline audit of it
    /// (`AuditVerifier`, as `xinlian audit verify` runs it).
    private func names(_ ledger: (size: Int, data: String), sorted: [Double], throughput: Double, world: BenchWorld,
                       rawPerSecond: Double) throws {
        let cores = Double(ProcessInfo.processInfo.activeProcessorCount)
        let mean = sorted.reduce(0, +) / Double(max(1, sorted.count))
        let start = ContinuousClock.now
        let audit = try AuditVerifier.verify(dataDirectory: ledger.data + "/data", consortium: world.consortium, options: AuditOptions())
        let auditRate = Double(audit.transactions) / Self.seconds(ContinuousClock.now - start)
        print("report_ledger_transactions: \(ledger.size)")
        print(String(format: "report_p99_ms: %.2f", sorted[min(sorted.count - 1, sorted.count * 99 / 100)] / 1_000))
        print(String(format: "reports_per_s: %.0f", throughput))
        print(String(format: "reports_per_s_one_requester: %.0f", 1e6 / max(mean, 0.001)))
        print(String(format: "bytes_per_tx: %.0f", Double(Self.bytes(under: ledger.data + "/data")) / Double(ledger.size)))
        // The block log's bytes per transaction: each encoded transaction plus its share of headers and certificates.
        print(String(format: "block_log_bytes_per_tx: %.0f",
                     Double(Self.bytes(under: LedgerStore.blocksDirectory(ledger.data + "/data"))) / Double(ledger.size)))
        print(String(format: "audit_per_s: %.0f", auditRate))
        print(String(format: "audit_ratio: %.2f", auditRate / (rawPerSecond * cores)))
    }

    /// Times `reportMaterial` + `assemble` for each target on each ledger, as the report route runs them, one engine per
    /// ledger. Samples are interleaved (every ledger and target once per round) so that drift in the machine's load
    /// falls on every ledger alike. Returns the sorted times (µs) by ledger, then target, one report at a time, and
    /// the rate of the large enterprise's reports on the largest ledger with one requester per core.
    private func measure(world: BenchWorld, ledgers: [(size: Int, data: String)], targets: [TargetEnterprise],
                         rawMicros: Double) async throws -> (times: [[[Double]]], throughput: Double) {
        var logger = Logger(label: "bench-report")
        logger.logLevel = .warning
        var engines: [NodeEngine] = []
        for ledger in ledgers {
            engines.append(try NodeEngine(consortium: world.consortium, validatorID: BenchWorld.validatorID,
                                          validatorKey: world.validator, dataDirectory: ledger.data + "/data",
                                          metrics: NodeMetrics(), logger: logger))
        }
        let parameters = ReportParameters(world.consortium.genesis)
        var heights: [UInt64] = []
        for engine in engines { heights.append(await engine.height) }
        var times = Array(repeating: Array(repeating: [Double](), count: targets.count), count: ledgers.count)
        var shown = times.map { $0.map { _ in (own: 0, blocks: 0, sources: 0) } }
        let warmUp = max(10, samples / 10)
        do {
            for round in 0..<(warmUp + samples) {
                for (ledger, engine) in engines.enumerated() {
                    for (number, target) in targets.enumerated() {
                        let start = ContinuousClock.now
                        let material = try await engine.reportMaterial(subject: target.subject, height: heights[ledger])
                        let report = material.assemble(parameters)
                        let elapsed = Self.seconds(ContinuousClock.now - start) * 1e6
                        if round >= warmUp { times[ledger][number].append(elapsed) }
                        shown[ledger][number] = (material.own.count, Set(material.entries.map(\.height)).count, report.sources.count)
                    }
                }
            }
        } catch {
            for engine in engines { await engine.shutdown() }
            throw error
        }
        let throughput: Double
        do {
            throughput = try await Self.concurrentRate(engine: engines[engines.count - 1], subject: targets[0].subject,
                                                       height: heights[heights.count - 1], parameters: parameters,
                                                       reports: samples)
        } catch {
            for engine in engines { await engine.shutdown() }
            throw error
        }
        for engine in engines { await engine.shutdown() }
        var sortedTimes: [[[Double]]] = []
        for (index, ledger) in ledgers.enumerated() {
            print("ledger of \(ledger.size) transactions, \(samples) reports each after \(warmUp) unmeasured:")
            var row: [[Double]] = []
            for (number, target) in targets.enumerated() {
                let facts = shown[index][number]
                guard facts.own == target.transactions.count else {
                    throw CLIError("the report material on \(target.subject) has \(facts.own) of its \(target.transactions.count) statements")
                }
                let sorted = times[index][number].sorted()
                let median = sorted[sorted.count / 2]
                let p90 = sorted[min(sorted.count - 1, sorted.count * 9 / 10)]
                print(String(format: "  enterprise with %3d statements (%3d blocks read, %3d sources shown): median %8.0f µs,"
                                 + " p90 %8.0f µs = %.0f / %.0f raw verifications", target.transactions.count, facts.blocks,
                             facts.sources, median, p90, median / rawMicros, p90 / rawMicros))
                row.append(sorted)
            }
            sortedTimes.append(row)
        }
        return (sortedTimes, throughput)
    }

    /// Reports per second with one requester per core, each asking for `reports` reports on `subject` in turn.
    static func concurrentRate(engine: NodeEngine, subject: USCC, height: UInt64, parameters: ReportParameters,
                               reports: Int) async throws -> Double {
        let lanes = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for _ in 0..<lanes {
                tasks.addTask {
                    for _ in 0..<reports {
                        _ = try await engine.reportMaterial(subject: subject, height: height).assemble(parameters)
                    }
                }
            }
            try await tasks.waitForAll()
        }
        return Double(lanes * reports) / max(seconds(ContinuousClock.now - start), 1e-9)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func bytes(under path: String) -> Int {
        guard let files = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total = 0
        for case let file as String in files {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path + "/" + file)
            total += (attributes?[.size] as? NSNumber)?.intValue ?? 0
        }
        return total
    }
}

/// An enterprise whose report is measured, with its statements signed and in order.
struct TargetEnterprise: Sendable {
    var subject: USCC
    var transactions: [Transaction]
}

/// How one ledger is laid out: `transactions` in blocks of `blockTransactions`, each target's statements spread
/// evenly through the heights (one per block when there are enough blocks), the rest background.
struct LedgerPlan {
    var transactions: Int
    var blockTransactions: Int
    var targets: [TargetEnterprise]

    var blocks: Int { (transactions + blockTransactions - 1) / blockTransactions }

    /// The target statements of each block (0-based), in each target's order.
    func placements() -> [Int: [Transaction]] {
        var result: [Int: [Transaction]] = [:]
        for (number, target) in targets.enumerated() {
            let count = target.transactions.count
            for (index, transaction) in target.transactions.enumerated() {
                // Offset per target so that two targets rarely share blocks.
                let position = (Double(index) + 0.5 + Double(number) * 0.37) / Double(count)
                result[min(blocks - 1, Int(position * Double(blocks))), default: []].append(transaction)
            }
        }
        return result
    }
}

/// The consortium (one validator, the sample institutions) and the signed statements a benchmark ledger holds.
struct BenchWorld: Sendable {
    static let validatorID: ValidatorID = "v"
    let suite: CryptoSuite
    let consortium: Consortium
    let validator: SigningKey
    let keys: [InstitutionID: SigningKey]

    init(suite: CryptoSuite) throws {
        self.suite = suite
        validator = suite.generateSigningKey()
        var keys: [InstitutionID: SigningKey] = [:]
        var institutions: [InstitutionRecord] = []
        for (id, roles) in SampleGenerator.institutions {
            let key = suite.generateSigningKey()
            keys[id] = key
            institutions.append(InstitutionRecord(id: id, name: id.value, roles: roles, publicKey: key.publicKey.bytes.hexString))
        }
        self.keys = keys
        consortium = try Consortium(Genesis(
            chainId: "bench-report", cryptoSuite: suite.id, genesisTimeMs: 0, parameters: .defaults, institutions: institutions,
            validators: [ValidatorRecord(id: Self.validatorID, institution: institutions[0].id,
                                         publicKey: validator.publicKey.bytes.hexString, power: 1,
                                         p2pAddress: "127.0.0.1:1", apiAddress: "127.0.0.1:2")]))
    }

    func sign(_ statement: UnsignedStatement) throws -> Transaction {
        guard let key = keys[statement.body.reporter] else { throw CLIError("no key for \(statement.body.reporter)") }
        return try statement.sign(with: key)
    }

    /// Signs a statement from its full payload, personal fields moved to personal data (salted from the nonce:
    /// benchmark data need not be secret, only reproducible).
    func sign(_ body: TransactionBody, payload: JSONValue) throws -> Transaction {
        guard let key = keys[body.reporter] else { throw CLIError("no key for \(body.reporter)") }
        let salt = suite.hash(tag: Domain.personalData, Array("bench-salt-\(body.nonce)".utf8)).bytes
        return try PersonalFields.sign(body, payload: payload, salt: salt, suite: suite, key: key)
    }

    func large(_ count: Int) throws -> TargetEnterprise { try target(count, code: "91330106MABENCH01") }
    func small(_ count: Int) throws -> TargetEnterprise { try target(count, code: "91330106MABENCH02") }

    /// `count` statements about one enterprise that pass the credit rules: a registration, an operating status,
    /// collateral and a guarantee for its first facility, and facilities each opened and then updated weekly
    /// (up to nine updates each) until `count`. One statement a week from 2019-01-01.
    private func target(_ count: Int, code: String) throws -> TargetEnterprise {
        let subject = try USCC.withCheckCharacter(code)
        guard let start = Day(year: 2019, month: 1, day: 1), let guarantor = try? USCC.withCheckCharacter("91330106MABENCHGU") else {
            throw CLIError("bad constant")
        }
        func money(_ minor: Int) -> JSONValue { .object(["minor": .integer(Int64(minor)), "currency": .string("CNY")]) }
        func day(_ day: Day) -> JSONValue { .string(day.description) }
        var transactions: [Transaction] = []
        var byID: [Hash32: Transaction] = [:]
        var facility = (number: -1, opened: start, opening: Hash32.zero, updates: 0)
        for index in 0..<count {
            let today = start.adding(days: 7 * index)
            let kind: TransactionKind
            let reporter: InstitutionID
            var payload: [String: JSONValue]
            let facilityID = "LN-BENCH-\(facility.number)"
            switch index {
            case 0:
                (kind, reporter) = (.registration, "samr-zhejiang")
                payload = ["name": .string("基准测试有限公司"), "legalForm": .string("limitedLiabilityCompany"),
                           "legalRepresentative": .string("张伟"), "registeredCapital": money(50_000_000),
                           "establishedOn": day(start.adding(days: -2_000)), "registrationAuthority": .string("杭州市市场监督管理局"),
                           "address": .string("浙江省杭州市西湖区文三路1号"), "industry": .string("C3821")]
            case 1:
                (kind, reporter) = (.operatingStatus, "samr-zhejiang")
                payload = ["status": .string("operating"), "effectiveOn": day(start.adding(days: -2_000))]
            case 3 where facility.number == 0:
                (kind, reporter) = (.collateralRegistered, "icbc-zhejiang")
                payload = ["collateralId": .string("CL-BENCH-0"), "type": .string("equipment"), "interest": .string("mortgage"),
                           "description": .string("数控机床 12 台"), "value": money(30_000_000),
                           "valuedOn": day(facility.opened.adding(days: -7)), "registeredOn": day(today),
                           "registrationNumber": .string("ZD2019100001"), "securesFacilityIds": .array([.string(facilityID)])]
            case 4 where facility.number == 0:
                (kind, reporter) = (.guaranteeIssued, "icbc-zhejiang")
                payload = ["guaranteeId": .string("GT-BENCH-0"), "guarantor": .string(guarantor.code),
                           "liability": .string("jointAndSeveral"), "amount": money(20_000_000), "issuedOn": day(today),
                           "expiresOn": day(today.adding(years: 3)), "securesFacilityId": .string(facilityID)]
            default:
                reporter = "icbc-zhejiang"
                if facility.number < 0 || facility.updates == 9 {
                    facility = (facility.number + 1, today, .zero, 0)
                    kind = .facilityOpened
                    payload = ["facilityId": .string("LN-BENCH-\(facility.number)"), "type": .string("loan"),
                               "amount": money(100_000_000), "openedOn": day(today), "maturesOn": day(today.adding(days: 3 * 365)),
                               "security": .string(facility.number == 0 ? "mixed" : "unsecured"),
                               "classification": .string("normal"), "purpose": .string("流动资金周转")]
                } else {
                    facility.updates += 1
                    kind = .facilityUpdated
                    payload = ["facilityId": .string(facilityID), "asOf": day(today),
                               "balance": money(100_000_000 - 5_000_000 * facility.updates),
                               "classification": .string("normal"), "status": .string("active"),
                               "opening": .string(facility.opening.hex)]
                }
            }
            let body = TransactionBody(chainID: consortium.chainID, kind: kind, reporter: reporter, subject: subject,
                                       timeMs: UInt64(today.startMs) + 9 * 3_600_000, nonce: UInt64(index),
                                       payload: [])
            let transaction = try sign(body, payload: .object(payload))
            let roles = Set(consortium.institutionRoles[reporter] ?? [])
            _ = try CreditRules.check(transaction: transaction, roles: roles, referenced: { byID[$0] }, suite: suite)
            let id = transaction.id(suite)
            if kind == .facilityOpened { facility.opening = id }
            byID[id] = transaction
            transactions.append(transaction)
        }
        return TargetEnterprise(subject: subject, transactions: transactions)
    }

    /// Background statements: sample stories (`SampleGenerator`) of `groupEnterprises` enterprises per group,
    /// a new seed (so new enterprises) and nonce range per group, signed by their reporters, concurrently.
    func backgroundGroup(_ group: Int) async throws -> [Transaction] {
        let bodies = try SampleGenerator(seed: 0x5EED_0000 &+ UInt64(group))
            .bodies(enterprises: BenchReport.groupEnterprises, chainID: consortium.chainID, suite: suite,
                    nonceBase: UInt64(group) << 32)
            .filter { $0.body.kind != .queryRecord }  // written by nodes when they serve reports
        let world = self
        let lanes = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let chunk = (bodies.count + lanes - 1) / lanes
        return try await withThrowingTaskGroup(of: (Int, [Transaction]).self) { tasks in
            for start in stride(from: 0, to: bodies.count, by: max(1, chunk)) {
                let slice = Array(bodies[start..<min(start + chunk, bodies.count)])
                tasks.addTask { (start, try slice.map(world.sign)) }
            }
            var parts: [(Int, [Transaction])] = []
            for try await part in tasks { parts.append(part) }
            return parts.sorted { $0.0 < $1.0 }.flatMap(\.1)
        }
    }

    /// Writes `plan` into `dataDirectory` through `LedgerStore`: each block with its state root and a certificate
    /// signed by the single validator, as `NodeEngine.certify` would sign it. Returns the height and enterprise count.
    func build(_ plan: LedgerPlan, dataDirectory: String) async throws -> (height: Int, enterprises: Int) {
        let builder = try LedgerBuilder(world: self, plan: plan, dataDirectory: dataDirectory)
        defer { builder.close() }
        try await builder.grow(to: plan.transactions)
        return (Int(builder.store.height), builder.enterprises)
    }

    /// A registration of the `number`th single-statement enterprise (a company with nothing else on the ledger yet:
    /// most of the seed's 23 million enterprises have one or two statements).
    func registration(_ number: Int) throws -> Transaction {
        let subject = try USCC.withCheckCharacter("92330106" + String(format: "%09d", number % 1_000_000_000))
        guard let start = Day(year: 2019, month: 1, day: 1) else { throw CLIError("bad constant") }
        let day = start.adding(days: number % 2_000)
        let payload: JSONValue = .object([
            "name": .string("规模测试企业\(number)号"), "legalForm": .string("limitedLiabilityCompany"),
            "legalRepresentative": .string("王芳"),
            "registeredCapital": .object(["minor": .integer(Int64(1_000_000 + number % 1_000 * 10_000)), "currency": .string("CNY")]),
            "establishedOn": .string(day.adding(days: -365).description), "registrationAuthority": .string("杭州市市场监督管理局"),
            "address": .string("浙江省杭州市滨江区网商路\(number % 999 + 1)号"), "industry": .string("C3821"),
        ])
        let body = TransactionBody(chainID: consortium.chainID, kind: .registration, reporter: "samr-zhejiang", subject: subject,
                                   timeMs: UInt64(day.startMs) + 9 * 3_600_000, nonce: 0x7E61_0000_0000_0000 &+ UInt64(number),
                                   payload: [])
        return try sign(body, payload: payload)
    }

    /// Signs `count` registrations from `first` on, on all cores.
    func registrations(from first: Int, count: Int) async throws -> [Transaction] {
        let world = self
        let lanes = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let chunk = max(1, (count + lanes - 1) / lanes)
        return try await withThrowingTaskGroup(of: (Int, [Transaction]).self) { tasks in
            for start in stride(from: 0, to: count, by: chunk) {
                let end = min(start + chunk, count)
                tasks.addTask { (start, try (start..<end).map { try world.registration(first + $0) }) }
            }
            var parts: [(Int, [Transaction])] = []
            for try await part in tasks { parts.append(part) }
            return parts.sorted { $0.0 < $1.0 }.flatMap(\.1)
        }
    }

    func append(_ transactions: [Transaction], to store: LedgerStore) throws {
        let prepared = try store.prepareState(transactions)
        let newest = transactions.map(\.body.timeMs).max() ?? 0
        let header = BlockHeader(
            chainID: consortium.chainID, height: store.height + 1, timeMs: max(newest, (store.lastHeader?.timeMs ?? 0) + 1),
            previousHash: store.lastBlockHash, transactionsRoot: Block.transactionsRoot(transactions, suite: suite),
            stateRoot: prepared.stateRoot, validatorSetHash: consortium.validators.hash, proposer: Self.validatorID,
            transactionCount: UInt32(transactions.count))
        let blockHash = header.hash(suite)
        let vote = Vote(chainID: consortium.chainID, kind: .precommit, height: header.height, round: 0, blockHash: blockHash,
                        validator: Self.validatorID)
        let certificate = CommitCertificate(height: header.height, round: 0, blockHash: blockHash,
                                            signatures: [CommitSignature(validator: Self.validatorID,
                                                                         signature: try validator.sign(vote.signingBytes))])
        try BlockVerifier.checkCertificate(certificate, header: header, consortium: consortium)
        try store.append(CommittedBlock(block: Block(header: header, transactions: transactions), certificate: certificate),
                         prepared: prepared)
    }
}

/// Grows one benchmark ledger block by block, in memory only a group of background statements at a time: the
/// targets' statements where `plan` places them, background sample stories, and (`registrationShare` of the
/// background) single-registration enterprises.
final class LedgerBuilder {
    let world: BenchWorld
    private(set) var store: LedgerStore
    let dataDirectory: String
    let plan: LedgerPlan
    let registrationShare: Double
    private let placements: [Int: [Transaction]]
    private var background: [Transaction] = []
    private var backgroundIndex = 0
    private var group = 0
    private var registered = 0
    private var backgroundWritten = 0
    private(set) var written = 0
    private var blocks = 0

    /// Enterprises on the ledger: `BenchReport.groupEnterprises` per story group begun, one per registration, the targets.
    var enterprises: Int { group * BenchReport.groupEnterprises + registered + plan.targets.count }

    init(world: BenchWorld, plan: LedgerPlan, registrationShare: Double = 0, dataDirectory: String) throws {
        let key = try PersonalDataKey.loadOrCreate(path: PersonalDataKey.defaultPath(forDataDirectory: dataDirectory + "/data"),
                                                   dataDirectory: dataDirectory + "/data").key
        self.world = world
        self.plan = plan
        self.registrationShare = registrationShare
        self.dataDirectory = dataDirectory
        store = try LedgerStore(dataDirectory: dataDirectory + "/data", consortium: world.consortium, personalDataKey: key)
        placements = plan.placements()
    }

    /// Closes the store (so that another process may open the ledger) and opens it again.
    func reopen(between body: () async throws -> Void) async throws {
        store.close()
        try await body()
        let key = try PersonalDataKey.loadOrCreate(path: PersonalDataKey.defaultPath(forDataDirectory: dataDirectory + "/data"),
                                                   dataDirectory: dataDirectory + "/data").key
        store = try LedgerStore(dataDirectory: dataDirectory + "/data", consortium: world.consortium, personalDataKey: key)
    }

    /// Appends full blocks (the last one partial) until the ledger holds `total` transactions.
    func grow(to total: Int) async throws {
        while written < total {
            let size = min(plan.blockTransactions, total - written)
            var transactions = placements[blocks] ?? []
            let missing = max(0, size - transactions.count)
            // Registrations first, up to their share of the background written so far.
            let due = Int(registrationShare * Double(backgroundWritten + missing)) - registered
            let fresh = min(missing, max(0, due))
            if fresh > 0 {
                transactions += try await world.registrations(from: registered, count: fresh)
                registered += fresh
            }
            while transactions.count < size {
                if backgroundIndex == background.count {
                    background = try await world.backgroundGroup(group)
                    backgroundIndex = 0
                    group += 1
                }
                transactions.append(background[backgroundIndex])
                backgroundIndex += 1
            }
            backgroundWritten += missing
            written += transactions.count
            blocks += 1
            try world.append(transactions, to: store)
        }
    }

    func close() { store.close() }
}
