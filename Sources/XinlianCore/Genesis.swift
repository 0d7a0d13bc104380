import XinlianCrypto

/// What an institution may do. Role rules per transaction kind come with the credit model.
public enum InstitutionRole: String, Sendable, Codable, CaseIterable, Hashable, NamedValue {
    /// A lender: bank, microcredit company, guarantor, factoring or leasing company.
    case member
    /// A registry authority: attests registration and operating status.
    case registry
    /// A credit bureau.
    case bureau
    /// Regulator: reads everything, may record public records.
    case regulator
    /// Auditor: reads everything, submits nothing.
    case auditor

    public static let valueName = "role"

    /// A misspelt role (in a genesis file) is refused with the list of roles.
    public init(from decoder: any Decoder) throws {
        try self.init(decodingFrom: decoder)
    }
}

/// A member institution as genesis names it.
public struct InstitutionRecord: Codable, Sendable, Hashable {
    public var id: InstitutionID
    public var name: String
    public var roles: [InstitutionRole]
    /// Hex of the institution's signing public key in the consortium's suite.
    public var publicKey: String

    public init(id: InstitutionID, name: String, roles: [InstitutionRole], publicKey: String) {
        self.id = id
        self.name = name
        self.roles = roles
        self.publicKey = publicKey
    }
}

/// A consensus validator as genesis names it.
public struct ValidatorRecord: Codable, Sendable, Hashable {
    public var id: ValidatorID
    /// The member institution that runs it.
    public var institution: InstitutionID
    /// Hex of the validator's consensus public key (distinct from the institution's key).
    public var publicKey: String
    public var power: UInt64
    /// `host:port` for peer-to-peer TCP.
    public var p2pAddress: String
    /// `host:port` of the HTTP API.
    public var apiAddress: String
    /// SHA-256 hex of the node's TLS public key (SubjectPublicKeyInfo DER), when mutual TLS is configured.
    public var tlsKeySHA256: String?

    public init(id: ValidatorID, institution: InstitutionID, publicKey: String, power: UInt64,
                p2pAddress: String, apiAddress: String, tlsKeySHA256: String? = nil) {
        self.id = id
        self.institution = institution
        self.publicKey = publicKey
        self.power = power
        self.p2pAddress = p2pAddress
        self.apiAddress = apiAddress
        self.tlsKeySHA256 = tlsKeySHA256
    }
}

/// Consensus and ledger parameters fixed in genesis.
public struct ConsensusParameters: Codable, Sendable, Hashable {
    public var maxBlockBytes: UInt32
    public var maxBlockTransactions: UInt32
    /// An empty block is produced after this long without work; 0 means never.
    public var heartbeatIntervalMs: UInt64
    /// Longest a proposer waits to fill a block once work is pending.
    public var blockIntervalMs: UInt64
    /// How long negative information stays in reports after it is settled.
    public var negativeInformationRetentionYears: UInt32
    /// Days an institution has to resolve a dispute before it is flagged overdue.
    public var disputeDeadlineDays: UInt32
    /// Days personal data (``PersonalData``) is kept after the block that committed it; every node erases it at the
    /// first block whose time is past that. 0 keeps it until an erasure order.
    public var personalDataRetentionDays: UInt32

    public static let defaults = ConsensusParameters(
        maxBlockBytes: 4 * 1024 * 1024, maxBlockTransactions: 5_000, heartbeatIntervalMs: 0, blockIntervalMs: 50,
        negativeInformationRetentionYears: 5, disputeDeadlineDays: 20, personalDataRetentionDays: 5 * 365)

    public init(maxBlockBytes: UInt32, maxBlockTransactions: UInt32, heartbeatIntervalMs: UInt64, blockIntervalMs: UInt64,
                negativeInformationRetentionYears: UInt32, disputeDeadlineDays: UInt32,
                personalDataRetentionDays: UInt32 = ConsensusParameters.defaultPersonalDataRetentionDays) {
        self.maxBlockBytes = maxBlockBytes
        self.maxBlockTransactions = maxBlockTransactions
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.blockIntervalMs = blockIntervalMs
        self.negativeInformationRetentionYears = negativeInformationRetentionYears
        self.disputeDeadlineDays = disputeDeadlineDays
        self.personalDataRetentionDays = personalDataRetentionDays
    }

    public static let defaultPersonalDataRetentionDays: UInt32 = 5 * 365

    private enum CodingKeys: String, CodingKey {
        case maxBlockBytes, maxBlockTransactions, heartbeatIntervalMs, blockIntervalMs, negativeInformationRetentionYears,
             disputeDeadlineDays, personalDataRetentionDays
    }

