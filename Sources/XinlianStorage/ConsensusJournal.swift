import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The consensus write-ahead journal: one append-only file of CRC-framed records for the height being decided.
///
/// Frame: `u32 length`, `u32 CRC-32C of (length ‖ payload)`, payload (the same framing as block-log records).
/// Records written with `sync: false` reach the disk with the next synced one; the node syncs before it signs,
/// so everything that led to a signature is durable before the signature exists. On open, a damaged or
/// partial last frame (a crash mid-write) is cut off; the records before it are returned.
public final class ConsensusJournal {
    public let path: String
    /// Refuses to grow past this many bytes; callers stop journalling peers' messages past it.
    public let byteLimit: Int
    private var fd: Int32
    public private(set) var sizeBytes: Int

    /// Opens (creating if needed) the journal and returns it with the intact records it holds.
    public static func open(path: String, byteLimit: Int = 256 * 1024 * 1024,
                            recordLimit: Int) throws -> (ConsensusJournal, [[UInt8]]) {
        let created = !FileManager.default.fileExists(atPath: path)
        let existing = FileManager.default.contents(atPath: path).map { [UInt8]($0) } ?? []
        var records: [[UInt8]] = []
        var offset = 0
        while existing.count - offset >= 8 {
            let length = Int(existing[offset]) << 24 | Int(existing[offset + 1]) << 16
                | Int(existing[offset + 2]) << 8 | Int(existing[offset + 3])
            let stored = UInt32(existing[offset + 4]) << 24 | UInt32(existing[offset + 5]) << 16
                | UInt32(existing[offset + 6]) << 8 | UInt32(existing[offset + 7])
            guard length <= recordLimit, existing.count - offset - 8 >= length else { break }
            let payload = Array(existing[(offset + 8)..<(offset + 8 + length)])
            guard CRC32C.checksum(Array(existing[offset..<(offset + 4)]) + payload) == stored else { break }
            records.append(payload)
            offset += 8 + length
        }
        let descriptor = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw StorageError.io(file: path, reason: "open failed: errno \(errno)") }
        if offset != existing.count {
            guard ftruncate(descriptor, off_t(offset)) == 0, fsync(descriptor) == 0 else {
                Glibc.close(descriptor)
                throw StorageError.io(file: path, reason: "truncating a torn journal tail failed: errno \(errno)")
            }
        }
        if created {
            // The new file's directory entry must be durable too, or a crash could lose the whole journal.
            do { try SignerState.syncDirectory(of: path) } catch {
                Glibc.close(descriptor)
                throw error
            }
        }
        guard lseek(descriptor, off_t(offset), SEEK_SET) >= 0 else {
            Glibc.close(descriptor)
            throw StorageError.io(file: path, reason: "seek failed: errno \(errno)")
        }
        return (ConsensusJournal(path: path, fd: descriptor, size: offset, byteLimit: byteLimit), records)
    }

    private init(path: String, fd: Int32, size: Int, byteLimit: Int) {
        self.path = path
        self.fd = fd
        self.sizeBytes = size
        self.byteLimit = byteLimit
    }

    /// Whether `count` more payload bytes fit under the limit.
    public func hasRoom(for count: Int) -> Bool { sizeBytes + 8 + count <= byteLimit }

    /// Appends one record; with `sync` it (and all before it) is on disk when this returns.
    public func append(_ payload: [UInt8], sync: Bool) throws {
        guard hasRoom(for: payload.count) else {
            throw StorageError.invalidArgument("consensus journal is full (\(byteLimit) bytes)")
        }
        let length = UInt32(payload.count)
        let lengthBytes: [UInt8] = [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF),
                                    UInt8(length & 0xFF)]
        let crc = CRC32C.checksum(lengthBytes + payload)
        let frame = lengthBytes + [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
            + payload
        try writeAll(frame)
        sizeBytes += frame.count
        if sync { try self.sync() }
    }

    public func sync() throws {
        guard fsync(fd) == 0 else { throw StorageError.io(file: path, reason: "fsync failed: errno \(errno)") }
    }

    /// Empties the journal durably (a new height begins).
    public func reset() throws {
        guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) >= 0, fsync(fd) == 0 else {
            throw StorageError.io(file: path, reason: "truncate failed: errno \(errno)")
        }
        sizeBytes = 0
    }

    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }

    private func writeAll(_ bytes: [UInt8]) throws {
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageError.io(file: path, reason: "write failed: errno \(errno)")
            }
            written += n
        }
    }
}
