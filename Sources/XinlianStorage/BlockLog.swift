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

// MARK: - On-disk layout

/// Segment file layout constants.
enum SegmentLayout {
    /// ASCII `XLNSEG01`.
    static let magic: [UInt8] = Array("XLNSEG01".utf8)
    /// Magic (8 bytes) + big-endian first record index (8 bytes).
    static let headerSize = 16
    /// Byte offset of the first-index field in the header.
    static let firstIndexFieldOffset: UInt64 = 8
    /// Big-endian payload length (4 bytes) + big-endian CRC32C (4 bytes).
    static let frameHeaderSize = 8
    /// Byte offset of the CRC32C field within a frame header.
    static let checksumFieldOffset = 4
    static let namePrefix = "segment-"
    static let nameSuffix = ".log"
    static let nameDigits = 20
    static let fileMode: mode_t = 0o644
    static let directoryMode: mode_t = 0o755
    /// Read descriptors kept open for sealed segments.
    static let readDescriptorCacheCapacity = 4

    static func fileName(firstIndex: Int) -> String {
        let digits = String(firstIndex)
        let padding = String(repeating: "0", count: max(0, nameDigits - digits.count))
        return namePrefix + padding + digits + nameSuffix
    }

    /// The first record index encoded in a segment file name, or nil if `name` is not a segment file.
    static func firstIndex(fileName name: String) -> Int? {
        guard name.hasPrefix(namePrefix), name.hasSuffix(nameSuffix) else { return nil }
        let digits = name.dropFirst(namePrefix.count).dropLast(nameSuffix.count)
        guard digits.count == nameDigits, digits.allSatisfy(\.isASCII) else { return nil }
        return UInt64(digits).flatMap { Int(exactly: $0) }
    }

    static func header(firstIndex: Int) -> [UInt8] {
        var bytes = magic
        bytes.appendBigEndian(UInt64(firstIndex))
        return bytes
    }

    static func frame(_ payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(frameHeaderSize + payload.count)
        bytes.appendBigEndian(UInt32(payload.count))
        bytes.appendBigEndian(frameChecksum(length: UInt32(payload.count), payload: payload))
        bytes.append(contentsOf: payload)
        return bytes
    }

    /// CRC32C over the big-endian length field and the payload, so that a zero-filled tail
    /// (length 0, checksum 0) is not a valid empty frame.
    static func frameChecksum(length: UInt32, payload: some Collection<UInt8>) -> UInt32 {
        let lengthBytes = [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: length >> UInt32($0)) }
        return CRC32C.update(CRC32C.checksum(lengthBytes), with: payload)
    }
}

extension [UInt8] {
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    func bigEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var value: T = 0
        for byte in self[offset..<(offset + MemoryLayout<T>.size)] { value = value << 8 | T(byte) }
        return value
    }
}

// MARK: - POSIX file

private func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    open(path, flags, mode)
}

private func systemClose(_ descriptor: Int32) {
    _ = close(descriptor)
}

/// A thin wrapper over a POSIX file descriptor. Errors carry the path and errno.
struct PosixFile {
    let descriptor: Int32
    let path: String

    static func open(_ path: String, flags: Int32) throws(StorageError) -> PosixFile {
        while true {
            let descriptor = systemOpen(path, flags | O_CLOEXEC, SegmentLayout.fileMode)
            if descriptor >= 0 { return PosixFile(descriptor: descriptor, path: path) }
            if errno != EINTR { throw .system("open", path: path, errno: errno) }
        }
    }