    /// `personalDataRetentionDays` came later: a genesis without it keeps personal data five years.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        maxBlockBytes = try container.decode(UInt32.self, forKey: .maxBlockBytes)
        maxBlockTransactions = try container.decode(UInt32.self, forKey: .maxBlockTransactions)
        heartbeatIntervalMs = try container.decode(UInt64.self, forKey: .heartbeatIntervalMs)
        blockIntervalMs = try container.decode(UInt64.self, forKey: .blockIntervalMs)
        negativeInformationRetentionYears = try container.decode(UInt32.self, forKey: .negativeInformationRetentionYears)
        disputeDeadlineDays = try container.decode(UInt32.self, forKey: .disputeDeadlineDays)
        personalDataRetentionDays = try container.decodeIfPresent(UInt32.self, forKey: .personalDataRetentionDays)
            ?? Self.defaultPersonalDataRetentionDays
    }

    /// When personal data committed in a block at `committedMs` is erased: the first block at or past the
    /// returned time erases it (nil: never by time).
    public func personalDataErasureMs(committedMs: UInt64) -> UInt64? {
        guard personalDataRetentionDays > 0 else { return nil }
        let (sum, overflow) = committedMs.addingReportingOverflow(UInt64(personalDataRetentionDays) &* 86_400_000)
        return overflow ? nil : sum
    }
}

/// The file that fixes a consortium: its chain id, crypto suite, parameters, members and validators.
public struct Genesis: Codable, Sendable, Hashable {
    public var chainId: ChainID
    public var cryptoSuite: CryptoSuiteID
    /// Milliseconds since the Unix epoch.
    public var genesisTimeMs: UInt64
    public var parameters: ConsensusParameters
    public var institutions: [InstitutionRecord]
    public var validators: [ValidatorRecord]

    public init(chainId: ChainID, cryptoSuite: CryptoSuiteID, genesisTimeMs: UInt64, parameters: ConsensusParameters,
                institutions: [InstitutionRecord], validators: [ValidatorRecord]) {
        self.chainId = chainId
        self.cryptoSuite = cryptoSuite
        self.genesisTimeMs = genesisTimeMs
        self.parameters = parameters
        self.institutions = institutions
        self.validators = validators
    }

    public var suite: CryptoSuite { CryptoSuite(cryptoSuite) }

    /// The canonical binary encoding of every field, in declaration order.
    public var canonicalBytes: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.u8(1)
        encoder.name(chainId)
        encoder.u8(cryptoSuite.code)
        encoder.u64(genesisTimeMs)
        encodeParameters(&encoder)
        encoder.list(institutions) { encoder, item in
            encoder.name(item.id)
            encoder.string(item.name)
            encoder.list(item.roles) { $0.string($1.rawValue) }
            encoder.string(item.publicKey.lowercased())
        }
        encoder.list(validators) { encoder, item in
            encoder.name(item.id)
            encoder.name(item.institution)
            encoder.string(item.publicKey.lowercased())
            encoder.u64(item.power)
            encoder.string(item.p2pAddress)
            encoder.string(item.apiAddress)
            encoder.optional(item.tlsKeySHA256) { $0.string($1.lowercased()) }
        }
        return encoder.bytes
    }

    private func encodeParameters(_ encoder: inout CanonicalEncoder) {
        encoder.u32(parameters.maxBlockBytes)
        encoder.u32(parameters.maxBlockTransactions)
        encoder.u64(parameters.heartbeatIntervalMs)
        encoder.u64(parameters.blockIntervalMs)
        encoder.u32(parameters.negativeInformationRetentionYears)
        encoder.u32(parameters.disputeDeadlineDays)
        encoder.u32(parameters.personalDataRetentionDays)
    }

    /// `H(0x13 || genesis)`: the previous hash of block 1.
    public var hash: Hash32 { suite.hash(tag: Domain.genesis, canonicalBytes) }
}

/// A checked genesis: keys parsed, ids unique, the validator set built.
public struct Consortium: Sendable {
    public let genesis: Genesis
    public let suite: CryptoSuite
    public let genesisHash: Hash32
    public let validators: ValidatorSet
    public let institutionKeys: [InstitutionID: PublicKey]
    public let institutionRoles: [InstitutionID: Set<InstitutionRole>]

    public var chainID: ChainID { genesis.chainId }

