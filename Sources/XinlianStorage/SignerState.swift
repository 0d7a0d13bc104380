import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import XinlianCore
import XinlianCrypto

/// The double-sign guard: the last (height, round, step) a validator signed, recorded
/// durably *before* the signature leaves the process. After any crash the validator never
/// signs a different message at the same or an earlier position.
public final class SignerState {
    /// Ordered steps inside a round.
    public enum Step: UInt8, Codable, Sendable, Comparable {
        case proposal = 1, prevote = 2, precommit = 3
        public static func < (lhs: Step, rhs: Step) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public struct Record: Codable, Sendable, Equatable {
        public var height: UInt64
        public var round: UInt32
        public var step: Step
        /// Hex of the signed bytes' hash, so re-signing the identical message is allowed.
        public var signedBytesHash: String
        public var signature: String
    }

    public struct DoubleSignError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public let path: String
    public private(set) var last: Record?
    private let key: SigningKey
    private let suite: CryptoSuite

    public init(path: String, key: SigningKey) throws {
        self.path = path
        self.key = key
        self.suite = CryptoSuite(key.suite)
        if FileManager.default.fileExists(atPath: path) {
            last = try JSONDecoder().decode(Record.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        }
    }

    /// Signs `message` at (height, round, step) unless that would conflict with what was signed before.
    public func sign(_ message: [UInt8], height: UInt64, round: UInt32, step: Step) throws -> [UInt8] {
        let digest = suite.hash(message).hex
        if let last {
            let position = (last.height, last.round, last.step.rawValue)
            let requested = (height, round, step.rawValue)
            if requested == position {
                guard last.signedBytesHash == digest, let signature = [UInt8](hex: last.signature) else {
                    throw DoubleSignError(description: "refusing to sign a second message at height \(height) round \(round) \(step)")
                }
                return signature
            }
            guard requested > position else {
                throw DoubleSignError(description: "refusing to sign height \(height) round \(round) \(step): already signed \(position)")
            }
        }
        let signature = try key.sign(message)
        let record = Record(height: height, round: round, step: step, signedBytesHash: digest, signature: signature.hexString)
        try persist(record)
        last = record
        return signature
    }

    private func persist(_ record: Record) throws {
        let data = try JSONEncoder().encode(record)
        let temporary = path + ".tmp"
        try Self.writeDurably(data, to: temporary)
        guard rename(temporary, path) == 0 else {
            throw StorageError.io(file: path, reason: "rename failed: errno \(errno)")
        }
        try Self.syncDirectory(of: path)
    }

    static func writeDurably(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StorageError.io(file: path, reason: "open failed: errno \(errno)") }
        defer { close(fd) }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == data.count, fsync(fd) == 0 else {
            throw StorageError.io(file: path, reason: "write or fsync failed: errno \(errno)")
        }
    }

    static func syncDirectory(of path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StorageError.io(file: directory, reason: "open failed: errno \(errno)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StorageError.io(file: directory, reason: "fsync failed: errno \(errno)") }
    }
}
