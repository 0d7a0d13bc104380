#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Big-endian integer packing for the export format.
enum BigEndian {
    static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// Reads a `T` at `offset`; the caller guarantees the bytes are there.
    static func read<T: FixedWidthInteger>(_: T.Type, from bytes: some Collection<UInt8>, at offset: Int) -> T {
        bytes.dropFirst(offset).prefix(MemoryLayout<T>.size).reduce(T.zero) { $0 << 8 | T($1) }
    }

    static func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        var result: [UInt8] = []
        append(value, to: &result)
        return result
    }
}

/// A fault for a failed system call on `path`.
func ioFault(_ operation: String, path: String, errno code: Int32, offset: UInt64 = 0) -> AuditFault {
    AuditFault(height: nil, file: path, offset: offset,
               reason: "\(operation) failed: \(String(cString: strerror(code))) (errno \(code))", code: AuditFaultCode.io)
}

/// A read-only file descriptor. Never writes.
struct ReadOnlyFile {
    let descriptor: Int32
    let path: String
    let size: UInt64

    static func open(_ path: String) throws(AuditFault) -> ReadOnlyFile {
        let descriptor = retryingOpen(path, O_RDONLY | O_CLOEXEC, 0)
        guard descriptor >= 0 else { throw ioFault("open", path: path, errno: errno) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let code = errno
            _ = posixClose(descriptor)
            throw ioFault("fstat", path: path, errno: code)
        }
        return ReadOnlyFile(descriptor: descriptor, path: path, size: UInt64(info.st_size))
    }

    /// Reads exactly `count` bytes at `offset`.
    func read(count: Int, at offset: UInt64) throws(AuditFault) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        var failure: Int32 = 0
        bytes.withUnsafeMutableBytes { buffer in
            while filled < count, let base = buffer.baseAddress {
                let result = pread(descriptor, base + filled, count - filled, off_t(offset) + off_t(filled))
                if result > 0 { filled += result; continue }
                if result < 0, errno == EINTR { continue }
                failure = result < 0 ? errno : EIO
                return
            }
        }
        if failure != 0 { throw ioFault("pread", path: path, errno: failure, offset: offset + UInt64(filled)) }
        return bytes
    }

    func close() {
        _ = posixClose(descriptor)
    }
}

/// A new file written sequentially through a buffer, then synced.
struct OutputFile {
    /// Bytes buffered before a write system call.
    static let bufferBytes = 1 << 20
    /// Exports hold every statement in the ledger: for their owner only.
    static let fileMode: mode_t = 0o600

    let descriptor: Int32
    let path: String
    private(set) var written: UInt64 = 0
    private var buffer: [UInt8] = []

    /// Creates (or truncates) `path`.
    static func create(_ path: String) throws(AuditFault) -> OutputFile {
        let descriptor = retryingOpen(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, fileMode)
        guard descriptor >= 0 else { throw ioFault("open", path: path, errno: errno) }
        // An existing file keeps its mode through O_TRUNC: set it, before anything is written.
        guard fchmod(descriptor, fileMode) == 0 else {
            let code = errno
            _ = posixClose(descriptor)
            throw ioFault("fchmod", path: path, errno: code)
        }
        return OutputFile(descriptor: descriptor, path: path)
    }

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
        buffer.reserveCapacity(Self.bufferBytes)
    }

    /// Bytes appended so far (written or buffered).
    var size: UInt64 { written + UInt64(buffer.count) }

    mutating func append(_ bytes: [UInt8]) throws(AuditFault) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= Self.bufferBytes { try flush() }
    }

    mutating func flush() throws(AuditFault) {
        var done = 0
        var failure: Int32 = 0
        let start = written
        buffer.withUnsafeBytes { raw in
            while done < raw.count, let base = raw.baseAddress {
                let result = pwrite(descriptor, base + done, raw.count - done, off_t(start) + off_t(done))
                if result > 0 { done += result; continue }
                if result < 0, errno == EINTR { continue }
                failure = result < 0 ? errno : EIO
                return
            }
        }
        if failure != 0 { throw ioFault("pwrite", path: path, errno: failure, offset: start + UInt64(done)) }
        written += UInt64(done)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes and fsyncs.
    mutating func sync() throws(AuditFault) {
        try flush()
        guard fsync(descriptor) == 0 else { throw ioFault("fsync", path: path, errno: errno) }
    }

    func close() {
        _ = posixClose(descriptor)
    }
}

/// File-system operations used to publish an export atomically.
enum FileSystem {
    static func rename(_ from: String, to destination: String) throws(AuditFault) {
        guard posixRename(from, destination) == 0 else { throw ioFault("rename", path: from, errno: errno) }
    }

    static func remove(_ path: String) {
        _ = unlink(path)
    }

    /// Fsyncs the directory containing `path`, so a rename into it is durable.
    static func syncParent(of path: String) throws(AuditFault) {
        let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let directory = parent.isEmpty ? (path.hasPrefix("/") ? "/" : ".") : parent
        let descriptor = retryingOpen(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
        guard descriptor >= 0 else { throw ioFault("open", path: directory, errno: errno) }
        defer { _ = posixClose(descriptor) }
        guard fsync(descriptor) == 0 else { throw ioFault("fsync", path: directory, errno: errno) }
    }
}

private func retryingOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    while true {
        let descriptor = open(path, flags, mode)
        if descriptor >= 0 || errno != EINTR { return descriptor }
    }
}

private func posixClose(_ descriptor: Int32) -> Int32 {
    close(descriptor)
}

private func posixRename(_ from: String, _ destination: String) -> Int32 {
    rename(from, destination)
}
