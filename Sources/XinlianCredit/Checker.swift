import XinlianCore

/// A statement's payload type: Codable, decoded strictly, validated field by field.
public protocol CreditPayload: Codable, Sendable, Hashable {
    /// The transaction kind whose payload this is.
    static var kind: TransactionKind { get }
    /// Checks every rule that needs only this payload. `root` prefixes error paths; `today` (the transaction's
    /// day) enables the "not in the future" rules.
    func validate(root: String, today: Day?) throws(CreditError)
}

/// The rule helpers payloads validate with; each throws a `CreditError` whose path is `root.field`.
struct Checker {
    let root: String
    let today: Day?

    static let identifierCharacters = Set(Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_./:".utf8))

    func path(_ field: String) -> String { field.isEmpty ? root : "\(root).\(field)" }

    func require(_ condition: Bool, _ field: String, _ rule: @autoclosure () -> String) throws(CreditError) {
        guard condition else { throw CreditError.invalid(path(field), rule()) }
    }

    func missing(_ field: String, _ rule: String) -> CreditError {
        CreditError(code: "missing_field", path: path(field), rule: rule)
    }

    func positive(_ money: Money, _ field: String) throws(CreditError) {
        try require(money.minor > 0, "\(field).minor", "must be positive")
    }

    func nonNegative(_ money: Money, _ field: String) throws(CreditError) {
        try require(money.minor >= 0, "\(field).minor", "must not be negative")
    }

    /// Free text: 1...limit Unicode scalars, no surrounding whitespace, no control characters.
    func text(_ value: String, _ field: String, limit: Int) throws(CreditError) {
        try require(!value.isEmpty, field, "must not be empty")
        try require(value.unicodeScalars.count <= limit, field, "must be at most \(limit) characters")
        let scalars = value.unicodeScalars
        let padded = [scalars.first, scalars.last].compactMap { $0 }.contains { $0.properties.isWhitespace }
        try require(!padded, field, "must not start or end with whitespace")
        try require(!scalars.contains { $0.value < 0x20 || $0.value == 0x7F }, field, "must not contain control characters")
    }

    func text(_ value: String?, _ field: String, limit: Int) throws(CreditError) {
        if let value { try text(value, field, limit: limit) }
    }

    /// A reporter's own key for an item (facility, collateral, guarantee): 1-64 of `A-Z a-z 0-9 - _ . / :`.
    func identifier(_ value: String, _ field: String) throws(CreditError) {
        let bytes = Array(value.utf8)
        try require((1...64).contains(bytes.count) && bytes.allSatisfy { Self.identifierCharacters.contains($0) }, field,
                    "must be 1-64 characters of A-Z a-z 0-9 - _ . / :")
    }

    func notFuture(_ day: Day, _ field: String) throws(CreditError) {
        if let today { try require(day <= today, field, "must not be after the transaction's date \(today)") }
    }

    func notBefore(_ day: Day, _ earlier: Day, _ field: String, _ earlierField: String) throws(CreditError) {
        try require(day >= earlier, field, "must not be before \(earlierField)")
    }

    func sameCurrency(_ money: Money, as other: Money, _ field: String, _ otherField: String) throws(CreditError) {
        try require(money.currency == other.currency, "\(field).currency", "must equal \(otherField).currency")
    }
}
