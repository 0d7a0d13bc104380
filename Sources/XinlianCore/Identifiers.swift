/// Why an identifier was refused.
public struct IdentifierError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable code: `invalid_uscc`, `invalid_identifier`.
    public let code: String
    public let message: String
    public var description: String { message }
}

/// An enterprise's 18-character Unified Social Credit Code (GB 32100-2015),
/// accepted only with a correct check character.
public struct USCC: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public static let length = 18
    /// The 31 characters of GB 32100: digits and capitals without I, O, S, V, Z.
    public static let alphabet: [UInt8] = Array("0123456789ABCDEFGHJKLMNPQRTUWXY".utf8)
    /// Weights 3^i mod 31 for positions 1...17.
    public static let weights: [Int] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]

    public let code: String

    public init(_ code: String) throws(IdentifierError) {
        let bytes = Array(code.utf8)
        guard bytes.count == Self.length else {
            throw IdentifierError(code: "invalid_uscc", message: "USCC must be 18 characters, got \(bytes.count): \"\(code)\"")
        }
        var values: [Int] = []
        values.reserveCapacity(Self.length)
        for (position, byte) in bytes.enumerated() {
            guard let value = Self.value(of: byte) else {
                throw IdentifierError(code: "invalid_uscc",
                                      message: "USCC \"\(code)\" has a character outside GB 32100 at position \(position + 1)")
            }
            values.append(value)
        }
        guard Self.checkValue(values[0..<17]) == values[17] else {
            throw IdentifierError(code: "invalid_uscc", message: "USCC \"\(code)\" has a wrong check character")
        }
        self.code = code
    }

    /// The check character's value for the first 17 characters' values.
    public static func checkValue(_ values: ArraySlice<Int>) -> Int {
        let sum = zip(values, weights).reduce(0) { $0 + $1.0 * $1.1 }
        let check = 31 - sum % 31
        return check == 31 ? 0 : check
    }

    /// Completes a 17-character prefix with its check character (for sample data and tests).
    public static func withCheckCharacter(_ prefix: String) throws(IdentifierError) -> USCC {
        let bytes = Array(prefix.utf8)
        let values = bytes.compactMap(value(of:))
        guard bytes.count == 17, values.count == 17 else {
            throw IdentifierError(code: "invalid_uscc", message: "prefix must be 17 GB 32100 characters")
        }
        let check = alphabet[checkValue(values[...])]
        return try USCC(prefix + String(decoding: [check], as: UTF8.self))
    }

    static func value(of byte: UInt8) -> Int? { alphabet.firstIndex(of: byte) }

    public var description: String { code }
    public static func < (lhs: USCC, rhs: USCC) -> Bool { lhs.code < rhs.code }

    public init(from decoder: any Swift.Decoder) throws {
        let container = try decoder.singleValueContainer()
        self = try USCC(try container.decode(String.self))
    }

    public func encode(to encoder: any Swift.Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(code)
    }
}

/// A short lowercase name: chain ids, institution ids, validator ids.
/// 1...64 characters of `a-z`, `0-9`, `-`, `.`, `_`, starting with a letter or digit.
public struct Name: Hashable, Sendable, Comparable, CustomStringConvertible, Codable, ExpressibleByStringLiteral {
    public static let lengthLimit = 64
    public let value: String

    public init(_ value: String) throws(IdentifierError) {
        guard Self.isValid(value) else {
            throw IdentifierError(code: "invalid_identifier",
                                  message: "\"\(value)\" is not a valid name (1-64 of a-z 0-9 - . _, starting with a letter or digit)")
        }
        self.value = value
    }

    /// For literals in code and tests; an invalid literal is a programmer error.
    public init(stringLiteral value: String) {
        precondition(Self.isValid(value), "invalid name literal \(value)")
        self.value = value
    }

    public static func isValid(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard (1...lengthLimit).contains(bytes.count), let first = bytes.first else { return false }
        func allowed(_ byte: UInt8) -> Bool {
            (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) || byte == 0x2D || byte == 0x2E || byte == 0x5F
        }
        let firstIsAlphanumeric = (0x61...0x7A).contains(first) || (0x30...0x39).contains(first)
        return firstIsAlphanumeric && bytes.allSatisfy(allowed)
    }

    public var description: String { value }
    public static func < (lhs: Name, rhs: Name) -> Bool { lhs.value < rhs.value }

    public init(from decoder: any Swift.Decoder) throws {
        let container = try decoder.singleValueContainer()
        self = try Name(try container.decode(String.self))
    }

    public func encode(to encoder: any Swift.Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}

public typealias ChainID = Name
public typealias InstitutionID = Name
public typealias ValidatorID = Name

extension CanonicalEncoder {
    public mutating func name(_ value: Name) { string(value.value) }
    public mutating func uscc(_ value: USCC) { fixed(Array(value.code.utf8)) }
}

extension CanonicalDecoder {
    public mutating func name(_ field: String) throws(DecodingError) -> Name {
        let start = offset
        let raw = try string(field, limit: Name.lengthLimit)
        do { return try Name(raw) } catch {
            throw self.error("invalid_value", field, error.message, at: start)
        }
    }

    public mutating func uscc(_ field: String) throws(DecodingError) -> USCC {
        let start = offset
        let raw = try fixed(USCC.length, field)
        do { return try USCC(String(decoding: raw, as: UTF8.self)) } catch {
            throw self.error("invalid_value", field, error.message, at: start)
        }
    }
}