    func size() throws(StorageError) -> UInt64 {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .system("fstat", path: path, errno: errno) }
        return UInt64(info.st_size)
    }

    /// Reads up to `count` bytes at `offset`; returns fewer only at end of file.
    func read(count: Int, at offset: UInt64) throws(StorageError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        var failure: Int32 = 0
        bytes.withUnsafeMutableBytes { buffer in
            while filled < count, let base = buffer.baseAddress {
                let result = pread(descriptor, base + filled, count - filled, off_t(offset) + off_t(filled))
                if result > 0 { filled += result; continue }
                if result < 0, errno == EINTR { continue }
                failure = result < 0 ? errno : 0
                return
            }
        }
        if failure != 0 { throw .system("pread", path: path, errno: failure) }
        return filled == count ? bytes : Array(bytes[..<filled])
    }

    func write(_ bytes: [UInt8], at offset: UInt64) throws(StorageError) {
        var written = 0
        var failure: Int32 = 0
        bytes.withUnsafeBytes { buffer in
            while written < bytes.count, let base = buffer.baseAddress {
                let result = pwrite(descriptor, base + written, bytes.count - written, off_t(offset) + off_t(written))
                if result > 0 { written += result; continue }
                if result < 0, errno == EINTR { continue }
                failure = result < 0 ? errno : EIO
                return
            }
        }
        if failure != 0 { throw .system("pwrite", path: path, errno: failure) }
    }

    func sync() throws(StorageError) {
        guard fsync(descriptor) == 0 else { throw .system("fsync", path: path, errno: errno) }
    }

    func truncate(to length: UInt64) throws(StorageError) {
        guard ftruncate(descriptor, off_t(length)) == 0 else {
            throw .system("ftruncate", path: path, errno: errno)
        }
    }

    func close() {
        systemClose(descriptor)
    }
}

/// Directory helpers: creation, listing, durable metadata, locking.
enum Directory {
    static func path(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// `mkdir -p`, fsyncing each parent whose contents changed.
    static func create(_ directory: String) throws(StorageError) {
        if mkdir(directory, SegmentLayout.directoryMode) == 0 { return try syncParent(of: directory) }
        let code = errno
        if code == EEXIST { return }
        let parent = URL(fileURLWithPath: directory).deletingLastPathComponent().path
        guard code == ENOENT, parent != directory else {
            throw .system("mkdir", path: directory, errno: code)
        }
        try create(parent)
        try create(directory)
    }

    static func sync(_ directory: String) throws(StorageError) {
        let handle = try PosixFile.open(directory, flags: O_RDONLY | O_DIRECTORY)
        defer { handle.close() }
        try handle.sync()
    }

    static func syncParent(of directory: String) throws(StorageError) {
        try sync(URL(fileURLWithPath: directory).deletingLastPathComponent().path)
    }

    /// Attempts at the lock, 10 ms apart: a process forked elsewhere in this process briefly shares the
    /// previous holder's descriptor (until its exec closes it), so a just-released lock can look taken.
    static let lockAttempts = 50

    /// Opens `directory` and takes an exclusive non-blocking `flock`, held until the handle is closed.
    static func lock(_ directory: String) throws(StorageError) -> PosixFile {
        let handle = try PosixFile.open(directory, flags: O_RDONLY | O_DIRECTORY)
        for attempt in 1...lockAttempts {
            if flock(handle.descriptor, LOCK_EX | LOCK_NB) == 0 { return handle }
            let code = errno
            guard code == EWOULDBLOCK else {
                handle.close()
                throw .system("flock", path: directory, errno: code)
            }
            if attempt < lockAttempts { usleep(10_000) }
        }
        handle.close()
        throw .locked(path: directory)
    }

    /// Segment files in `directory`, ordered by first record index.
    static func segmentFiles(in directory: String) throws(StorageError) -> [(name: String, firstIndex: Int)] {
        guard let stream = opendir(directory) else { throw .system("opendir", path: directory, errno: errno) }
        defer { closedir(stream) }
        var found: [(name: String, firstIndex: Int)] = []
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if let index = SegmentLayout.firstIndex(fileName: name) { found.append((name, index)) }
        }
        return found.sorted { $0.firstIndex < $1.firstIndex }
    }

    static func remove(_ path: String) throws(StorageError) {
        guard unlink(path) == 0 else { throw .system("unlink", path: path, errno: errno) }
    }
}

// MARK: - Scanning

/// Read-only validation of segment files. Never modifies anything.
struct SegmentScanner {
    struct Segment {
        var name: String
        var firstIndex: Int
        /// Byte length of the valid part of the file.
        var endOffset: UInt64
    }

    struct Outcome {
        var segments: [Segment] = []
        var recordCount = 0
        var tornTail: TornTail?
    }

