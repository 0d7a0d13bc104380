import XinlianCrypto

/// What a transaction states. The numeric codes are part of the binary format.
public enum TransactionKind: String, Sendable, Codable, CaseIterable, Hashable, NamedValue {
    case registration, operatingStatus
    case facilityOpened, facilityUpdated, facilityClosed
    case collateralRegistered, collateralReleased
    case guaranteeIssued, guaranteeReleased
    case publicRecord
    case correction, dispute, disputeResolved
    case consentGranted, consentRevoked
    case queryRecord
    case governance
    /// A regulator's order to erase an enterprise's personal data (``PersonalData``) committed before it.
    case erasureOrder

    public var code: UInt8 {
        UInt8(Self.allCases.firstIndex(of: self) ?? 0) + 1
    }

    public init?(code: UInt8) {
        let index = Int(code) - 1
        guard Self.allCases.indices.contains(index) else { return nil }
        self = Self.allCases[index]
    }

    /// Governance is about the consortium; every other kind is about one enterprise.
    public var hasSubject: Bool { self != .governance }

    public static let valueName = "kind"

    /// A misspelt kind (in `xinlian submit` input, say) is refused with the list of kinds.
    public init(from decoder: any Decoder) throws {
        try self.init(decodingFrom: decoder)
    }
}

/// The signed part of a transaction.
public struct TransactionBody: Hashable, Sendable, CanonicalCodable {
    public static let version: UInt8 = 1

    public var chainID: ChainID
    public var kind: TransactionKind
    public var reporter: InstitutionID
    public var subject: USCC?
    /// Milliseconds since the Unix epoch, as the reporter claims.
    public var timeMs: UInt64
    public var nonce: UInt64
    /// Canonical JSON (UTF-8, sorted keys, no insignificant whitespace); see `docs/formats.md`.
    public var payload: [UInt8]

    public init(chainID: ChainID, kind: TransactionKind, reporter: InstitutionID, subject: USCC?,
                timeMs: UInt64, nonce: UInt64, payload: [UInt8]) {
        self.chainID = chainID
        self.kind = kind
        self.reporter = reporter
        self.subject = subject
        self.timeMs = timeMs
        self.nonce = nonce
        self.payload = payload
    }

    public func encode(to encoder: inout CanonicalEncoder) {
        encodeHead(to: &encoder)
        encoder.byteString(payload)
    }

    /// Every field before the payload, which comes last.
    func encodeHead(to encoder: inout CanonicalEncoder) {
        encoder.u8(Self.version)
        encoder.name(chainID)
        encoder.u8(kind.code)
        encoder.name(reporter)
        encoder.optional(subject) { $0.uscc($1) }
        encoder.u64(timeMs)
        encoder.u64(nonce)
    }

    /// The canonical bytes of every field before the payload.
    var headBytes: [UInt8] {
        var encoder = CanonicalEncoder(capacity: 128)
        encodeHead(to: &encoder)
        return encoder.bytes
    }

    public init(from decoder: inout CanonicalDecoder) throws(DecodingError) {
        let versionAt = decoder.offset
        let version = try decoder.u8("transaction.version")
        guard version == Self.version else {
            throw decoder.error("unsupported_version", "transaction.version", "version \(version)", at: versionAt)
        }
        chainID = try decoder.name("transaction.chainId")
        let kindAt = decoder.offset
        let kindCode = try decoder.u8("transaction.kind")
        guard let kind = TransactionKind(code: kindCode) else {
            throw decoder.error("invalid_tag", "transaction.kind",
                                "unknown kind \(kindCode); expected a code from 1 to \(TransactionKind.allCases.count)", at: kindAt)
        }
        self.kind = kind
        reporter = try decoder.name("transaction.reporter")
        let subjectAt = decoder.offset
        subject = try decoder.optional("transaction.subject") { (d: inout CanonicalDecoder) throws(DecodingError) in
            try d.uscc("transaction.subject")
        }
        guard (subject != nil) == kind.hasSubject else {
            throw decoder.error("invalid_value", "transaction.kind",
                                kind.hasSubject ? "kind \(kind) needs a subject" : "governance has no subject", at: subjectAt)
        }
        timeMs = try decoder.u64("transaction.time")
        nonce = try decoder.u64("transaction.nonce")
        payload = try decoder.byteString("transaction.payload", limit: Limits.payloadBytes)
    }

