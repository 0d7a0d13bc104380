import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// Reads `length` bytes at `offset` in record `index`'s payload, without the frame's checksum (the whole frame is
    /// not read): the caller checks what it reads against a checksum of its own (the index keeps one per transaction).
    public func read(_ index: Int, payloadOffset offset: Int, length: Int) throws(StorageError) -> [UInt8] {
        guard !isClosed else { throw .closed }
        guard index >= 0, index < count else { throw .notFound("record \(index) (count \(count))") }
        let location = location(index)
        guard offset >= 0, length >= 0, offset <= location.payloadLength, length <= location.payloadLength - offset else {
            throw .corrupt(file: location.file, offset: location.offset,
                           reason: "\(length) bytes at \(offset) lie outside the record's \(location.payloadLength)")
        }
        let path = Directory.path(directory, location.file)
        let file = if let active, active.path == path { active } else { try readCache.file(at: path) }
        let at = location.payloadOffset + UInt64(offset)
        let bytes = try file.read(count: length, at: at)
        guard bytes.count == length else {
            throw .corrupt(file: location.file, offset: at, reason: "truncated (\(bytes.count) of \(length) bytes)")
        }
        return bytes
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
