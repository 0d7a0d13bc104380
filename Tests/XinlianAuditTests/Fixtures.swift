import Foundation
import XinlianAudit
import XinlianCore
import XinlianCrypto
import XinlianStorage

/// Deterministic PRNG for sampled tests (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
}

/// A small consortium with deterministic keys (after `Tests/XinlianCoreTests/Fixtures.swift`).
struct TestConsortium {
    static let baseTimeMs: UInt64 = 1_764_000_000_000
    static let subjects = 7

    let consortium: Consortium
    let validatorKey: SigningKey
    let institutionKeys: [InstitutionID: SigningKey]

    init(suite suiteID: CryptoSuiteID, chainID: ChainID = "xinlian-test", seed: UInt8 = 1) throws {
        let suite = CryptoSuite(suiteID)
        func key(_ n: UInt8) throws -> SigningKey {
            try suite.signingKey(privateKey: [UInt8](repeating: 0, count: 31) + [n &+ seed])
        }
        let validatorKey = try key(10)
        var keys: [InstitutionID: SigningKey] = [:]
        var institutions: [InstitutionRecord] = []
        for (offset, entry) in [("bank-a", InstitutionRole.member), ("registry", .registry)].enumerated() {
            let id = try Name(entry.0)
            let signing = try key(UInt8(20 + offset))
            keys[id] = signing
            institutions.append(InstitutionRecord(id: id, name: entry.0, roles: [entry.1],
                                                  publicKey: signing.publicKey.bytes.hexString))
        }
        let genesis = Genesis(
            chainId: chainID, cryptoSuite: suiteID, genesisTimeMs: Self.baseTimeMs, parameters: .defaults,
            institutions: institutions,
            validators: [ValidatorRecord(id: "node0", institution: "bank-a", publicKey: validatorKey.publicKey.bytes.hexString,
                                         power: 10, p2pAddress: "127.0.0.1:26600", apiAddress: "127.0.0.1:8600")])
        consortium = try Consortium(genesis)
        self.validatorKey = validatorKey
        self.institutionKeys = keys
    }

    /// Transaction `n`: about one of a few enterprises, so their hash chains grow.
    func transaction(_ n: Int, payload: String? = nil) throws -> Transaction {
        let subject = try USCC.withCheckCharacter(String(format: "91310000%09d", n % Self.subjects))
        let body = TransactionBody(chainID: consortium.chainID, kind: .facilityOpened, reporter: "bank-a", subject: subject,
                                   timeMs: Self.baseTimeMs + UInt64(n), nonce: UInt64(n),
                                   payload: Array((payload ?? "{\"amount\":\(n)}").utf8))
        guard let key = institutionKeys["bank-a"] else { throw FixtureError(description: "no key for bank-a") }
        return try Transaction.sign(body, with: key)
    }

    /// A header over `transactions` and a certificate signed by `signer` (the genesis validator by default).
    func committedBlock(height: UInt64, previousHash: Hash32, transactions: [Transaction], stateRoot: Hash32,
                        signer: SigningKey? = nil) throws -> CommittedBlock {
        let suite = consortium.suite
        let header = BlockHeader(chainID: consortium.chainID, height: height, timeMs: Self.baseTimeMs + height,
                                 previousHash: previousHash,
                                 transactionsRoot: Block.transactionsRoot(transactions, suite: suite),
                                 stateRoot: stateRoot, validatorSetHash: consortium.validators.hash,
                                 proposer: "node0", transactionCount: UInt32(transactions.count))
        return CommittedBlock(block: Block(header: header, transactions: transactions),
                              certificate: try certificate(for: header, signer: signer ?? validatorKey))
    }

    func certificate(for header: BlockHeader, signer: SigningKey) throws -> CommitCertificate {
        let blockHash = header.hash(consortium.suite)
        let vote = Vote(chainID: consortium.chainID, kind: .precommit, height: header.height, round: 0,
                        blockHash: blockHash, validator: "node0")
        return CommitCertificate(height: header.height, round: 0, blockHash: blockHash,
                                 signatures: [CommitSignature(validator: "node0", signature: try signer.sign(vote.signingBytes))])
    }
}

/// A scratch directory removed when the test ends.
final class ScratchDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-audit-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    func sub(_ name: String) -> String { path + "/" + name }
}

/// What a built ledger contains.
struct LedgerFacts {
    var height: UInt64 = 0
    var transactions: UInt64 = 0
    var head: Hash32
}

/// Builds real ledgers through `LedgerStore`.
struct LedgerBuilder {
    let fixture: TestConsortium

    /// Appends `blocks` blocks to the ledger in `dataDirectory`; block `h` holds `transactionsPerBlock(h)`
    /// transactions, each transformed by `tamper(height, index, transaction)` (for invalid signatures).
    @discardableResult
    func build(dataDirectory: String, blocks: Int, firstTransaction: Int = 0,
               transactionsPerBlock: (UInt64) -> Int = { $0 % 4 == 0 ? 0 : Int($0 % 3) + 1 },
               tamper: (UInt64, Int, Transaction) -> Transaction = { $2 }) throws -> LedgerFacts {
        let store = try LedgerStore(dataDirectory: dataDirectory, consortium: fixture.consortium)
        defer { store.close() }
        var next = firstTransaction
        for _ in 0..<blocks {
            let height = store.height + 1
            var transactions: [Transaction] = []
            for index in 0..<transactionsPerBlock(height) {
                transactions.append(tamper(height, index, try fixture.transaction(next)))
                next += 1
            }
            let prepared = try store.prepareState(transactions)
            let record = try fixture.committedBlock(height: height, previousHash: store.lastBlockHash,
                                                    transactions: transactions, stateRoot: prepared.stateRoot)
            try store.append(record, prepared: prepared)
        }
        return LedgerFacts(height: store.height, transactions: UInt64(next - firstTransaction), head: store.lastBlockHash)
    }
}

/// Raw access to block logs, for copying and forging.
enum LogTools {
    /// Every payload of the log in `dataDirectory`, verbatim.
    static func payloads(dataDirectory: String) throws -> [[UInt8]] {
        var payloads: [[UInt8]] = []
        let report = try BlockLog.scan(directory: LedgerStore.blocksDirectory(dataDirectory)) { payloads.append($1) }
        guard report.fault == nil, report.tornTail == nil else { throw FixtureError(description: "damaged source log") }
        return payloads
    }

    /// Writes `payloads` as a fresh data directory whose log has small segments; returns each record's location.
    @discardableResult
    static func write(_ payloads: [[UInt8]], dataDirectory: String, segmentBytes: Int = 1 << 20) throws -> [RecordLocation] {
        let log = try BlockLog(directory: LedgerStore.blocksDirectory(dataDirectory),
                               options: BlockLog.Options(segmentSizeTargetBytes: segmentBytes))
        defer { log.close() }
        return try payloads.map { try log.append($0) }
    }

    /// Every file under `directory` with its bytes.
    static func snapshot(_ directory: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: directory)
        while let name = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let path = directory + "/" + name
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                files[name] = try Data(contentsOf: URL(fileURLWithPath: path))
            }
        }
        return files
    }

    /// XORs the byte at `offset` of `path` with `mask`.
    static func flip(_ path: String, at offset: UInt64, mask: UInt8 = 0xFF) throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[Int(offset)] ^= mask
        try bytes.write(to: URL(fileURLWithPath: path))
    }
}

/// Runs `body` expecting an `AuditFault`; returns it (or nil when nothing, or something else, was thrown).
func auditFault<T>(_ body: () throws(AuditFault) -> T) -> AuditFault? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}
