/// Errors raised by the canonical decoder. Every malformed, oversized, truncated,
/// non-canonical or trailing input ends in one of these; nothing else escapes.
public struct DecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable machine-readable code (`truncated`, `trailing_bytes`, `too_large`,
    /// `invalid_tag`, `invalid_value`, `non_canonical`, `unsupported_version`).
    public let code: String
    /// What was being decoded when it failed.
    public let field: String
    /// Byte offset inside the decoded buffer where the fault was found.
    public let offset: Int
    public let reason: String

    public init(code: String, field: String, offset: Int, reason: String) {
        self.code = code
        self.field = field
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "\(code) at byte \(offset) (\(field)): \(reason)" }
}

/// Writes the canonical binary encoding (see `docs/formats.md`): fixed-width
/// big-endian integers, `u32` length prefixes, `0x00`/`0x01` option tags.
public struct CanonicalEncoder: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func u8(_ value: UInt8) { bytes.append(value) }

    /// Appends bytes that are already the canonical encoding of a value (kept from its decoding or first encoding);
    /// internal, so that only this module's types, which keep such bytes, can write them.
    mutating func encoded(_ canonical: [UInt8]) { bytes.append(contentsOf: canonical) }

    public mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    public mutating func u32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }

    public mutating func u64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }

    public mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }

    /// A fixed-length field: no length prefix.
    public mutating func fixed(_ value: [UInt8]) { bytes.append(contentsOf: value) }

    /// A variable-length byte string: `u32` length then the bytes.
    public mutating func byteString(_ value: [UInt8]) {
        u32(UInt32(value.count))
        bytes.append(contentsOf: value)
    }

    /// A UTF-8 string, encoded as a byte string.
    public mutating func string(_ value: String) { byteString(Array(value.utf8)) }

    /// A list: `u32` count, then each element.
    public mutating func list<T>(_ values: [T], _ element: (inout CanonicalEncoder, T) -> Void) {
        u32(UInt32(values.count))
        for value in values { element(&self, value) }
    }

    /// An optional: `0x00`, or `0x01` followed by the value.
    public mutating func optional<T>(_ value: T?, _ element: (inout CanonicalEncoder, T) -> Void) {
        guard let value else { return u8(0) }
        u8(1)
        element(&self, value)
    }
}

/// Reads the canonical binary encoding, enforcing a size limit on every
/// variable-length field and rejecting anything that is not the unique encoding.
public struct CanonicalDecoder {
    private let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.offset = 0
    }

    public var remaining: Int { bytes.count - offset }

    /// The bytes read from `start` (an earlier ``offset``) up to `end` (at most the current one): part of a value's
    /// own canonical encoding, just decoded. Empty when the range is not one already read.
    func bytesRead(from start: Int, to end: Int) -> [UInt8] {
        guard start >= 0, start <= end, end <= offset else { return [] }
        return Array(bytes[start..<end])
    }

    public func error(_ code: String, _ field: String, _ reason: String, at position: Int? = nil) -> DecodingError {
        DecodingError(code: code, field: field, offset: position ?? offset, reason: reason)
    }

    private mutating func take(_ count: Int, _ field: String) throws(DecodingError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else {
            throw error("truncated", field, "needs \(count) bytes, \(remaining) left")
        }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    public mutating func u8(_ field: String) throws(DecodingError) -> UInt8 {
        try take(1, field).first ?? 0
    }

    public mutating func u16(_ field: String) throws(DecodingError) -> UInt16 {
        try take(2, field).reduce(0) { $0 << 8 | UInt16($1) }
    }

    public mutating func u32(_ field: String) throws(DecodingError) -> UInt32 {
        try take(4, field).reduce(0) { $0 << 8 | UInt32($1) }
    }

    public mutating func u64(_ field: String) throws(DecodingError) -> UInt64 {
        try take(8, field).reduce(0) { $0 << 8 | UInt64($1) }
    }

    public mutating func bool(_ field: String) throws(DecodingError) -> Bool {
        let start = offset
        switch try u8(field) {
        case 0: return false
        case 1: return true
        case let other: throw error("invalid_tag", field, "boolean must be 0 or 1, got \(other)", at: start)
        }
    }

    /// Steps over a `u32`-length-prefixed byte string without copying it.
    public mutating func skipByteString(_ field: String, limit: Int) throws(DecodingError) {
        let start = offset
        let length = Int(try u32(field))
        guard length <= limit else {
            throw error("too_large", field, "length \(length) exceeds limit \(limit)", at: start)
        }
        _ = try take(length, field)
    }

    public mutating func fixed(_ count: Int, _ field: String) throws(DecodingError) -> [UInt8] {
        Array(try take(count, field))
    }

    public mutating func byteString(_ field: String, limit: Int) throws(DecodingError) -> [UInt8] {
        let start = offset
        let length = Int(try u32(field))
        guard length <= limit else {
            throw error("too_large", field, "length \(length) exceeds limit \(limit)", at: start)
        }
        return Array(try take(length, field))
    }

    public mutating func string(_ field: String, limit: Int) throws(DecodingError) -> String {
        let start = offset
        let raw = try byteString(field, limit: limit)
        guard let value = String(validating: raw, as: UTF8.self) else {
            throw error("invalid_value", field, "not valid UTF-8", at: start)
        }
        return value
    }

    public mutating func list<T>(
        _ field: String, limit: Int, _ element: (inout CanonicalDecoder) throws(DecodingError) -> T
    ) throws(DecodingError) -> [T] {
        let start = offset
        let count = Int(try u32(field))
        guard count <= limit else {
            throw error("too_large", field, "count \(count) exceeds limit \(limit)", at: start)
        }
        // Every element takes at least one byte: a count larger than the rest is a lie.
        guard count <= remaining else {
            throw error("truncated", field, "count \(count) exceeds remaining bytes", at: start)
        }
        var values: [T] = []
        values.reserveCapacity(count)
        for _ in 0..<count { values.append(try element(&self)) }
        return values
    }

    public mutating func optional<T>(
        _ field: String, _ element: (inout CanonicalDecoder) throws(DecodingError) -> T
    ) throws(DecodingError) -> T? {
        let start = offset
        switch try u8(field) {
        case 0: return nil
        case 1: return try element(&self)
        case let other: throw error("invalid_tag", field, "option tag must be 0 or 1, got \(other)", at: start)
        }
    }

    /// Fails unless every byte has been consumed.
    public func finish(_ field: String) throws(DecodingError) {
        guard remaining == 0 else {
            throw error("trailing_bytes", field, "\(remaining) bytes after the end")
        }
    }
}

/// A value with one canonical binary encoding.
public protocol CanonicalCodable: Sendable {
    func encode(to encoder: inout CanonicalEncoder)
    init(from decoder: inout CanonicalDecoder) throws(DecodingError)
}

extension CanonicalCodable {
    /// The canonical bytes of this value.
    public var canonicalBytes: [UInt8] {
        var encoder = CanonicalEncoder()
        encode(to: &encoder)
        return encoder.bytes
    }

    /// Decodes exactly one value from `bytes`, rejecting trailing bytes and inputs
    /// longer than `limit`.
    public init(canonicalBytes bytes: [UInt8], limit: Int) throws(DecodingError) {
        guard bytes.count <= limit else {
            throw DecodingError(code: "too_large", field: String(describing: Self.self), offset: 0,
                                reason: "\(bytes.count) bytes exceeds limit \(limit)")
        }
        var decoder = CanonicalDecoder(bytes)
        self = try Self(from: &decoder)
        try decoder.finish(String(describing: Self.self))
    }
}
