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

    /// Reads the key file at `path`, which only its owner may read (as ssh insists of private keys).
    public static func load(path: String) throws(StorageError) -> PersonalDataKey {
        var info = stat()
        guard stat(path, &info) == 0, let data = FileManager.default.contents(atPath: path) else {
            throw StorageError.io(file: path, reason: "cannot read the personal data key (personal.key, beside the node's validator key)")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw StorageError.io(file: path, reason: "the personal data key is readable by others (mode \(String(info.st_mode & 0o777, radix: 8))): chmod 600 it")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = [UInt8](hex: text), bytes.count == byteCount else {
            throw StorageError.io(file: path, reason: "not a personal data key: expected \(byteCount * 2) hex characters")
        }
        return try PersonalDataKey(bytes: bytes)
    }

    /// The key at `path`, or a new one written there when there is none; `created` says which. No key is made for
    /// a data directory whose personal data store was encrypted with one (it would open nothing): that is an error
    /// saying what to do.
    public static func loadOrCreate(path: String, dataDirectory: String?) throws(StorageError)
        -> (key: PersonalDataKey, created: Bool) {
        if FileManager.default.fileExists(atPath: path) { return (try load(path: path), false) }
        if let dataDirectory, try PersonalStore.isKeyed(path: PersonalStore.path(dataDirectory)) {
            throw StorageError.io(file: path, reason: "the personal data key is missing, and \(PersonalStore.path(dataDirectory)) was encrypted with one: restore the key from its backup, or move personal.sqlite (with its -wal and -shm files) aside so that the node fetches the personal data from its peers again")
        }
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

    /// Writes the key to a new file at `path` (mode `0600`; fails if the file exists): written and synced under a
    /// temporary name, linked into place, and the directory synced, so a crash leaves either no key file or the
    /// whole key.
    public func write(path: String) throws(StorageError) {
        func failure(_ what: String) -> StorageError {
            .io(file: path, reason: "\(what) the personal data key: \(String(cString: strerror(errno)))")
        }
        let text = Array((key.withUnsafeBytes { [UInt8]($0) }.hexString + "\n").utf8)
        let partial = path + ".partial"
        unlink(partial)
        let descriptor = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw failure("cannot create") }
        let written = text.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        let synced = written == text.count && fsync(descriptor) == 0
        close(descriptor)
        defer { unlink(partial) }
        guard synced else { throw failure("cannot write") }
        guard link(partial, path) == 0 else { throw failure("cannot put in place") }
        let directory = open(URL(fileURLWithPath: path).deletingLastPathComponent().path, O_RDONLY | O_CLOEXEC)
        guard directory >= 0 else { throw failure("cannot sync the directory of") }
        defer { close(directory) }
        guard fsync(directory) == 0 else { throw failure("cannot sync the directory of") }
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