    private enum FrameCheck {
        case valid([UInt8])
        /// `torn` means the damage is explainable by an interrupted append (if it is in the last segment).
        case damaged(reason: String, torn: Bool)
    }

    let directory: String
    let recordSizeLimit: UInt64

    /// Scans every segment in order, calling `onFrame` for each valid record.
    /// Throws `.corrupt` at the first damage that is not a torn tail of the last segment.
    func scan(onFrame: (RecordLocation, [UInt8]) -> Void) throws(StorageError) -> Outcome {
        let files = try Directory.segmentFiles(in: directory)
        var outcome = Outcome()
        for (position, entry) in files.enumerated() {
            let isLast = position == files.count - 1
            try scanSegment(entry.name, nameIndex: entry.firstIndex, isLast: isLast, into: &outcome, onFrame: onFrame)
        }
        return outcome
    }

    private func scanSegment(
        _ name: String, nameIndex: Int, isLast: Bool, into outcome: inout Outcome,
        onFrame: (RecordLocation, [UInt8]) -> Void
    ) throws(StorageError) {
        let file = try PosixFile.open(Directory.path(directory, name), flags: O_RDONLY)
        defer { file.close() }
        let size = try file.size()
        if size < UInt64(SegmentLayout.headerSize) {
            outcome.tornTail = try partialHeader(file, name: name, nameIndex: nameIndex, size: size,
                                                 expected: outcome.recordCount, isLast: isLast)
            return
        }
        try checkHeader(file, name: name, nameIndex: nameIndex, expected: outcome.recordCount)
        var segment = Segment(name: name, firstIndex: nameIndex, endOffset: UInt64(SegmentLayout.headerSize))
        while segment.endOffset < size {
            switch try inspectFrame(file, at: segment.endOffset, size: size) {
            case let .valid(payload):
                let location = RecordLocation(
                    index: outcome.recordCount, file: name, offset: segment.endOffset, payloadLength: payload.count)
                onFrame(location, payload)
                outcome.recordCount += 1
                segment.endOffset += UInt64(SegmentLayout.frameHeaderSize + payload.count)
            case let .damaged(reason, torn):
                guard isLast, torn else { throw .corrupt(file: name, offset: segment.endOffset, reason: reason) }
                outcome.tornTail = TornTail(
                    file: name, offset: segment.endOffset, bytesRemoved: size - segment.endOffset,
                    reason: reason, removesFile: false)
                outcome.segments.append(segment)
                return
            }
        }
        outcome.segments.append(segment)
    }

    /// A segment shorter than its header: a torn tail if it is the last one and holds a prefix of the expected header.
    private func partialHeader(
        _ file: PosixFile, name: String, nameIndex: Int, size: UInt64, expected: Int, isLast: Bool
    ) throws(StorageError) -> TornTail {
        let present = try file.read(count: Int(size), at: 0)
        let expectedHeader = SegmentLayout.header(firstIndex: nameIndex)
        let reason = "incomplete segment header (\(size) of \(SegmentLayout.headerSize) bytes)"
        guard isLast, nameIndex == expected, present[...] == expectedHeader.prefix(present.count) else {
            throw .corrupt(file: name, offset: 0, reason: reason)
        }
        return TornTail(file: name, offset: 0, bytesRemoved: size, reason: reason, removesFile: true)
    }

    private func checkHeader(_ file: PosixFile, name: String, nameIndex: Int, expected: Int) throws(StorageError) {
        let header = try file.read(count: SegmentLayout.headerSize, at: 0)
        guard header.starts(with: SegmentLayout.magic) else {
            throw .corrupt(file: name, offset: 0, reason: "bad segment magic")
        }
        let headerIndex = header.bigEndian(UInt64.self, at: SegmentLayout.magic.count)
        let field = SegmentLayout.firstIndexFieldOffset
        guard headerIndex == UInt64(nameIndex) else {
            throw .corrupt(file: name, offset: field,
                           reason: "header first index \(headerIndex) does not match file name index \(nameIndex)")
        }
        guard nameIndex == expected else {
            throw .corrupt(file: name, offset: field,
                           reason: "segment starts at record \(nameIndex), expected \(expected) (missing or extra segment)")
        }
    }

