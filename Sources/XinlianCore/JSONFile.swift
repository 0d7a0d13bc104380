import Foundation

/// A JSON file of the project's (a genesis file, a key file) that does not hold what it should: one line naming the
/// file, the field and what is wrong with it, e.g. `genesis.json: institutions[3].roles[0]: unknown role "regulater";
/// expected one of: member, registry, bureau, regulator, auditor`.
public struct JSONFileError: Error, Sendable, Hashable, CustomStringConvertible {
    public let path: String
    public let reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}

public enum JSONFile {
    /// Reads and decodes the file at `path`; a decoding failure becomes a ``JSONFileError``.
    public static func decode<T: Decodable>(_ type: T.Type, path: String) throws -> T {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as Swift.DecodingError {
            throw JSONFileError(path: path, reason: describe(error))
        }
    }

    /// One line for a decoding failure: the field's path (`institutions[3].roles[0]`) and what is wrong with it.
    public static func describe(_ error: Swift.DecodingError) -> String {
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            "not valid JSON: \(context.underlyingError.map { "\($0)" } ?? context.debugDescription)"
        case .dataCorrupted(let context):
            "\(path(context.codingPath)): \(context.debugDescription)"
        case .keyNotFound(let key, let context):
            "\(path(context.codingPath + [key])): is required"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            "\(error)"
        }
    }

    /// `institutions[3].roles[0]`; `(top level)` for an empty path.
    public static func path(_ keys: [any CodingKey]) -> String {
        guard !keys.isEmpty else { return "(top level)" }
        var text = ""
        for key in keys {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += (text.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return text
    }
}
