import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An append-only file of CRC-framed records (the block log's framing), owner-only: the node's durable account of
/// refused requests and of signed requests already used. On open, a damaged or partial tail (a crash mid-write) is
/// cut off and the intact records are returned; a write that fails is truncated back, as in the consensus journal.
public final class RecordFile {
    public let path: String
    /// The largest record written or read back; a longer one is refused, never written (it would cut the file
    /// at its position on the next open).
    public let recordLimit: Int
    private var file: PosixFile?
    public private(set) var sizeBytes: Int

    /// Opens (creating if needed) the file and returns it with its intact records, each at most `recordLimit` bytes.
    public static func open(path: String, recordLimit: Int) throws -> (RecordFile, [[UInt8]]) {
        let file = try PosixFile.open(path, flags: O_RDWR | O_CREAT, mode: FileProtection.fileMode)
        do {
            let size = try file.size()
            guard size <= UInt64(Int.max) else { throw StorageError.corrupt(file: path, offset: 0, reason: "file too large") }
            let existing = try file.read(count: Int(size), at: 0)
            let (records, end) = ConsensusJournal.scan(existing, recordLimit: recordLimit)
            if end != existing.count {
                try file.truncate(to: UInt64(end))
                try file.sync()
            }
            return (RecordFile(path: path, file: file, size: end, recordLimit: recordLimit), records)
        } catch {
            file.close()
            throw error
        }
    }

    private init(path: String, file: PosixFile, size: Int, recordLimit: Int) {
        self.path = path
        self.recordLimit = recordLimit
        self.file = file
        self.sizeBytes = size
    }

    /// Appends one record; with `sync` it is durable when this returns.
    public func append(_ payload: [UInt8], sync: Bool) throws {
        guard let file else { throw StorageError.closed }
        guard payload.count <= recordLimit else {
            throw StorageError.corrupt(file: path, offset: UInt64(sizeBytes),
                                       reason: "record of \(payload.count) bytes is over the \(recordLimit)-byte limit; not written")
        }
        let frame = SegmentLayout.frame(payload)
        do {
            try file.write(frame, at: UInt64(sizeBytes))
            if sync { try file.sync() }
        } catch {
            try? file.truncate(to: UInt64(sizeBytes))
            throw error
        }
        sizeBytes += frame.count
    }

    /// Replaces the contents with `records` (written to a new file, synced, renamed over this one).
    public func rewrite(_ records: [[UInt8]]) throws {
        guard let file else { throw StorageError.closed }
        let temporary = path + ".new"
        let fresh = try PosixFile.open(temporary, flags: O_RDWR | O_CREAT | O_TRUNC, mode: FileProtection.fileMode)
        var offset = 0
        do {
            for record in records {
                let frame = SegmentLayout.frame(record)
                try fresh.write(frame, at: UInt64(offset))
                offset += frame.count
            }
            try fresh.sync()
        } catch {
            fresh.close()
            throw error
        }
        guard rename(temporary, path) == 0 else {
            fresh.close()
            throw StorageError.system("rename", path: temporary, errno: errno)
        }
        file.close()
        self.file = fresh
        sizeBytes = offset
    }

    public func close() {
        file?.close()
        file = nil
    }
}