    private func inspectFrame(_ file: PosixFile, at offset: UInt64, size: UInt64) throws(StorageError) -> FrameCheck {
        let headerSize = UInt64(SegmentLayout.frameHeaderSize)
        let remaining = size - offset
        guard remaining >= headerSize else {
            return .damaged(reason: "incomplete frame header (\(remaining) of \(headerSize) bytes)", torn: true)
        }
        let header = try file.read(count: SegmentLayout.frameHeaderSize, at: offset)
        let length = UInt64(header.bigEndian(UInt32.self, at: 0))
        let reason: String
        if length > recordSizeLimit {
            reason = "payload length \(length) exceeds limit \(recordSizeLimit)"
        } else if remaining - headerSize < length {
            reason = "incomplete payload (\(remaining - headerSize) of \(length) bytes)"
        } else {
            let payload = try file.read(count: Int(length), at: offset + headerSize)
            let stored = header.bigEndian(UInt32.self, at: SegmentLayout.checksumFieldOffset)
            if SegmentLayout.frameChecksum(length: UInt32(length), payload: payload) == stored { return .valid(payload) }
            reason = "checksum mismatch"
        }
        // Only damage with no intact frame anywhere after it is a torn write. A damaged length field
        // misaligns the frame chain, so look for a valid frame at every byte offset, not just on the chain.
        let intact = try firstIntactFrame(file, after: offset, size: size)
        return .damaged(reason: intact.map { "\(reason); an intact frame follows at byte \($0)" } ?? reason, torn: intact == nil)
    }

    /// The offset of the first complete frame with a matching checksum that starts after `offset`, at any byte
    /// position. Runs only on the recovery path; reads the rest of the segment once.
    private func firstIntactFrame(_ file: PosixFile, after offset: UInt64, size: UInt64) throws(StorageError) -> UInt64? {
        let start = offset + 1
        guard size > start else { return nil }
        let bytes = try file.read(count: Int(size - start), at: start)
        let headerSize = SegmentLayout.frameHeaderSize
        var position = 0
        while position + headerSize <= bytes.count {
            let length = bytes.bigEndian(UInt32.self, at: position)
            let end = position + headerSize + Int(length)
            if UInt64(length) <= recordSizeLimit, end <= bytes.count {
                let stored = bytes.bigEndian(UInt32.self, at: position + SegmentLayout.checksumFieldOffset)
                if SegmentLayout.frameChecksum(length: length, payload: bytes[(position + headerSize)..<end]) == stored {
                    return start + UInt64(position)
                }
            }
            position += 1
        }
        return nil
    }
}

/// A bounded LRU of read-only descriptors for segment files.
struct ReadDescriptorCache {
    private var entries: [PosixFile] = []

    mutating func file(at path: String) throws(StorageError) -> PosixFile {
        if let position = entries.firstIndex(where: { $0.path == path }) {
            let file = entries.remove(at: position)
            entries.append(file)
            return file
        }
        let file = try PosixFile.open(path, flags: O_RDONLY)
        if entries.count >= SegmentLayout.readDescriptorCacheCapacity { entries.removeFirst().close() }
        entries.append(file)
        return file
    }

    mutating func evict(path: String) {
        entries.removeAll { entry in
            guard entry.path == path else { return false }
            entry.close()
            return true
        }
    }

    mutating func closeAll() {
        entries.forEach { $0.close() }
        entries.removeAll()
    }
}

// MARK: - Public value types

/// Where a block-log record's frame is stored.
public struct RecordLocation: Sendable, Hashable, CustomStringConvertible {
    /// 0-based record index (block height - 1).
    public var index: Int
    /// Segment file name, relative to the log directory.
    public var file: String
    /// Byte offset of the frame header in `file`.
    public var offset: UInt64
    /// Payload length in bytes.
    public var payloadLength: Int

    /// Byte offset of the payload in `file`.
    public var payloadOffset: UInt64 { offset + UInt64(SegmentLayout.frameHeaderSize) }

