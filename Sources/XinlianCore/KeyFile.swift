import Foundation
import XinlianCrypto

/// A signing key on disk (JSON): an institution's key or a validator's consensus key.
/// Written with mode 0600; never committed.
public struct KeyFile: Codable, Sendable {
    /// The institution or validator this key belongs to.
    public var owner: Name
    public var suite: CryptoSuiteID
    public var publicKey: String
    public var privateKey: String

    public init(owner: Name, key: SigningKey) {
        self.owner = owner
        self.suite = key.suite
        self.publicKey = key.publicKey.bytes.hexString
        self.privateKey = key.privateKeyBytes.hexString
    }

    /// The key, checked against the public key recorded beside it.
    public func signingKey() throws(VerificationError) -> SigningKey {
        guard let raw = [UInt8](hex: privateKey) else {
            throw VerificationError(code: "invalid_key_file", message: "private key is not hex")
        }
        let key: SigningKey
        do { key = try CryptoSuite(suite).signingKey(privateKey: raw) } catch {
            throw VerificationError(code: "invalid_key_file", message: error.message)
        }
        guard key.publicKey.bytes.hexString == publicKey.lowercased() else {
            throw VerificationError(code: "invalid_key_file", message: "public key does not match private key")
        }
        return key
    }

    /// Throws ``JSONFileError`` (naming the file and the field) for a file that is not a key file.
    public static func load(path: String) throws -> KeyFile {
        try JSONFile.decode(KeyFile.self, path: path)
    }

    public func write(path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(self)
        guard FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }
}

extension Genesis {
    /// Throws ``JSONFileError`` (naming the file and the field) for a file that is not a genesis file.
    public static func load(path: String) throws -> Genesis {
        try JSONFile.decode(Genesis.self, path: path)
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
