import Foundation
import XinlianCore
import XinlianCrypto

/// Which fields of a statement identify a natural person, and how a signed payload and its ``PersonalData`` fit
/// together (`docs/formats.md`, "Personal data").
///
/// By shape, in any object of a payload (so a correction restating a registration is covered like the
/// registration): `legalRepresentative` is personal; in an object whose `legalForm` is `soleProprietorship`,
/// `name` and `address` are personal too (an individual business is named after, and registered at, its holder).
/// A signed payload holds none of them; it holds `"personal": "<hex commitment>"` instead, and the personal data's
/// `fields` hold exactly them, at the same paths.
public enum PersonalFields {
    static let alwaysPersonal: Set<String> = ["legalRepresentative"]
    static let soleProprietorPersonal: Set<String> = ["name", "address"]
    /// In a registration-shaped object (one with `legalForm`), these must be present once personal data is joined.
    static let registrationRequired: Set<String> = ["name", "legalRepresentative", "address"]

    /// Splits a full payload into the part that is signed (without the commitment) and the personal part (nil when
    /// the payload has no personal field).
    public static func split(_ value: JSONValue) -> (public: JSONValue, personal: JSONValue?) {
        guard case .object(let members) = value else { return (value, nil) }
        var kept: [String: JSONValue] = [:]
        var personal: [String: JSONValue] = [:]
        let soleProprietor = members["legalForm"] == .string("soleProprietorship")
        for (key, member) in members {
            if alwaysPersonal.contains(key) || (soleProprietor && soleProprietorPersonal.contains(key)) {
                personal[key] = member
                continue
            }
            let (inner, innerPersonal) = split(member)
            kept[key] = inner
            if let innerPersonal { personal[key] = innerPersonal }
        }
        return (.object(kept), personal.isEmpty ? nil : .object(personal))
    }

    /// Whether ``split(_:)`` would find a personal field in `value`, without building the split (reports and
    /// admission ask this of every payload).
    static func containsPersonal(_ value: JSONValue) -> Bool {
        guard case .object(let members) = value else { return false }
        let soleProprietor = members["legalForm"] == .string("soleProprietorship")
        for (key, member) in members {
            if alwaysPersonal.contains(key) || (soleProprietor && soleProprietorPersonal.contains(key)) { return true }
            if containsPersonal(member) { return true }
        }
        return false
    }

    /// Joins a personal part into a signed payload (objects merged key by key; a key in both is refused).
    static func merge(_ value: JSONValue, _ personal: JSONValue, path: String) throws(CreditError) -> JSONValue {
        guard case .object(var members) = value, case .object(let additions) = personal else {
            throw CreditError(code: "personal_data_mismatch", path: path, rule: "personal data must mirror objects of the payload")
        }
        for (key, addition) in additions {
            if let existing = members[key] {
                members[key] = try merge(existing, addition, path: "\(path).\(key)")
            } else {
                members[key] = addition
            }
        }
        return .object(members)
    }

    /// Builds a signed payload and its personal data from a full payload: the personal fields move to the personal
    /// data (with `salt`, 32 random bytes the caller draws) and the payload gets their commitment.
    public static func separate(_ payload: JSONValue, salt: [UInt8],
                                suite: CryptoSuite) throws(VerificationError) -> (payload: [UInt8], personal: PersonalData?) {
        let (kept, personal) = split(payload)
        guard let personal, case .object(var members) = kept else { return (try Payload.canonicalize(payload), nil) }
        let data = PersonalData(salt: salt, fields: try Payload.canonicalize(personal))
        members[PersonalData.payloadKey] = .string(data.commitment(suite).hex)
        return (try Payload.canonicalize(.object(members)), data)
    }

    /// What a statement's payload is with its personal data, as far as this node can tell.
    public enum Joined: Sendable, Hashable {
        /// No personal data: the payload is the statement.
        case none
        /// The personal data is here and matches the commitment.
        case present
        /// The payload commits to personal data that is not here (erased, or never received).
        case absent
    }