    /// Creates a location (e.g. from an auditor's own index).
    public init(index: Int, file: String, offset: UInt64, payloadLength: Int) {
        self.index = index
        self.file = file
        self.offset = offset
        self.payloadLength = payloadLength
    }

    public var description: String { "record \(index) at \(file):\(offset) (\(payloadLength) bytes)" }
}

/// An incomplete or damaged tail of the last segment, left by a crash during an append.
public struct TornTail: Sendable, Equatable, CustomStringConvertible {
    /// Segment file name.
    public var file: String
    /// Byte offset where the valid data ends (the file is truncated here).
    public var offset: UInt64
    /// Bytes after `offset` that were (or, read-only, would be) removed.
    public var bytesRemoved: UInt64
    /// What was wrong with the tail.
    public var reason: String
    /// The whole file is (or would be) deleted because its header is incomplete.
    public var removesFile: Bool

    public var description: String {
        "torn tail in \(file) at byte \(offset): \(bytesRemoved) bytes (\(reason))"
    }
}

// MARK: - BlockLog

/// Append-only, segmented, checksummed record log: the ledger's source of truth.
///
/// Record `i` (0-based) lives in `segment-<20-digit first index>.log`. Each segment is a 16-byte header
/// (`XLNSEG01` + big-endian first index) followed by frames: big-endian UInt32 payload length,
/// big-endian UInt32 CRC32C of (length field ‖ payload), payload.
///
/// Memory: one `UInt64` frame offset per record (8 bytes per record, ~80 MB per 10 million records)
/// plus one small entry per segment; payloads are never cached.
///
/// Recovery on open: only the *last* segment may end in a torn tail (incomplete frame header or payload,
/// a checksum mismatch in the final frame with no valid frame after it, or a partial segment header);
/// it is truncated and reported in ``recoveredTornTail``. Records are acknowledged only after `fsync`, so a
/// damaged final frame was never acknowledged. Any other damage throws ``StorageError/corrupt(file:offset:reason:)``
/// and nothing is modified.
///
/// Not thread-safe; own it from a single actor. A writable log holds an exclusive `flock` on its directory.
public final class BlockLog {
    /// Tunable limits.
    public struct Options: Sendable, Equatable {
        /// Default maximum payload size: 16 MiB of transactions plus 256 KiB for header and certificate
        /// (`Limits.recordBytes`).
        public static let defaultRecordSizeLimitBytes = (16 << 20) + (256 << 10)
        /// Default segment size after which a new segment is started: 64 MiB.
        public static let defaultSegmentSizeTargetBytes = 64 << 20

        /// Maximum payload size accepted by ``BlockLog/append(_:)`` and by the scanner.
        public var recordSizeLimitBytes: Int
        /// A new segment starts when appending would grow the current one beyond this.
        public var segmentSizeTargetBytes: Int

        /// Creates options; the defaults suit production.
        public init(
            recordSizeLimitBytes: Int = Options.defaultRecordSizeLimitBytes,
            segmentSizeTargetBytes: Int = Options.defaultSegmentSizeTargetBytes
        ) {
            self.recordSizeLimitBytes = recordSizeLimitBytes
            self.segmentSizeTargetBytes = segmentSizeTargetBytes
        }

        func validate() throws(StorageError) {
            guard recordSizeLimitBytes >= 0, UInt64(recordSizeLimitBytes) <= UInt64(UInt32.max) else {
                throw .invalidArgument("recordSizeLimitBytes must be in 0...\(UInt32.max)")
            }
            guard segmentSizeTargetBytes > SegmentLayout.headerSize else {
                throw .invalidArgument("segmentSizeTargetBytes must exceed \(SegmentLayout.headerSize)")
            }
        }
    }

    /// Result of ``BlockLog/scan(directory:options:visit:)``.
    public struct ScanReport: Sendable, Equatable {
        /// Valid records visited, in order, before any fault.
        public var recordCount: Int
        /// A torn tail in the last segment (reported, not repaired).
        public var tornTail: TornTail?
        /// The first corruption found; scanning stops there.
        public var fault: StorageError?
    }

