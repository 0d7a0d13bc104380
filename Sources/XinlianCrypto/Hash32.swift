/// A 32-byte digest (SHA-256 or SM3 output), also used as a Merkle key or value.
///
/// Ordered lexicographically by bytes; encoded in `Codable` as a lowercase hex string.
public struct Hash32: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    /// The digest bytes; always exactly 32.
    public let bytes: [UInt8]

    /// Wraps exactly 32 bytes; `nil` for any other count.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        self.bytes = Array(bytes)
    }

    /// Parses 64 hex characters (either case); `nil` otherwise.
    public init?(hex: String) {
        guard hex.utf8.count == 64, let raw = [UInt8](hex: hex) else { return nil }
        self.bytes = raw
    }

    /// Internal unchecked initializer for bytes known to be 32 long.
    init(unchecked bytes: [UInt8]) {
        assert(bytes.count == 32)
        self.bytes = bytes
    }

    /// 32 zero bytes.
    public static let zero = Hash32(unchecked: [UInt8](repeating: 0, count: 32))

    /// Lowercase hex encoding (64 characters).
    public var hex: String { bytes.hexString }

    /// Same as ``hex``.
    public var description: String { hex }

    public static func < (lhs: Hash32, rhs: Hash32) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Hash32(hex: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "expected 64 hex characters")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}
