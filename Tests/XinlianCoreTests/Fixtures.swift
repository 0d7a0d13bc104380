import Foundation
import XinlianCore
import XinlianCrypto

/// Deterministic PRNG for property tests (SplitMix64).
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

enum TestData {
    /// `Tests/Fixtures/<name>` of this repository, located from this file (see `Tests/Fixtures/README.md`).
    static func url(_ name: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures").appendingPathComponent(name)
    }

    static func json(_ name: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url(name)))
    }
}

/// A small consortium with deterministic keys, for tests.
struct TestConsortium {
    let consortium: Consortium
    let validatorKey: SigningKey
    let institutionKeys: [InstitutionID: SigningKey]

    init(suite suiteID: CryptoSuiteID, seed: UInt8 = 1) throws {
        let suite = CryptoSuite(suiteID)
        func key(_ n: UInt8) throws -> SigningKey {
            try suite.signingKey(privateKey: [UInt8](repeating: 0, count: 31) + [n &+ seed])
        }
        let validatorKey = try key(10)
        var keys: [InstitutionID: SigningKey] = [:]
        var institutions: [InstitutionRecord] = []
        for (offset, entry) in [("bank-a", InstitutionRole.member), ("registry", .registry), ("regulator", .regulator)].enumerated() {
            let id = try Name(entry.0)
            let signing = try key(UInt8(20 + offset))
            keys[id] = signing
            institutions.append(InstitutionRecord(id: id, name: entry.0, roles: [entry.1], publicKey: signing.publicKey.bytes.hexString))
        }
        let genesis = Genesis(
            chainId: "xinlian-test", cryptoSuite: suiteID, genesisTimeMs: 1_764_000_000_000, parameters: .defaults,
            institutions: institutions,
            validators: [ValidatorRecord(id: "node0", institution: "bank-a", publicKey: validatorKey.publicKey.bytes.hexString,
                                         power: 10, p2pAddress: "127.0.0.1:26600", apiAddress: "127.0.0.1:8600")])
        consortium = try Consortium(genesis)
        self.validatorKey = validatorKey
        self.institutionKeys = keys
    }

    func transaction(_ n: Int, reporter: InstitutionID = "bank-a", kind: TransactionKind = .facilityOpened) throws -> Transaction {
        let subject = try USCC.withCheckCharacter(String(format: "91310000%09d", n % 1000))
        let body = TransactionBody(chainID: consortium.chainID, kind: kind, reporter: reporter, subject: subject,
                                   timeMs: 1_764_000_000_000 + UInt64(n), nonce: UInt64(n),
                                   payload: Array("{\"amount\":\(n)}".utf8))
        guard let key = institutionKeys[reporter] else { throw VerificationError(code: "test", message: "no key") }
        return try Transaction.sign(body, with: key)
    }

    /// A committed block at `height` over `transactions`, certified by the single validator.
    func committedBlock(height: UInt64, previousHash: Hash32, transactions: [Transaction], stateRoot: Hash32 = .zero) throws -> CommittedBlock {
        let suite = consortium.suite
        let header = BlockHeader(chainID: consortium.chainID, height: height, timeMs: 1_764_000_000_000 + height,
                                 previousHash: previousHash,
                                 transactionsRoot: Block.transactionsRoot(transactions, suite: suite),
                                 stateRoot: stateRoot, validatorSetHash: consortium.validators.hash,
                                 proposer: "node0", transactionCount: UInt32(transactions.count))
        let blockHash = header.hash(suite)
        let vote = Vote(chainID: consortium.chainID, kind: .precommit, height: height, round: 0, blockHash: blockHash,
                        validator: "node0")
        let certificate = CommitCertificate(height: height, round: 0, blockHash: blockHash,
                                            signatures: [CommitSignature(validator: "node0",
                                                                         signature: try validatorKey.sign(vote.signingBytes))])
        return CommittedBlock(block: Block(header: header, transactions: transactions), certificate: certificate)
    }
}