    /// The log directory.
    public let directory: String
    /// The options the log was opened with.
    public let options: Options
    /// True for logs opened with ``openReadOnly(directory:options:)``.
    public let isReadOnly: Bool
    /// The torn tail found on open: truncated in a writable log, only reported in a read-only one.
    public let recoveredTornTail: TornTail?

    private var segments: [SegmentScanner.Segment]
    private var frameOffsets: [UInt64]
    private var active: PosixFile?
    private var directoryLock: PosixFile?
    private var readCache = ReadDescriptorCache()
    private var failure: StorageError?
    private var isClosed = false

    /// Opens (creating if needed) a writable log, repairing a torn tail in the last segment.
    public convenience init(directory: String, options: Options = .init()) throws(StorageError) {
        try self.init(directory: directory, options: options, readOnly: false)
    }

    /// Opens an existing log without writing anything: a torn tail is reported in ``recoveredTornTail``
    /// and excluded from ``count``, but left on disk. Takes no lock.
    public static func openReadOnly(directory: String, options: Options = .init()) throws(StorageError) -> BlockLog {
        try BlockLog(directory: directory, options: options, readOnly: true)
    }

    private init(directory: String, options: Options, readOnly: Bool) throws(StorageError) {
        try options.validate()
        if !readOnly { try Directory.create(directory) }
        let lock = readOnly ? nil : try Directory.lock(directory)
        do {
            var offsets: [UInt64] = []
            let scanner = SegmentScanner(directory: directory, recordSizeLimit: UInt64(options.recordSizeLimitBytes))
            let outcome = try scanner.scan { location, _ in offsets.append(location.offset) }
            if !readOnly, let torn = outcome.tornTail { try Self.repair(torn, in: directory) }
            self.active = try readOnly ? nil : outcome.segments.last.map { segment throws(StorageError) in
                try PosixFile.open(Directory.path(directory, segment.name), flags: O_RDWR)
            }
            self.segments = outcome.segments
            self.frameOffsets = offsets
            self.recoveredTornTail = outcome.tornTail
        } catch {
            lock?.close()
            throw error
        }
        self.directory = directory
        self.options = options
        self.isReadOnly = readOnly
        self.directoryLock = lock
    }

    deinit {
        close()
    }

    /// Removes a torn tail found by the scanner (whose segment list already excludes it).
    private static func repair(_ torn: TornTail, in directory: String) throws(StorageError) {
        let path = Directory.path(directory, torn.file)
        if torn.removesFile {
            try Directory.remove(path)
            try Directory.sync(directory)
            return
        }
        let file = try PosixFile.open(path, flags: O_WRONLY)
        defer { file.close() }
        try file.truncate(to: torn.offset)
        try file.sync()
    }

    // MARK: Reading

    /// Number of durable records.
    public var count: Int { frameOffsets.count }

    /// Segment file names, in order.
    public var segmentFiles: [String] { segments.map(\.name) }

    /// Where record `index` is stored. Precondition: `0 <= index < count`.
    public func location(_ index: Int) -> RecordLocation {
        precondition(index >= 0 && index < count, "record index \(index) out of range 0..<\(count)")
        let position = segmentPosition(containing: index)
        let segment = segments[position]
        let nextStart = position + 1 < segments.count ? segments[position + 1].firstIndex : count
        let end = index + 1 < nextStart ? frameOffsets[index + 1] : segment.endOffset
        let offset = frameOffsets[index]
        let length = Int(end - offset) - SegmentLayout.frameHeaderSize
        return RecordLocation(index: index, file: segment.name, offset: offset, payloadLength: length)
    }

    /// Reads record `index`, verifying its checksum.
    public func read(_ index: Int) throws(StorageError) -> [UInt8] {
        guard !isClosed else { throw .closed }
        guard index >= 0, index < count else { throw .notFound("record \(index) (count \(count))") }
        let location = location(index)
        let path = Directory.path(directory, location.file)
        if let active, active.path == path { return try Self.readFrame(active, at: location) }
        return try Self.readFrame(readCache.file(at: path), at: location)
    }

