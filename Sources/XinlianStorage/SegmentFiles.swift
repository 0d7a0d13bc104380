import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
    /// Ledger data is for the node's own user only (`docs/security.md`).
    static let fileMode: mode_t = 0o600
    static let directoryMode: mode_t = 0o700
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

    static func open(_ path: String, flags: Int32, mode: mode_t = SegmentLayout.fileMode) throws(StorageError) -> PosixFile {
        while true {
            let descriptor = systemOpen(path, flags | O_CLOEXEC, mode)
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
