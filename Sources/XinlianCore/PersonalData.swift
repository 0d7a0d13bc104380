import Foundation
import XinlianCrypto

/// Natural persons' fields of a statement, kept off the signed bytes so that they can be erased
/// (`docs/security.md`, "Erasable personal data").
///
/// The signed payload holds only a commitment, `"personal": "<hex>"` with `H(0x17 ‖ personal data)` over the
/// canonical encoding below; the personal data travels beside its transaction (API submissions, gossip, proposals,
/// sync, exports) and is stored beside the block, where it can be deleted while the chain, the audit and every
/// proof still verify. `fields` is canonical JSON: an object holding only the statement's personal fields, at the
/// paths they would have in the payload (the credit model says which fields those are). The random `salt` keeps a
/// commitment from being tested against guessed names.
public struct PersonalData: Hashable, Sendable, CanonicalCodable {
    public static let version: UInt8 = 1
    public static let saltBytes = 32
    /// Largest `fields`.
    public static let fieldsLimit = 16 * 1024
    /// Largest encoding.
    public static let encodedLimit = fieldsLimit + saltBytes + 16
    /// The payload key holding the commitment.
    public static let payloadKey = "personal"

    public var salt: [UInt8]
    public var fields: [UInt8]

    public init(salt: [UInt8], fields: [UInt8]) {
        self.salt = salt
        self.fields = fields
    }

    public func encode(to encoder: inout CanonicalEncoder) {
        encoder.u8(Self.version)
        encoder.byteString(salt)
        encoder.byteString(fields)
    }

    public init(from decoder: inout CanonicalDecoder) throws(DecodingError) {
        let versionAt = decoder.offset
        let version = try decoder.u8("personal.version")
        guard version == Self.version else {
            throw decoder.error("unsupported_version", "personal.version", "version \(version)", at: versionAt)
        }
        let saltAt = decoder.offset
        salt = try decoder.byteString("personal.salt", limit: Self.saltBytes)
        guard salt.count == Self.saltBytes else {
            throw decoder.error("invalid_value", "personal.salt", "salt must be \(Self.saltBytes) bytes, not \(salt.count)", at: saltAt)
        }
        fields = try decoder.byteString("personal.fields", limit: Self.fieldsLimit)
    }

    /// What the signed payload's `personal` key holds.
    public func commitment(_ suite: CryptoSuite) -> Hash32 {
        suite.hash(tag: Domain.personalData, canonicalBytes)
    }
}

/// The personal data of a list of transactions as it travels after them on the wire: a count, then for each
/// transaction that has some, its position (`u32`, increasing) and its ``PersonalData``.
public enum PersonalSidecars {
    public static func encode(_ transactions: [Transaction], to encoder: inout CanonicalEncoder) {
        let carried = transactions.enumerated().compactMap { index, transaction in transaction.personal.map { (index, $0) } }
        encoder.list(carried) { encoder, entry in
            encoder.u32(UInt32(truncatingIfNeeded: entry.0))
            entry.1.encode(to: &encoder)
        }
    }

    /// Reads the sidecars written by ``encode(_:to:)`` and attaches each to its transaction. Positions must be
    /// increasing and within `transactions`; together the sidecars may take at most `byteLimit` bytes.
    public static func attach(to transactions: inout [Transaction], from decoder: inout CanonicalDecoder,
                              field: String, byteLimit: Int = Limits.blockBytes) throws(DecodingError) {
        let start = decoder.offset
        let countAt = decoder.offset
        let rawCount = try decoder.u32("\(field).count")
        guard UInt64(rawCount) <= UInt64(transactions.count) else {
            throw decoder.error("invalid_value", "\(field).count", "\(rawCount) sidecars for \(transactions.count) transactions", at: countAt)
        }
        let count = Int(rawCount)
        var previous = -1
        for _ in 0..<count {
            let indexAt = decoder.offset
            let rawIndex = try decoder.u32("\(field).index")
            guard UInt64(rawIndex) < UInt64(transactions.count) else {
                throw decoder.error("invalid_value", "\(field).index", "position \(rawIndex) past \(transactions.count) transactions", at: indexAt)
            }
            let index = Int(rawIndex)
            guard index > previous else {
                throw decoder.error("invalid_value", "\(field).index", "position \(index) is not after \(previous)", at: indexAt)
            }
            transactions[index].personal = try PersonalData(from: &decoder)
            previous = index
            guard decoder.offset - start <= byteLimit else {
                throw decoder.error("too_large", field, "personal data past \(byteLimit) bytes", at: indexAt)
            }
        }
    }

    /// What a proposal signs about the personal data travelling with its block: `H(0x18 ‖ sidecars)` over the
    /// encoding above, nil when the block carries none. A relayer that strips or swaps personal data then sends a
    /// proposal whose signature no longer covers what it carries, and is refused as the forger it is; validity never
    /// depends on bytes the proposer did not sign.
    public static func digest(_ transactions: [Transaction], suite: CryptoSuite) -> Hash32? {
        guard transactions.contains(where: { $0.personal != nil }) else { return nil }
        var encoder = CanonicalEncoder()
        encode(transactions, to: &encoder)
        return suite.hash(tag: Domain.personalSidecars, encoder.bytes)
    }

    /// Bytes the personal data of `transactions` takes on the wire.
    public static func byteCount(_ transactions: [Transaction]) -> Int {
        transactions.reduce(4) { total, transaction in
            total + (transaction.personal.map { 4 + $0.canonicalBytes.count } ?? 0)
        }
    }
}

extension Transaction {
    /// Bytes the transaction takes in a block's budget: its canonical encoding and the personal data carried with it.
    public var carriedBytes: Int {
        canonicalBytes.count + (personal.map { 4 + $0.canonicalBytes.count } ?? 0)
    }
}

extension Transaction {
    /// The personal data commitment the payload names (`"personal"`), if any.
    public var personalCommitment: Hash32? {
        // Most statements name no person: a byte search spares parsing their payload.
        guard mayCommitToPersonalData else { return nil }
        guard let value = try? JSONParser.parse(body.payload),
              case .object(let members) = value, case .string(let hex)? = members[PersonalData.payloadKey] else { return nil }
        return Hash32(hex: hex)
    }

    /// False when the payload certainly names no personal data commitment (its bytes do not contain the key): a
    /// byte search that spares decoding every payload of a block to find the few that do.
    var mayCommitToPersonalData: Bool {
        let needle = Array("\"\(PersonalData.payloadKey)\"".utf8)
        let payload = body.payload
        guard payload.count >= needle.count, let first = needle.first else { return false }
        var index = 0
        while index <= payload.count - needle.count {
            if payload[index] == first, payload[index..<(index + needle.count)].elementsEqual(needle) { return true }
            index += 1
        }
        return false
    }

    /// Whether the personal data carried and the payload's commitment agree: both absent, or the data hashing to the
    /// commitment. What an honest node forwards always agrees.
    public func carriesMatchingPersonalData(_ suite: CryptoSuite) -> Bool {
        switch (personal, personalCommitment) {
        case (nil, nil): true
        case (let data?, let commitment?): data.commitment(suite) == commitment
        default: false
        }
    }

    /// This transaction, keeping its personal data only when it hashes to the payload's commitment: what a peer
    /// attached to a transaction that commits to nothing, or to other data, is dropped rather than kept or passed on.
    public func keepingMatchingPersonalData(_ suite: CryptoSuite) -> Transaction {
        guard let personal else { return self }
        guard let commitment = personalCommitment, personal.commitment(suite) == commitment else { return withoutPersonalData }
        return self
    }
}