    /// Reads the frame at `location` in a log directory (for offline auditors), verifying length and checksum.
    public static func readRecord(directory: String, at location: RecordLocation) throws(StorageError) -> [UInt8] {
        let file = try PosixFile.open(Directory.path(directory, location.file), flags: O_RDONLY)
        defer { file.close() }
        return try readFrame(file, at: location)
    }

    private static func readFrame(_ file: PosixFile, at location: RecordLocation) throws(StorageError) -> [UInt8] {
        let frameSize = SegmentLayout.frameHeaderSize + location.payloadLength
        let frame = try file.read(count: frameSize, at: location.offset)
        func corrupt(_ reason: String) -> StorageError {
            .corrupt(file: location.file, offset: location.offset, reason: reason)
        }
        guard frame.count == frameSize else { throw corrupt("frame truncated (\(frame.count) of \(frameSize) bytes)") }
        let length = frame.bigEndian(UInt32.self, at: 0)
        guard length == location.payloadLength else {
            throw corrupt("length field \(length) does not match expected \(location.payloadLength)")
        }
        let payload = Array(frame[SegmentLayout.frameHeaderSize...])
        guard SegmentLayout.frameChecksum(length: length, payload: payload) == frame.bigEndian(UInt32.self, at: SegmentLayout.checksumFieldOffset) else {
            throw corrupt("checksum mismatch")
        }
        return payload
    }

    /// Validates a log directory without modifying it, passing each valid record and its location to `visit`.
    /// Corruption does not throw: scanning stops and the fault is returned in the report. Memory is bounded by
    /// one record at a time.
    public static func scan(
        directory: String, options: Options = .init(), visit: (RecordLocation, [UInt8]) -> Void
    ) throws(StorageError) -> ScanReport {
        try options.validate()
        let scanner = SegmentScanner(directory: directory, recordSizeLimit: UInt64(options.recordSizeLimitBytes))
        var visited = 0
        do {
            let outcome = try scanner.scan { location, payload in
                visited += 1
                visit(location, payload)
            }
            return ScanReport(recordCount: visited, tornTail: outcome.tornTail, fault: nil)
        } catch {
            guard case .corrupt = error else { throw error }
            return ScanReport(recordCount: visited, tornTail: nil, fault: error)
        }
    }

