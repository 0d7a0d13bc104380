/// A closed set of values spelled as strings — a crypto suite, a transaction kind, a role, a query purpose — whose
/// refusals name every accepted spelling, taken from `allCases` so that the list cannot fall behind the type.
///
/// It lives in the lowest module so that ``CryptoSuiteID`` can use it; Core and Credit types adopt it too.
public protocol NamedValue: CaseIterable, RawRepresentable, Sendable where RawValue == String {
    /// What one value is called in messages: `suite`, `kind`, `role`, `purpose`.
    static var valueName: String { get }
}

extension NamedValue {
    /// Every accepted spelling, in declaration order.
    public static var acceptedValues: [String] { allCases.map(\.rawValue) }

    /// The value spelled `text`, or an error that lists every accepted spelling.
    public init(parsing text: String) throws(UnknownValueError) {
        guard let value = Self(rawValue: text) else { throw UnknownValueError(Self.self, text) }
        self = value
    }

    /// Decodes the value from a JSON string; an unknown one is refused with the message of ``UnknownValueError``.
    /// Types call it from their `init(from:)`.
    public init(decodingFrom decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Self(rawValue: text) else {
            throw DecodingError.dataCorruptedError(in: container,
                                                   debugDescription: UnknownValueError(Self.self, text).description)
        }
        self = value
    }
}

/// A value outside a ``NamedValue`` set: `unknown purpose "creditApproval"; expected one of: loanApplication, …`.
public struct UnknownValueError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What the value is (`purpose`).
    public let name: String
    /// The refused spelling.
    public let value: String
    /// Every accepted spelling, in declaration order.
    public let accepted: [String]

    public init<Value: NamedValue>(_ type: Value.Type, _ value: String) {
        name = Value.valueName
        self.value = value
        accepted = Value.acceptedValues
    }

    public var description: String {
        "unknown \(name) \"\(value)\"; expected one of: \(accepted.joined(separator: ", "))"
    }
}
