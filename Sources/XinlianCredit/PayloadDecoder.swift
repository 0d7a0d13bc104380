import XinlianCore
import XinlianCrypto

/// Decodes a `Decodable` payload type from a `JSONValue` strictly: unknown keys, `null`, wrong types, fractions and
/// values outside a closed enumeration are refused with a `CreditError` naming the JSON path.
enum PayloadDecoder {
    static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue, root: String) throws(CreditError) -> T {
        do {
            return try ValueDecoder(value: value, codingPath: [], root: root).decodeValue(T.self)
        } catch let error as CreditError {
            throw error
        } catch {
            throw CreditError(code: "invalid_payload", path: root, rule: "\(error)")
        }
    }
}

/// A key in a decoding path: an object member or an array index.
struct PathKey: CodingKey {
    let stringValue: String
    let intValue: Int?

    init(_ name: String) {
        stringValue = name
        intValue = nil
    }

    init(index: Int) {
        stringValue = "Index \(index)"
        intValue = index
    }

    init?(stringValue: String) { self.init(stringValue) }
    init?(intValue: Int) { self.init(index: intValue) }
}

func renderPath(_ root: String, _ path: [any CodingKey]) -> String {
    path.reduce(root) { text, key in
        if let index = key.intValue { return "\(text)[\(index)]" }
        return "\(text).\(key.stringValue)"
    }
}

struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    let root: String
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    var pathText: String { renderPath(root, codingPath) }

    func child(_ value: JSONValue, _ key: any CodingKey) throws -> ValueDecoder {
        let decoder = ValueDecoder(value: value, codingPath: codingPath + [key], root: root)
        if case .null = value {
            throw CreditError(code: "wrong_type", path: decoder.pathText, rule: "must not be null (omit an absent field)")
        }
        return decoder
    }

    func wrongType(_ expected: String) -> CreditError {
        CreditError(code: "wrong_type", path: pathText, rule: "must be \(expected)")
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else { throw wrongType("an object") }
        for key in members.keys.sorted() where Key(stringValue: key) == nil {
            throw CreditError(code: "unknown_field", path: renderPath(root, codingPath + [PathKey(key)]),
                              rule: "is not a field of this payload")
        }
        return KeyedDecodingContainer(KeyedReader<Key>(members: members, decoder: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let elements) = value else { throw wrongType("an array") }
        return UnkeyedReader(elements: elements, decoder: self)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleReader(decoder: self) }

    func bool() throws -> Bool {
        guard case .bool(let flag) = value else { throw wrongType("true or false") }
        return flag
    }

    func string() throws -> String {
        guard case .string(let text) = value else { throw wrongType("a string") }
        return text
    }

    func integer<I: FixedWidthInteger>(_ type: I.Type) throws -> I {
        guard case .integer(let number) = value else { throw wrongType("an integer") }
        guard let result = I(exactly: number) else { throw CreditError.invalid(pathText, "is out of range") }
        return result
    }

    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        if let closed = T.self as? any ClosedEnumeration.Type {
            let text = try string()
            guard closed.allows(text) else {
                throw CreditError.invalid(pathText, "must be one of \(closed.allowedValues)")
            }
        }
        if T.self == Hash32.self {
            let text = try string()
            guard text.utf8.count == 64, text.utf8.allSatisfy({ Self.lowerHex.contains($0) }) else {
                throw CreditError.invalid(pathText, "must be a transaction id: 64 lowercase hex digits")
            }
        }
        do {
            return try T(from: self)
        } catch let error as CreditError {
            throw error
        } catch let error as Swift.DecodingError {
            throw Self.convert(error, root: root)
        } catch let error as IdentifierError {
            throw CreditError.invalid(pathText, "must be valid: \(error.message)")
        } catch {
            throw CreditError.invalid(pathText, "\(error)")
        }
    }

    static let lowerHex = Set(Array("0123456789abcdef".utf8))

    static func convert(_ error: Swift.DecodingError, root: String) -> CreditError {
        switch error {
        case .keyNotFound(let key, let context):
            CreditError(code: "missing_field", path: renderPath(root, context.codingPath + [key]), rule: "is required")
        case .valueNotFound(_, let context):
            CreditError(code: "missing_field", path: renderPath(root, context.codingPath), rule: "is required")
        case .typeMismatch(_, let context):
            CreditError(code: "wrong_type", path: renderPath(root, context.codingPath), rule: context.debugDescription)
        case .dataCorrupted(let context):
            CreditError.invalid(renderPath(root, context.codingPath), context.debugDescription)
        @unknown default:
            CreditError(code: "invalid_payload", path: root, rule: "\(error)")
        }
    }
}

