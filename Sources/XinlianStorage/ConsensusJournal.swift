import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The consensus write-ahead journal: one append-only file of CRC-framed records for the height being decided.
///
/// Frame: `u32 length`, `u32 CRC-32C of (length ‖ payload)`, payload — the block log's framing
/// (``SegmentLayout/frame(_:)``). Records written with `sync: false` reach the disk with the next synced one; the
/// node syncs before it signs, so everything that led to a signature is durable before the signature exists.
///
/// A write that fails leaves no partial frame behind: every frame is written at the end of the last good one
/// (`pwrite` at ``sizeBytes``), and a failed write is truncated back to it. Were that truncation to fail too, the
/// journal refuses every later append (``StorageError/poisoned(reason:)``), so nothing is ever written after a
/// damaged frame — a reopen, which cuts the file at the first bad frame, would otherwise lose it. On open, a
/// damaged or partial last frame (a crash mid-write) is cut off; the records before it are returned.
public final class ConsensusJournal {
    public let path: String
    /// Refuses to grow past this many bytes; callers stop journalling peers' messages past it.
    public let byteLimit: Int
    private var file: PosixFile?
    public private(set) var sizeBytes: Int
    /// Set when a failed write could not be undone: the journal takes nothing more until reopened.
    public private(set) var poisoned: String?
    /// Tests only: the next append writes this many bytes of its frame and then fails, as a full disk would.
    var injectedPartialWriteBytes: Int?
    /// Tests only: undoing a failed write fails too.
    var injectedTruncateFailure = false

    static let fileMode: mode_t = 0o600

    /// Opens (creating if needed) the journal and returns it with the intact records it holds.
    public static func open(path: String, byteLimit: Int = 256 * 1024 * 1024,
                            recordLimit: Int) throws -> (ConsensusJournal, [[UInt8]]) {
        let created = !FileManager.default.fileExists(atPath: path)
        let file = try PosixFile.open(path, flags: O_RDWR | O_CREAT, mode: fileMode)
        do {
            let size = try file.size()
            guard size <= UInt64(Int.max) else { throw StorageError.corrupt(file: path, offset: 0, reason: "journal too large") }
            let existing = try file.read(count: Int(size), at: 0)
            let (records, end) = scan(existing, recordLimit: recordLimit)
            if end != existing.count {
                try file.truncate(to: UInt64(end))
                try file.sync()
            }
            if created {
                // The new file's directory entry must be durable too, or a crash could lose the whole journal.
                try SignerState.syncDirectory(of: path)
            }
            return (ConsensusJournal(path: path, file: file, size: end, byteLimit: byteLimit), records)
        } catch {
            file.close()
            throw error
        }
    }

    /// The intact records at the start of `bytes`, and where they end.
    static func scan(_ bytes: [UInt8], recordLimit: Int) -> (records: [[UInt8]], end: Int) {
        var records: [[UInt8]] = []
        var offset = 0
        let header = SegmentLayout.frameHeaderSize
        while bytes.count - offset >= header {
            let length = bytes.bigEndian(UInt32.self, at: offset)
            let stored = bytes.bigEndian(UInt32.self, at: offset + SegmentLayout.checksumFieldOffset)
            guard UInt64(length) <= UInt64(max(recordLimit, 0)), bytes.count - offset - header >= Int(length) else { break }
            let payload = Array(bytes[(offset + header)..<(offset + header + Int(length))])
            guard SegmentLayout.frameChecksum(length: length, payload: payload) == stored else { break }
            records.append(payload)
            offset += header + Int(length)
        }
        return (records, offset)
    }

    private init(path: String, file: PosixFile, size: Int, byteLimit: Int) {
        self.path = path
        self.file = file
        self.sizeBytes = size
        self.byteLimit = byteLimit
    }

    /// Whether `count` more payload bytes fit under the limit.
    public func hasRoom(for count: Int) -> Bool { sizeBytes + SegmentLayout.frameHeaderSize + count <= byteLimit }

    /// Appends one record; with `sync` it (and all before it) is on disk when this returns. On failure the file
    /// ends where it ended before the call.
    public func append(_ payload: [UInt8], sync: Bool) throws {
        guard let file else { throw StorageError.closed }
        if let poisoned { throw StorageError.poisoned(reason: poisoned) }
        guard hasRoom(for: payload.count) else {
            throw StorageError.invalidArgument("consensus journal is full (\(byteLimit) bytes)")
        }
        let frame = SegmentLayout.frame(payload)
        do {
            if let partial = injectedPartialWriteBytes {
                injectedPartialWriteBytes = nil
                try file.write(Array(frame.prefix(partial)), at: UInt64(sizeBytes))
                throw StorageError.io(file: path, reason: "pwrite failed: injected fault")
            }
            try file.write(frame, at: UInt64(sizeBytes))
        } catch {
            undoPartialWrite(file, after: error)
            throw error
        }
        sizeBytes += frame.count
        if sync { try self.sync() }
    }

    /// Cuts whatever a failed write left past the last good frame; if even that fails, refuses all further writes.
    private func undoPartialWrite(_ file: PosixFile, after error: any Error) {
        do {
            if injectedTruncateFailure { throw StorageError.io(file: path, reason: "ftruncate failed: injected fault") }
            try file.truncate(to: UInt64(sizeBytes))
        } catch {
            poisoned = "a failed journal write could not be undone (\(error))"
        }
    }

    public func sync() throws {
        guard let file else { throw StorageError.closed }
        try file.sync()
    }

    /// Empties the journal durably (a new height begins). A poisoned journal stays poisoned: its file may hold a
    /// partial frame that only a reopen cuts.
    public func reset() throws {
        guard let file else { throw StorageError.closed }
        if let poisoned { throw StorageError.poisoned(reason: poisoned) }
        try file.truncate(to: 0)
        try file.sync()
        sizeBytes = 0
    }

    public func close() {
        file?.close()
        file = nil
    }

    deinit { close() }
}