    /// The payload value of `transaction` with its personal data joined, and whether it was.
    ///
    /// `required`: the personal data must be here and match (admission, proposals, gossip: every way in checks
    /// what the API checks); otherwise a missing or mismatched one leaves the payload without its personal fields
    /// (committed statements whose personal data was erased).
    public static func join(_ transaction: Transaction, suite: CryptoSuite,
                            required: Bool) throws(CreditError) -> (value: JSONValue, joined: Joined) {
        let root = transaction.body.kind.rawValue
        let value: JSONValue
        do { value = try JSONParser.parse(transaction.body.payload) } catch {
            throw CreditError(code: "invalid_payload", path: root, rule: "must be a JSON object")
        }
        guard case .object(var members) = value else {
            throw CreditError(code: "invalid_payload", path: root, rule: "must be a JSON object")
        }
        let commitment = members.removeValue(forKey: PersonalData.payloadKey)
        let signed = JSONValue.object(members)
        // On every path, certified blocks included: this reads only signed bytes.
        if containsPersonal(signed) {
            throw CreditError(code: "personal_data_in_clear", path: root,
                              rule: "natural persons' fields (legalRepresentative; a sole proprietorship's name and address) must travel as personal data, not in the signed payload")
        }
        guard let commitment else {
            if required, transaction.personal != nil {
                throw CreditError(code: "personal_data_mismatch", path: root, rule: "carries personal data its payload does not commit to")
            }
            try requireRegistrationFields(signed, path: root, personalJoined: true)
            return (signed, .none)
        }
        guard case .string(let hex) = commitment, let expected = Hash32(hex: hex), hex == expected.hex else {
            throw CreditError(code: "invalid_value", path: "\(root).\(PersonalData.payloadKey)",
                              rule: "must be the personal data's commitment, 64 lower-case hex characters")
        }
        guard let personal = transaction.personal, personal.commitment(suite) == expected,
              let fields = try? JSONParser.parse(personal.fields),
              Payload.isCanonical(personal.fields) else {
            if required {
                let missing = transaction.personal == nil
                throw CreditError(code: missing ? "personal_data_missing" : "personal_data_mismatch", path: root,
                                  rule: missing ? "the payload commits to personal data that was not sent with it"
                                      : "the personal data sent does not match the payload's commitment")
            }
            // Without the personal data, what is not personal must still be there (a company's name, address).
            try requireRegistrationFields(signed, path: root, personalJoined: false)
            return (signed, .absent)
        }
        let merged = try merge(signed, fields, path: root)
        // Exactly the personal fields, nothing smuggled past the signature's scope, nothing personal left out.
        let (_, expectedPersonal) = split(merged)
        guard expectedPersonal == fields else {
            throw CreditError(code: "personal_data_mismatch", path: root,
                              rule: "personal data may hold only natural persons' fields (legalRepresentative; a sole proprietorship's name and address)")
        }
        try requireRegistrationFields(merged, path: root, personalJoined: true)
        return (merged, .present)
    }

    /// Registration-shaped objects (with `legalForm`) need their name, representative and address; without their
    /// personal data joined, only those of them that are not personal for their legal form.
    static func requireRegistrationFields(_ value: JSONValue, path: String, personalJoined: Bool) throws(CreditError) {
        switch value {
        case .object(let members):
            if members["legalForm"] != nil {
                let soleProprietor = members["legalForm"] == .string("soleProprietorship")
                for key in registrationRequired.sorted() where members[key] == nil {
                    let personal = alwaysPersonal.contains(key) || (soleProprietor && soleProprietorPersonal.contains(key))
                    guard personalJoined || !personal else { continue }
                    throw CreditError(code: "missing_field", path: "\(path).\(key)", rule: "is required")
                }
            }
            for (key, member) in members.sorted(by: { $0.key < $1.key }) {
                try requireRegistrationFields(member, path: "\(path).\(key)", personalJoined: personalJoined)
            }
        case .array(let items):
            for (index, item) in items.enumerated() {
                try requireRegistrationFields(item, path: "\(path)[\(index)]", personalJoined: personalJoined)
            }
        default:
            break
        }
    }
}

extension PersonalFields {
    /// Signs `body` with its payload set from `payload`, a full payload whose personal fields move to the personal
    /// data (``separate(_:salt:suite:)``); `salt` is 32 random bytes the caller draws.
    public static func sign(_ body: TransactionBody, payload: JSONValue, salt: [UInt8], suite: CryptoSuite,
                            key: SigningKey) throws -> Transaction {
        let (signed, personal) = try separate(payload, salt: salt, suite: suite)
        var body = body
        body.payload = signed
        return try Transaction.sign(body, with: key, personal: personal)
    }

    /// 32 bytes from any random number generator, for ``PersonalData/salt``.
    public static func salt(using generator: inout some RandomNumberGenerator) -> [UInt8] {
        (0..<PersonalData.saltBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}
