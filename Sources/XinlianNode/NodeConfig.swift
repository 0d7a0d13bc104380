import Foundation
import XinlianCore

/// A node's configuration file, `<home>/config.json`. Relative paths are relative to the home directory.
public struct NodeConfig: Codable, Sendable, Equatable {
    public static let fileName = "config.json"

    /// This node's validator id in genesis.
    public var validator: ValidatorID
    public var genesisFile: String
    public var dataDirectory: String
    public var validatorKeyFile: String
    /// `host:port` the HTTP API listens on.
    public var apiListen: String
    /// `host:port` for peer-to-peer TCP (used once consensus among several nodes lands).
    public var p2pListen: String
    public var mempoolTransactionLimit: Int
    public var mempoolBytesLimit: Int
    /// Largest HTTP request body accepted.
    public var apiBodyLimitBytes: Int
    /// Transactions accepted in one submit request.
    public var apiBatchLimit: Int
    /// `trace`, `debug`, `info`, `notice`, `warning`, `error`, `critical`.
    public var logLevel: String

    public init(validator: ValidatorID, apiListen: String, p2pListen: String) {
        self.validator = validator
        self.genesisFile = "genesis.json"
        self.dataDirectory = "data"
        self.validatorKeyFile = "validator.key"
        self.apiListen = apiListen
        self.p2pListen = p2pListen
        self.mempoolTransactionLimit = Mempool.defaultTransactionLimit
        self.mempoolBytesLimit = Mempool.defaultBytesLimit
        self.apiBodyLimitBytes = 8 * 1024 * 1024
        self.apiBatchLimit = 5_000
        self.logLevel = "info"
    }

    public static func load(home: String) throws -> NodeConfig {
        let data = try Data(contentsOf: URL(fileURLWithPath: home + "/" + fileName))
        return try JSONDecoder().decode(NodeConfig.self, from: data)
    }

    public func write(home: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(self).write(to: URL(fileURLWithPath: home + "/" + Self.fileName))
    }

    /// `path` made absolute against `home`.
    public static func resolve(_ path: String, home: String) -> String {
        path.hasPrefix("/") ? path : home + "/" + path
    }
}

/// `host:port` split, with a clear error.
public struct HostPort: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init(_ text: String) throws(VerificationError) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65_535).contains(port) else {
            throw VerificationError(code: "invalid_address", message: "\"\(text)\" is not host:port")
        }
        self.host = String(text[..<colon])
        self.port = port
    }
}