    private func segmentPosition(containing index: Int) -> Int {
        var low = 0
        var high = segments.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if segments[middle].firstIndex <= index { low = middle } else { high = middle - 1 }
        }
        return low
    }

    private func activeFile() throws(StorageError) -> PosixFile {
        guard let active else { throw .closed }
        return active
    }

    // MARK: Writing

    /// Appends one record; returns only after the frame (and any new segment) is durable.
    @discardableResult
    public func append(_ payload: [UInt8]) throws(StorageError) -> RecordLocation {
        let locations = try appendBatch([payload])
        guard let location = locations.first else { throw .invalidArgument("append produced no record") }
        return location
    }

    /// Appends records with one `fsync` per touched segment; returns after all are durable.
    /// All payloads are size-checked before anything is written.
    @discardableResult
    public func appendBatch(_ payloads: [[UInt8]]) throws(StorageError) -> [RecordLocation] {
        try ensureWritable()
        for payload in payloads where payload.count > options.recordSizeLimitBytes {
            throw .recordTooLarge(size: payload.count, limit: options.recordSizeLimitBytes)
        }
        do {
            return try writeBatch(payloads)
        } catch {
            failure = failure ?? error
            throw error
        }
    }

    private func writeBatch(_ payloads: [[UInt8]]) throws(StorageError) -> [RecordLocation] {
        var pending = PendingWrites()
        var locations: [RecordLocation] = []
        for payload in payloads {
            let frame = SegmentLayout.frame(payload)
            if try needsNewSegment(frameSize: frame.count, pending: pending) {
                try commit(&pending)
                try startSegment()
            }
            locations.append(try write(frame, payloadLength: payload.count, pending: &pending))
        }
        try commit(&pending)
        return locations
    }

    /// Frames written to the active segment but not yet fsynced.
    private struct PendingWrites {
        var offsets: [UInt64] = []
        var endOffset: UInt64?
    }

    private func needsNewSegment(frameSize: Int, pending: PendingWrites) throws(StorageError) -> Bool {
        guard let segment = segments.last, active != nil else { return true }
        let hasRecords = segment.firstIndex < count + pending.offsets.count
        let end = pending.endOffset ?? segment.endOffset
        return hasRecords && end + UInt64(frameSize) > UInt64(options.segmentSizeTargetBytes)
    }

    private func write(
        _ frame: [UInt8], payloadLength: Int, pending: inout PendingWrites
    ) throws(StorageError) -> RecordLocation {
        guard let segment = segments.last else { throw .closed }
        let offset = pending.endOffset ?? segment.endOffset
        try activeFile().write(frame, at: offset)
        pending.offsets.append(offset)
        pending.endOffset = offset + UInt64(frame.count)
        return RecordLocation(index: count + pending.offsets.count - 1, file: segment.name,
                              offset: offset, payloadLength: payloadLength)
    }

    /// Makes pending frames durable, then publishes them.
    private func commit(_ pending: inout PendingWrites) throws(StorageError) {
        guard let end = pending.endOffset, !segments.isEmpty else { return }
        try activeFile().sync()
        frameOffsets.append(contentsOf: pending.offsets)
        segments[segments.count - 1].endOffset = end
        pending = PendingWrites()
    }

    /// Creates a segment starting at record `count` with a durable header and directory entry.
    private func startSegment() throws(StorageError) {
        let name = SegmentLayout.fileName(firstIndex: count)
        let file = try PosixFile.open(Directory.path(directory, name), flags: O_RDWR | O_CREAT | O_EXCL)
        do {
            try file.write(SegmentLayout.header(firstIndex: count), at: 0)
            try file.sync()
            try Directory.sync(directory)
        } catch {
            file.close()
            throw error
        }
        active?.close()
        active = file
        segments.append(.init(name: name, firstIndex: count, endOffset: UInt64(SegmentLayout.headerSize)))
    }

    /// Drops records `newCount..<count` (operator repair and tests). Whole segments are deleted newest first,
    /// so a crash midway leaves a valid prefix.
    public func truncate(toCount newCount: Int) throws(StorageError) {
        try ensureWritable()
        guard newCount >= 0, newCount <= count else {
            throw .invalidArgument("truncate(toCount: \(newCount)) outside 0...\(count)")
        }
        guard newCount < count else { return }
        do {
            try dropRecords(from: newCount)
        } catch {
            failure = failure ?? error
            throw error
        }
    }

    /// Updates the in-memory view first, so after a failure it is still a prefix of what is on disk.
    private func dropRecords(from newCount: Int) throws(StorageError) {
        let position = segmentPosition(containing: newCount)
        let keepsPart = segments[position].firstIndex < newCount
        let cutOffset = frameOffsets[newCount]
        let firstRemoved = keepsPart ? position + 1 : position
        let removed = segments[firstRemoved...]
        segments.removeSubrange(firstRemoved...)
        frameOffsets.removeSubrange(newCount...)
        if keepsPart { segments[segments.count - 1].endOffset = cutOffset }
        active?.close()
        active = nil
        for segment in removed.reversed() {
            let path = Directory.path(directory, segment.name)
            readCache.evict(path: path)
            try Directory.remove(path)
        }
        try Directory.sync(directory)
        try reopenLastSegment(truncatingTo: keepsPart ? cutOffset : nil)
    }

    private func reopenLastSegment(truncatingTo length: UInt64?) throws(StorageError) {
        guard let last = segments.last else { return }
        let path = Directory.path(directory, last.name)
        readCache.evict(path: path)
        let file = try PosixFile.open(path, flags: O_RDWR)
        active = file
        guard let length else { return }
        try file.truncate(to: length)
        try file.sync()
    }

    private func ensureWritable() throws(StorageError) {
        guard !isClosed else { throw .closed }
        guard !isReadOnly else { throw .readOnly }
        if let failure { throw .poisoned(reason: failure.description) }
    }

    /// Closes all descriptors and releases the directory lock. Idempotent.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        active?.close()
        active = nil
        readCache.closeAll()
        directoryLock?.close()
        directoryLock = nil
    }
}