    public init(_ genesis: Genesis) throws(VerificationError) {
        let suite = genesis.suite
        guard !genesis.validators.isEmpty else {
            throw VerificationError(code: "invalid_genesis", message: "genesis names no validators")
        }
        try Self.checkParameters(genesis.parameters)
        var keys: [InstitutionID: PublicKey] = [:]
        var roles: [InstitutionID: Set<InstitutionRole>] = [:]
        for institution in genesis.institutions {
            guard keys[institution.id] == nil else {
                throw VerificationError(code: "invalid_genesis", message: "institution \(institution.id) listed twice")
            }
            keys[institution.id] = try Self.parseKey(institution.publicKey, suite: suite, owner: "institution \(institution.id)")
            roles[institution.id] = Set(institution.roles)
        }
        var members: [ValidatorSet.Member] = []
        for validator in genesis.validators {
            guard keys[validator.institution] != nil else {
                let known = genesis.institutions.map(\.id.value).joined(separator: ", ")
                throw VerificationError(code: "invalid_genesis",
                                        message: "validator \(validator.id) names unknown institution \(validator.institution); "
                                            + "genesis lists: \(known)")
            }
            let key = try Self.parseKey(validator.publicKey, suite: suite, owner: "validator \(validator.id)")
            members.append(ValidatorSet.Member(id: validator.id, publicKey: key, power: validator.power))
        }
        self.genesis = genesis
        self.suite = suite
        self.genesisHash = genesis.hash
        self.validators = try ValidatorSet(members, suite: suite)
        self.institutionKeys = keys
        self.institutionRoles = roles
    }

    static func checkParameters(_ parameters: ConsensusParameters) throws(VerificationError) {
        guard (1...UInt32(Limits.blockTransactions)).contains(parameters.maxBlockTransactions) else {
            throw VerificationError(code: "invalid_genesis",
                                    message: "maxBlockTransactions must be between 1 and \(Limits.blockTransactions)")
        }
        let smallest = UInt32(Limits.transactionBytes), largest = UInt32(Limits.blockBytes)
        guard (smallest...largest).contains(parameters.maxBlockBytes) else {
            throw VerificationError(code: "invalid_genesis",
                                    message: "maxBlockBytes must be between \(smallest) (one largest transaction) and \(largest)")
        }
    }

    static func parseKey(_ hex: String, suite: CryptoSuite, owner: String) throws(VerificationError) -> PublicKey {
        guard let bytes = [UInt8](hex: hex) else {
            throw VerificationError(code: "invalid_genesis", message: "\(owner): public key is not hex")
        }
        do { return try suite.publicKey(bytes) } catch {
            throw VerificationError(code: "invalid_genesis", message: "\(owner): \(error.message)")
        }
    }
}

/// The validators in force at a height, sorted by id.
public struct ValidatorSet: Sendable, Hashable {
    public struct Member: Sendable, Hashable {
        public var id: ValidatorID
        public var publicKey: PublicKey
        public var power: UInt64

        public init(id: ValidatorID, publicKey: PublicKey, power: UInt64) {
            self.id = id
            self.publicKey = publicKey
            self.power = power
        }
    }

    /// Voting power is capped so sums never overflow.
    public static let powerLimit: UInt64 = 1 << 40

    public let members: [Member]
    public let totalPower: UInt64
    public let hash: Hash32
    private let index: [ValidatorID: Int]

    public init(_ members: [Member], suite: CryptoSuite) throws(VerificationError) {
        let sorted = members.sorted { $0.id < $1.id }
        var index: [ValidatorID: Int] = [:]
        var total: UInt64 = 0
        for (position, member) in sorted.enumerated() {
            guard index[member.id] == nil else {
                throw VerificationError(code: "invalid_genesis", message: "validator \(member.id) listed twice")
            }
            guard member.power > 0, member.power <= Self.powerLimit else {
                throw VerificationError(code: "invalid_genesis", message: "validator \(member.id) has power out of range")
            }
            index[member.id] = position
            total += member.power
        }
        var encoder = CanonicalEncoder()
        encoder.list(sorted) { encoder, member in
            encoder.name(member.id)
            encoder.byteString(member.publicKey.bytes)
            encoder.u64(member.power)
        }
        self.members = sorted
        self.totalPower = total
        self.index = index
        self.hash = suite.hash(tag: Domain.validatorSet, encoder.bytes)
    }

    public func member(_ id: ValidatorID) -> Member? { index[id].map { members[$0] } }

    /// True when `power` is more than two thirds of the total.
    public func isQuorum(_ power: UInt64) -> Bool { power * 3 > totalPower * 2 }
    /// More than a third of the power: at least one honest validator among them, when fewer than a third are faulty.
    public func exceedsOneThird(_ power: UInt64) -> Bool { power * 3 > totalPower }
    /// The summed power of `ids` (each counted once; ids outside the set count nothing).
    public func power(of ids: some Sequence<ValidatorID>) -> UInt64 {
        Set(ids).reduce(0) { $0 + (member($1)?.power ?? 0) }
    }
}
