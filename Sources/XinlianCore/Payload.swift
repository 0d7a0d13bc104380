import Foundation

/// A JSON value restricted to what payloads need: integers (no fractions:
/// money is in minor units), strings, booleans, null, arrays and objects.
public indirect enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case integer(Int64)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Payload integers stay within ±2^53 so that every JSON reader sees the same number.
    public static let integerLimit: Int64 = 1 << 53
    public static let depthLimit = 16

    public init(from decoder: any Swift.Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            guard value.magnitude <= Self.integerLimit.magnitude else {
                throw Swift.DecodingError.dataCorruptedError(in: container, debugDescription: "integer beyond ±2^53")
            }
            self = .integer(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(value)
        } else {
            throw Swift.DecodingError.dataCorruptedError(
                in: container, debugDescription: "only integers, strings, booleans, null, arrays and objects are allowed")
        }
    }

    public func encode(to encoder: any Swift.Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// The canonical text: no whitespace, object keys sorted by their UTF-8 bytes,
    /// strings escaped minimally (`"`, `\`, control characters).
    public var canonicalText: [UInt8] {
        var out: [UInt8] = []
        write(to: &out)
        return out
    }

    private func write(to out: inout [UInt8]) {
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let value): out += Array((value ? "true" : "false").utf8)
        case .integer(let value): out += Array(String(value).utf8)
        case .string(let value): Self.writeString(value, to: &out)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (position, value) in values.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            let sorted = members.map { (Array($0.key.utf8), $0.value) }.sorted { $0.0.lexicographicallyPrecedes($1.0) }
            for (position, member) in sorted.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(String(decoding: member.0, as: UTF8.self), to: &out)
                out.append(UInt8(ascii: ":"))
                member.1.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func writeString(_ value: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20: out += Array(String(format: "\\u%04x", Int(byte)).utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    var depth: Int {
        switch self {
        case .array(let values): 1 + (values.map(\.depth).max() ?? 0)
        case .object(let members): 1 + (members.values.map(\.depth).max() ?? 0)
        default: 0
        }
    }
}

/// Payload bytes: the canonical text of one JSON object.
public enum Payload {
    /// Parses `bytes` as a JSON object and returns its canonical text.
    public static func canonicalize(_ bytes: [UInt8]) throws(VerificationError) -> [UInt8] {
        guard bytes.count <= Limits.payloadBytes else {
            throw VerificationError(code: "payload_too_large", message: "payload exceeds \(Limits.payloadBytes) bytes")
        }
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            throw VerificationError(code: "invalid_payload", message: "payload is not valid JSON: \(error)")
        }
        return try canonicalize(value)
    }

    public static func canonicalize(_ value: JSONValue) throws(VerificationError) -> [UInt8] {
        guard case .object = value else {
            throw VerificationError(code: "invalid_payload", message: "payload must be a JSON object")
        }
        guard value.depth <= JSONValue.depthLimit else {
            throw VerificationError(code: "invalid_payload", message: "payload nests deeper than \(JSONValue.depthLimit)")
        }
        let text = value.canonicalText
        guard text.count <= Limits.payloadBytes else {
            throw VerificationError(code: "payload_too_large", message: "payload exceeds \(Limits.payloadBytes) bytes")
        }
        return text
    }

    /// True when `bytes` are already the canonical text of a JSON object.
    public static func isCanonical(_ bytes: [UInt8]) -> Bool {
        (try? canonicalize(bytes)) == bytes
    }
}