    /// The bytes a reporter signs: a domain tag, then the canonical body.
    public var signingBytes: [UInt8] { [Domain.signTransaction] + canonicalBytes }
}

/// A signed transaction, with the canonical bytes of its body's fields before the payload kept (as decoded, or
/// encoded once when built) so that its id, its signature check and its own encoding never encode the body again.
/// The payload itself is not kept twice: memory bounds that count a transaction's bytes stay true.
///
/// ``personal`` is the personal data its payload commits to (``PersonalData``), carried beside it while this node
/// holds it: it is not part of the canonical encoding, the id, the Merkle leaf or equality.
public struct Transaction: Hashable, Sendable, CanonicalCodable {
    public let body: TransactionBody
    public let signature: [UInt8]
    public var personal: PersonalData?
    /// The canonical bytes of the body's fields before the payload (``TransactionBody/headBytes``); the canonical
    /// encoding is one-to-one, so equal head bytes and payloads are equal bodies.
    private let headBytes: [UInt8]

    public init(body: TransactionBody, signature: [UInt8], personal: PersonalData? = nil) {
        self.body = body
        self.signature = signature
        self.personal = personal
        headBytes = body.headBytes
    }

    /// The payload's length prefix (its byte-string encoding's first four bytes).
    private var payloadPrefix: [UInt8] {
        let count = UInt32(truncatingIfNeeded: body.payload.count)
        return [UInt8(truncatingIfNeeded: count >> 24), UInt8(truncatingIfNeeded: count >> 16),
                UInt8(truncatingIfNeeded: count >> 8), UInt8(truncatingIfNeeded: count)]
    }

    /// `body.canonicalBytes`, from the kept head.
    public var bodyBytes: [UInt8] { headBytes + payloadPrefix + body.payload }

    /// Signs `body` with the reporter's key.
    public static func sign(_ body: TransactionBody, with key: SigningKey,
                            personal: PersonalData? = nil) throws(CryptoError) -> Transaction {
        Transaction(body: body, signature: try key.sign(body.signingBytes), personal: personal)
    }

    public static func == (lhs: Transaction, rhs: Transaction) -> Bool {
        lhs.headBytes == rhs.headBytes && lhs.body.payload == rhs.body.payload && lhs.signature == rhs.signature
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(headBytes)
        hasher.combine(body.payload)
        hasher.combine(signature)
    }

    /// The same transaction without its personal data.
    public var withoutPersonalData: Transaction {
        var copy = self
        copy.personal = nil
        return copy
    }

    public func encode(to encoder: inout CanonicalEncoder) {
        encoder.encoded(headBytes)
        encoder.byteString(body.payload)
        encoder.byteString(signature)
    }

    public init(from decoder: inout CanonicalDecoder) throws(DecodingError) {
        let start = decoder.offset
        body = try TransactionBody(from: &decoder)
        // The payload's byte string (a four-byte length, then the payload) ends the body just read.
        headBytes = decoder.bytesRead(from: start, to: decoder.offset - 4 - body.payload.count)
        signature = try decoder.byteString("transaction.signature", limit: Limits.signatureBytes)
        personal = nil
    }

    /// The transaction's identity: `H(0x10 || body)`. Two signatures over the same
    /// body are the same transaction, so a statement cannot be replayed.
    public func id(_ suite: CryptoSuite) -> Hash32 {
        suite.hash(tag: Domain.transactionID, headBytes, payloadPrefix, body.payload)
    }

    /// The bytes its reporter signed (``TransactionBody/signingBytes``).
    public var signingBytes: [UInt8] { [Domain.signTransaction] + bodyBytes }

    public func hasValidSignature(_ key: PublicKey) -> Bool {
        key.isValidSignature(signature, for: signingBytes)
    }
}
