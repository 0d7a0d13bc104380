import XinlianCore
import XinlianCrypto

/// A generated statement. `payload` holds placeholder ids where it names earlier samples; `references` says which.
public struct SampleTransaction: Sendable, Hashable {
    public var kind: TransactionKind
    public var subject: USCC
    public var payload: JSONValue
    public var reporterRole: InstitutionRole
    /// One of ``SampleGenerator/institutions`` holding `reporterRole`.
    public var reporter: InstitutionID
    /// Suggested transaction time (ms); samples come in time order.
    public var timeMs: UInt64
    /// Payload fields that must hold the id of an earlier sample.
    public var references: [SampleReference]

    /// The payload with every reference replaced by `ids[target]`.
    public func resolvedPayload(ids: [Hash32]) -> JSONValue {
        references.reduce(payload) { value, reference in
            guard ids.indices.contains(reference.target) else { return value }
            return value.replacing(reference.field, with: .string(ids[reference.target].hex))
        }
    }
}

/// A statement ready to sign: its body and the personal data its payload commits to.
public struct UnsignedStatement: Sendable, Hashable {
    public var body: TransactionBody
    public var personal: PersonalData?

    public init(body: TransactionBody, personal: PersonalData?) {
        self.body = body
        self.personal = personal
    }

    public func sign(with key: SigningKey) throws(CryptoError) -> Transaction {
        try Transaction.sign(body, with: key, personal: personal)
    }
}

/// A payload field (top-level key) holding the id of the sample at index `target`.
public struct SampleReference: Sendable, Hashable {
    public var field: String
    public var target: Int
}

extension JSONValue {
    func replacing(_ key: String, with value: JSONValue) -> JSONValue {
        guard case .object(var members) = self else { return self }
        members[key] = value
        return .object(members)
    }
}

/// Deterministic, realistic sample ledgers: the same seed gives the same statements.
public struct SampleGenerator: Sendable {
    /// The institutions samples are reported by, with their roles.
    public static let institutions: [(id: InstitutionID, roles: [InstitutionRole])] = [
        ("icbc-zhejiang", [.member]), ("ccb-hangzhou", [.member]), ("nbcb", [.member]),
        ("tailong-bank", [.member]), ("zj-leasing", [.member]),
        ("samr-zhejiang", [.registry]), ("nfra-zhejiang", [.regulator]), ("pboc-crc", [.bureau]),
    ]

    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// Every kind but governance for `enterprises` enterprises (the first enterprise's story covers every kind),
    /// in time order, references pointing backwards.
    public func transactions(enterprises: Int) -> [SampleTransaction] {
        var random = SplitMix64(seed: seed)
        let subjects = (0..<max(0, enterprises)).compactMap { _ in Self.uscc(&random) }
        var events: [SampleEvent] = []
        for (number, subject) in subjects.enumerated() {
            let guarantor = subjects.count > 1 ? subjects[(number + 1) % subjects.count] : Self.guaranteeCompany
            var story = Story(subject: subject, guarantor: guarantor, number: number, firstKey: events.count,
                              random: SplitMix64(seed: random.next()))
            story.tell()
            events += story.events
        }
        let ordered = events.sorted { ($0.timeMs, $0.key) < ($1.timeMs, $1.key) }
        var indexOfKey: [Int: Int] = [:]
        for (index, event) in ordered.enumerated() { indexOfKey[event.key] = index }
        return ordered.map { event in
            SampleTransaction(kind: event.kind, subject: event.subject, payload: event.payload, reporterRole: event.role,
                              reporter: event.reporter, timeMs: event.timeMs,
                              references: event.references.compactMap { field, key in
                                  indexOfKey[key].map { SampleReference(field: field, target: $0) }
                              })
        }
    }

    /// The samples as transaction bodies for `chainID`, references resolved to real transaction ids under `suite`,
    /// personal fields moved to personal data (``PersonalFields``; salts drawn from the seed: sample data is not
    /// secret). `reporter` maps each sample institution to the consortium's own (it must map one to one per role,
    /// so that corrections still come from the original reporter); `nonceBase` keeps runs with different bases
    /// distinct.
    public func bodies(enterprises: Int, chainID: ChainID, suite: CryptoSuite,
                       reporter: (InstitutionID) -> InstitutionID = { $0 },
                       nonceBase: UInt64 = 0) throws(VerificationError) -> [UnsignedStatement] {
        var ids: [Hash32] = []
        var bodies: [UnsignedStatement] = []
        var salts = SplitMix64(seed: seed ^ 0x5A17_5A17_5A17_5A17 ^ nonceBase)
        for (index, sample) in transactions(enterprises: enterprises).enumerated() {
            let (payload, personal) = try PersonalFields.separate(sample.resolvedPayload(ids: ids),
                                                                 salt: PersonalFields.salt(using: &salts), suite: suite)
            let body = TransactionBody(chainID: chainID, kind: sample.kind, reporter: reporter(sample.reporter),
                                       subject: sample.subject, timeMs: sample.timeMs, nonce: nonceBase &+ UInt64(index),
                                       payload: payload)
            ids.append(Transaction(body: body, signature: []).id(suite))
            bodies.append(UnsignedStatement(body: body, personal: personal))
        }
        return bodies
    }

    /// A guarantee company standing surety when there is only one enterprise.
    static let guaranteeCompany = try? USCC.withCheckCharacter("91330000MA2GUAR01")

    static let regions = ["330106", "330102", "330203", "330482", "150202", "110105", "440305", "310115", "650102", "510107"]

    static func uscc(_ random: inout SplitMix64) -> USCC? {
        let region = regions[random.below(regions.count)]
        let body = (0..<9).map { _ in USCC.alphabet[random.below(USCC.alphabet.count)] }
        return try? USCC.withCheckCharacter("91" + region + String(decoding: body, as: UTF8.self))
    }
}

/// SplitMix64: a small, seeded, portable generator for sample data.
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

    mutating func below(_ bound: Int) -> Int { bound <= 1 ? 0 : Int(next() % UInt64(bound)) }
    mutating func range(_ range: ClosedRange<Int>) -> Int { range.lowerBound + below(range.count) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

struct SampleEvent {
    var key: Int
    var kind: TransactionKind
    var subject: USCC
    var payload: JSONValue
    var role: InstitutionRole
    var reporter: InstitutionID
    var timeMs: UInt64
    var references: [(field: String, key: Int)]
}