extension ClosedEnumeration {
    /// Whether `text` is one of the raw values (a scan of a few cases: no set built per value decoded).
    /// Compared byte for byte: Swift's `==` is canonical equivalence, under which a Kelvin sign is a `K`, and the same
    /// statement must not be writable in other bytes.
    static func allows(_ text: String) -> Bool { allCases.contains { $0.rawValue.utf8.elementsEqual(text.utf8) } }
}

struct KeyedReader<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let decoder: ValueDecoder

    var codingPath: [any CodingKey] { decoder.codingPath }
    var allKeys: [Key] { members.keys.sorted().compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    func child(_ key: Key) throws -> ValueDecoder {
        guard let value = members[key.stringValue] else {
            throw CreditError(code: "missing_field", path: renderPath(decoder.root, codingPath + [key]), rule: "is required")
        }
        return try decoder.child(value, key)
    }

    /// `null` is never accepted, so presence alone decides `decodeIfPresent`.
    func decodeNil(forKey key: Key) throws -> Bool { false }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try child(key).bool() }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try child(key).string() }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { throw try child(key).wrongType("an integer") }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { throw try child(key).wrongType("an integer") }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try child(key).integer(type) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try child(key).integer(type) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try child(key).integer(type) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try child(key).integer(type) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try child(key).integer(type) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try child(key).integer(type) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try child(key).integer(type) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try child(key).integer(type) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try child(key).integer(type) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try child(key).integer(type) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try child(key).decodeValue(type) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type,
                                               forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try child(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try child(key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { decoder }
    func superDecoder(forKey key: Key) throws -> any Decoder { try child(key) }
}

struct UnkeyedReader: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    let decoder: ValueDecoder
    var currentIndex = 0

    init(elements: [JSONValue], decoder: ValueDecoder) {
        self.elements = elements
        self.decoder = decoder
    }

    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    mutating func next() throws -> ValueDecoder {
        guard !isAtEnd else {
            throw CreditError(code: "missing_field", path: decoder.pathText, rule: "has too few elements")
        }
        defer { currentIndex += 1 }
        return try decoder.child(elements[currentIndex], PathKey(index: currentIndex))
    }

    mutating func decodeNil() throws -> Bool { false }
    mutating func decode(_ type: Bool.Type) throws -> Bool { try next().bool() }
    mutating func decode(_ type: String.Type) throws -> String { try next().string() }
    mutating func decode(_ type: Double.Type) throws -> Double { throw try next().wrongType("an integer") }
    mutating func decode(_ type: Float.Type) throws -> Float { throw try next().wrongType("an integer") }
    mutating func decode(_ type: Int.Type) throws -> Int { try next().integer(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next().integer(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next().integer(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next().integer(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next().integer(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next().integer(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next().integer(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next().integer(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next().integer(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next().integer(type) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decodeValue(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
        -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> any Decoder { try next() }
}

struct SingleReader: SingleValueDecodingContainer {
    let decoder: ValueDecoder
    var codingPath: [any CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool {
        if case .null = decoder.value { return true }
        return false
    }

    func decode(_ type: Bool.Type) throws -> Bool { try decoder.bool() }
    func decode(_ type: String.Type) throws -> String { try decoder.string() }
    func decode(_ type: Double.Type) throws -> Double { throw decoder.wrongType("an integer") }
    func decode(_ type: Float.Type) throws -> Float { throw decoder.wrongType("an integer") }
    func decode(_ type: Int.Type) throws -> Int { try decoder.integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try decoder.integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try decoder.integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try decoder.integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decoder.integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try decoder.integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decoder.integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decoder.integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decoder.integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decoder.integer(type) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decodeValue(type) }
}
