import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Errors

/// A storage failure. `code` is a stable machine-readable identifier.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// On-disk data is damaged. `file` is a segment file name (or database path); `offset` is a byte offset in it.
    case corrupt(file: String, offset: UInt64, reason: String)
    /// A file operation failed; `reason` names the call and the errno.
    case io(file: String, reason: String)
    /// A payload exceeds the configured record size limit.
    case recordTooLarge(size: Int, limit: Int)
    /// The requested record or item does not exist.
    case notFound(String)
    /// SQLite reported an error (`code` is the SQLite result code).
    case sqlite(code: Int32, message: String)
    /// Another `BlockLog` instance holds the directory lock.
    case locked(path: String)
    /// A caller-supplied argument or option is invalid.
    case invalidArgument(String)
    /// A write was attempted on a read-only log.
    case readOnly
    /// The log or database was closed.
    case closed
    /// An earlier write or sync failed; the log refuses further writes until reopened.
    case poisoned(reason: String)

    /// Stable identifier: "corrupt", "io", "record_too_large", "not_found", "sqlite", "locked",
    /// "invalid_argument", "read_only", "closed" or "poisoned".
    public var code: String {
        switch self {
        case .corrupt: "corrupt"
        case .io: "io"
        case .recordTooLarge: "record_too_large"
        case .notFound: "not_found"
        case .sqlite: "sqlite"
        case .locked: "locked"
        case .invalidArgument: "invalid_argument"
        case .readOnly: "read_only"
        case .closed: "closed"
        case .poisoned: "poisoned"
        }
    }

    public var description: String {
        switch self {
        case let .corrupt(file, offset, reason): "corrupt: \(file) at byte \(offset): \(reason)"
        case let .io(file, reason): "io: \(file): \(reason)"
        case let .recordTooLarge(size, limit): "record_too_large: \(size) bytes exceeds limit of \(limit)"
        case let .notFound(what): "not_found: \(what)"
        case let .sqlite(code, message): "sqlite: \(message) (code \(code))"
        case let .locked(path): "locked: \(path) is in use by another block log"
        case let .invalidArgument(message): "invalid_argument: \(message)"
        case .readOnly: "read_only: the block log was opened read-only"
        case .closed: "closed: the handle was closed"
        case let .poisoned(reason): "poisoned: an earlier write failed (\(reason)); reopen the log"
        }
    }
}

extension StorageError {
    /// An `.io` error for a failed system call.
    static func system(_ operation: String, path: String, errno code: Int32) -> StorageError {
        .io(file: path, reason: "\(operation) failed: \(String(cString: strerror(code))) (errno \(code))")
    }
}
