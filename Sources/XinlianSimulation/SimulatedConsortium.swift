import XinlianConsensus
import XinlianCore
import XinlianCredit
import XinlianCrypto

/// The fixed parts of a simulated consortium: genesis, keys, the institution that submits the workload, and the
/// transactions hostile validators try to slip in.
struct SimulatedConsortium {
    static let chainID: ChainID = "xinlian-sim"
    static let genesisTimeMs: UInt64 = 1_764_000_000_000
    /// Genesis's `maxBlockTransactions` in simulations: an `oversizedBlock` proposer goes past it.
    static let maxBlockTransactions: UInt32 = 3
    /// Enterprises the workload reports on.
    static let enterprises = 5

    let consortium: Consortium
    let keys: [SigningKey]
    let institution: SigningKey
    /// The registry authority: every third workload transaction is its registration of a new enterprise, with the
    /// legal representative's name as personal data beside the signed bytes.
    let registry: SigningKey
    /// Signed by a member institution, each refused by the real rules: dated past `Int64.max`, a signature that does
    /// not verify, a query record in another institution's name, a supervision query by a member.
    let poisoned: [Transaction]

    var suite: CryptoSuite { consortium.suite }
    var validators: ValidatorSet { consortium.validators }

    init(powers: [UInt64], blockIntervalMs: UInt64? = nil) throws {
        let suite = CryptoSuite.ed25519SHA256
        func key(_ n: Int) throws -> SigningKey {
            try suite.signingKey(privateKey: [UInt8](repeating: 0, count: 30) + [UInt8(n >> 8), UInt8(n & 0xFF)])
        }
        institution = try key(1_000)
        let regulator = try key(1_001)
        registry = try key(1_002)
        var records: [ValidatorRecord] = []
        var keys: [SigningKey] = []
        for (index, power) in powers.enumerated() {
            let signing = try key(index + 1)
            keys.append(signing)
            records.append(ValidatorRecord(id: try Self.validatorID(index), institution: "bank-a",
                                           publicKey: signing.publicKey.bytes.hexString, power: power,
                                           p2pAddress: "sim:\(index)", apiAddress: "sim:\(index)"))
        }
        var parameters = ConsensusParameters.defaults
        parameters.maxBlockTransactions = Self.maxBlockTransactions
        if let blockIntervalMs { parameters.blockIntervalMs = blockIntervalMs }
        let genesis = Genesis(chainId: Self.chainID, cryptoSuite: .ed25519SHA256, genesisTimeMs: Self.genesisTimeMs,
                              parameters: parameters,
                              institutions: [
                                  InstitutionRecord(id: "bank-a", name: "Bank A", roles: [.member],
                                                    publicKey: institution.publicKey.bytes.hexString),
                                  InstitutionRecord(id: "nfra", name: "Regulator", roles: [.regulator],
                                                    publicKey: regulator.publicKey.bytes.hexString),
                                  InstitutionRecord(id: "registry", name: "Registry", roles: [.registry],
                                                    publicKey: registry.publicKey.bytes.hexString),
                              ],
                              validators: records)
        consortium = try Consortium(genesis)
        self.keys = keys
        let institution = self.institution
        func sign(_ kind: TransactionKind, _ payload: [String: JSONValue], timeMs: UInt64, nonce: UInt64) throws -> Transaction {
            try Transaction.sign(TransactionBody(chainID: Self.chainID, kind: kind, reporter: "bank-a",
                                                 subject: try Self.subject(0), timeMs: timeMs, nonce: nonce,
                                                 payload: try Payload.canonicalize(.object(payload))), with: institution)
        }
        let future = try sign(.facilityOpened, Self.facility(0), timeMs: UInt64(Int64.max) + 1, nonce: 1)
        var forged = try sign(.facilityOpened, Self.facility(1), timeMs: Self.genesisTimeMs, nonce: 2)
        forged = Transaction(body: forged.body, signature: forged.signature.map { $0 ^ 0x01 })
        let impersonation = try sign(.queryRecord, [
            "institution": .string("nfra"), "purpose": .string("supervision"), "reportHeight": .integer(0),
        ], timeMs: Self.genesisTimeMs, nonce: 3)
        let supervision = try sign(.queryRecord, [
            "institution": .string("bank-a"), "purpose": .string("supervision"), "reportHeight": .integer(0),
        ], timeMs: Self.genesisTimeMs, nonce: 4)
        poisoned = [future, forged, impersonation, supervision]
    }

    /// `v00`, `v01`, ...: zero-padded so the validator set's id order is the index order.
    static func validatorID(_ index: Int) throws -> ValidatorID {
        try Name(index < 10 ? "v0\(index)" : "v\(index)")
    }

    static func subject(_ n: Int) throws -> USCC {
        try USCC.withCheckCharacter("91310000" + String(String(1_000_000_000 + n % enterprises).dropFirst()))
    }

    static func facility(_ n: UInt64) -> [String: JSONValue] {
        [
            "facilityId": .string("F-\(n)"), "type": .string("loan"),
            "amount": .object(["minor": .integer(Int64(n % 1_000 + 1) * 100_000), "currency": .string("CNY")]),
            "openedOn": .string("2025-01-10"), "maturesOn": .string("2027-01-10"), "security": .string("unsecured"),
            "classification": .string("normal"),
        ]
    }

    /// The workload's `n`th transaction, dated `timeMs`: a loan opened by the member institution, or (every third)
    /// a registration carrying personal data (``registration(_:timeMs:)``).
    func transaction(_ n: UInt64, timeMs: UInt64) throws -> Transaction {
        if n % 3 == 0 { return try registration(n, timeMs: timeMs) }
        return try Transaction.sign(TransactionBody(chainID: Self.chainID, kind: .facilityOpened, reporter: "bank-a",
                                             subject: try Self.subject(Int(n % 1_000)), timeMs: timeMs, nonce: n,
                                             payload: try Payload.canonicalize(.object(Self.facility(n)))),
                             with: institution)
    }

    /// A registration of the `n`th new enterprise by the registry, its legal representative's name kept off the
    /// signed bytes as personal data (a salt derived from `n`: the simulator draws no randomness of its own here).
    func registration(_ n: UInt64, timeMs: UInt64) throws -> Transaction {
        let subject = try USCC.withCheckCharacter("91320000" + String(String(1_000_000_000 + n % 900_000_000).dropFirst()))
        let payload: JSONValue = .object([
            "name": .string("模拟企业\(n)"), "legalForm": .string("limitedLiabilityCompany"),
            "legalRepresentative": .string("代表人\(n)"),
            "registeredCapital": .object(["minor": .integer(100_000_000), "currency": .string("CNY")]),
            "establishedOn": .string("2020-01-01"), "registrationAuthority": .string("模拟市场监督管理局"),
            "address": .string("模拟路\(n)号"), "industry": .string("C1762"),
        ])
        let salt = (0..<UInt64(PersonalData.saltBytes)).map { UInt8(truncatingIfNeeded: n &* 131 &+ $0 &* 7) }
        return try PersonalFields.sign(TransactionBody(chainID: Self.chainID, kind: .registration, reporter: "registry",
                                                       subject: subject, timeMs: timeMs, nonce: n, payload: []),
                                       payload: payload, salt: salt, suite: suite, key: registry)
    }
}
