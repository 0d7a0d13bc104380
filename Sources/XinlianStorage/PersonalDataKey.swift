import Crypto
import Foundation
import XinlianCrypto

/// The key that encrypts personal data at rest (``PersonalStore``): 32 random bytes in `personal.key`, kept in the
/// node's directory beside its validator key and outside `data/`, so that a copy of the data directory — a backup,
/// the directory an auditor is given to verify, a lost disk image of `data/` alone — holds no readable name.
/// AES-256-GCM, each row with a fresh 96-bit nonce and its transaction id as associated data (a row moved to
/// another id does not open). The file is 64 hex characters and a newline, mode `0600`.
public struct PersonalDataKey: Sendable {
    let key: SymmetricKey

    public static let byteCount = 32
    /// The first byte of every sealed row: the format (AES-256-GCM, nonce, ciphertext, tag).
    static let formatAESGCM: UInt8 = 0x01
    static let nonceBytes = 12
    static let tagBytes = 16
    /// The file name in the node's directory (`NodeConfig.personalDataKeyFile`).
    public static let fileName = "personal.key"

    public init(bytes: [UInt8]) throws(StorageError) {
        guard bytes.count == Self.byteCount else {
            throw StorageError.invalidArgument("a personal data key is \(Self.byteCount) bytes, not \(bytes.count)")
        }
        key = SymmetricKey(data: bytes)
    }

    /// A new random key (the system's generator).
    public static func generate() -> PersonalDataKey {
        PersonalDataKey(key: SymmetricKey(size: .bits256))
    }

    private init(key: SymmetricKey) { self.key = key }

    /// Where the node keeps it by default: `personal.key` in the directory that holds `dataDirectory`.
    public static func defaultPath(forDataDirectory dataDirectory: String) -> String {
        URL(fileURLWithPath: dataDirectory).standardizedFileURL.deletingLastPathComponent().appendingPathComponent(fileName).path
    }

    /// Reads the key file at `path`.
    public static func load(path: String) throws(StorageError) -> PersonalDataKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StorageError.io(file: path, reason: "cannot read the personal data key (personal.key, beside the node's validator key)")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = [UInt8](hex: text), bytes.count == byteCount else {
            throw StorageError.io(file: path, reason: "not a personal data key: expected \(byteCount * 2) hex characters")
        }
        return try PersonalDataKey(bytes: bytes)
    }

    /// The key at `path`, or a new one written there (created `0600`, never over an existing file) when there is
    /// none; `created` says which.
    public static func loadOrCreate(path: String) throws(StorageError) -> (key: PersonalDataKey, created: Bool) {
        if FileManager.default.fileExists(atPath: path) { return (try load(path: path), false) }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: Int(FileProtection.directoryMode)])
        } catch {
            throw StorageError.io(file: directory, reason: "cannot create the directory of the personal data key: \(error)")
        }
        let key = generate()
        try key.write(path: path)
        return (key, true)
    }

    /// Writes the key to a new file at `path` (mode `0600`; fails if the file exists), synced to disk.
    public func write(path: String) throws(StorageError) {
        let text = Array((key.withUnsafeBytes { [UInt8]($0) }.hexString + "\n").utf8)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw StorageError.io(file: path, reason: "cannot create the personal data key: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let written = text.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        guard written == text.count, fsync(descriptor) == 0 else {
            throw StorageError.io(file: path, reason: "cannot write the personal data key: \(String(cString: strerror(errno)))")
        }
    }

    /// Recognises the key without revealing it: HMAC-SHA256 under the key of a fixed label.
    var check: [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array("xinlian personal data key check v1".utf8), using: key))
    }

    /// `plaintext` sealed for the row of transaction `id`.
    func seal(_ plaintext: [UInt8], id: Hash32) throws(StorageError) -> [UInt8] {
        do {
            let box = try AES.GCM.seal(plaintext, using: key, authenticating: id.bytes)
            return [Self.formatAESGCM] + Array(box.nonce) + Array(box.ciphertext) + Array(box.tag)
        } catch {
            throw StorageError.invalidArgument("sealing personal data failed: \(error)")
        }
    }

    /// The plaintext of a row sealed for transaction `id`; nil when it does not open (another key, another row).
    func unseal(_ sealed: [UInt8], id: Hash32) -> [UInt8]? {
        guard sealed.count >= 1 + Self.nonceBytes + Self.tagBytes, sealed[0] == Self.formatAESGCM,
              let nonce = try? AES.GCM.Nonce(data: sealed[1..<(1 + Self.nonceBytes)]),
              let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: sealed[(1 + Self.nonceBytes)..<(sealed.count - Self.tagBytes)],
                                               tag: sealed[(sealed.count - Self.tagBytes)...])
        else { return nil }
        return (try? AES.GCM.open(box, using: key, authenticating: id.bytes)).map { Array($0) }
    }
}
