import XinlianCore
import XinlianCrypto
import XinlianStorage

/// Reads an export file without modifying it: header and trailer on open, then records one at a time.
///
/// Every part is checksummed, so a damaged byte is reported as an ``AuditFault`` whose `offset` is the start of
/// the damaged part (the exact byte for a damaged magic) and whose `height` is set when the part is a record.
/// Memory: one record at a time. Owns a file descriptor, closed on deinit.
public final class ExportReader {
    /// The file read.
    public let path: String
    /// Size of the file in bytes.
    public let fileSize: UInt64
    /// The header, checked for integrity on open; checking it against a genesis is the verifier's job.
    public let header: ExportHeader
    /// Checked for integrity on open; checking it against the records is the verifier's job.
    public let trailer: ExportTrailer
    /// Absolute offset of the first record frame.
    public let recordsOffset: UInt64
    /// Absolute offset of the trailer: the end of the record frames.
    public var trailerOffset: UInt64 { fileSize - UInt64(ExportFile.trailerSize) }

    private let file: ReadOnlyFile
    private var cursor: UInt64
    private var nextIndex: UInt64 = 0

    /// The smallest possible export: an empty header body, no records.
    static let minimumSize = ExportFile.headerPrefixSize + ExportFile.checksumSize + ExportFile.trailerSize

    /// Opens `path`, checking the header's and trailer's magic and checksums.
    public init(path: String) throws(AuditFault) {
        let file = try ReadOnlyFile.open(path)
        do throws(AuditFault) {
            let (header, recordsOffset) = try Self.readHeader(file)
            self.trailer = try Self.readTrailer(file)
            self.header = header
            self.recordsOffset = recordsOffset
        } catch {
            file.close()
            throw error
        }
        self.path = path
        self.fileSize = file.size
        self.file = file
        self.cursor = recordsOffset
    }

    deinit {
        file.close()
    }

    /// The next record, or `nil` after the last one (when the frames end exactly at the trailer).
    public func next() throws(AuditFault) -> ExportRecord? {
        guard cursor < trailerOffset else { return nil }
        let start = cursor
        let height = nextIndex + 1
        func fault(_ reason: String) -> AuditFault {
            AuditFault(height: height, file: path, offset: start, reason: reason, code: AuditFaultCode.badExportFrame)
        }
        let frameHeaderSize = UInt64(ExportFile.frameHeaderSize)
        let remaining = trailerOffset - start
        guard remaining >= frameHeaderSize else {
            throw fault("incomplete frame header: \(remaining) bytes before the trailer")
        }
        let frameHeader = try file.read(count: ExportFile.frameHeaderSize, at: start)
        let length = BigEndian.read(UInt32.self, from: frameHeader, at: 0)
        guard length <= ExportFile.recordLimit, UInt64(length) <= remaining - frameHeaderSize else {
            throw fault("frame length \(length) overruns the \(remaining - frameHeaderSize) bytes before the trailer")
        }
        let payload = try file.read(count: Int(length), at: start + frameHeaderSize)
        let stored = BigEndian.read(UInt32.self, from: frameHeader, at: ExportFile.frameHeaderSize / 2)
        guard ExportFrame.checksum(lengthField: frameHeader.prefix(ExportFile.frameHeaderSize / 2), payload: payload) == stored else {
            throw fault("frame checksum mismatch (\(length)-byte record)")
        }
        cursor = start + frameHeaderSize + UInt64(length)
        nextIndex += 1
        return ExportRecord(index: height - 1, height: height, offset: start, payload: payload)
    }

    private static func readHeader(_ file: ReadOnlyFile) throws(AuditFault) -> (ExportHeader, UInt64) {
        func fault(_ offset: UInt64, _ reason: String) -> AuditFault {
            AuditFault(height: nil, file: file.path, offset: offset, reason: reason, code: AuditFaultCode.badExportHeader)
        }
        guard file.size >= UInt64(minimumSize) else {
            throw fault(0, "file is \(file.size) bytes, shorter than the smallest export (\(minimumSize))")
        }
        let prefix = try file.read(count: ExportFile.headerPrefixSize, at: 0)
        if let bad = firstMismatch(prefix.prefix(ExportFile.magic.count), ExportFile.magic) {
            throw fault(UInt64(bad), "not an export file: bad magic")
        }
        let length = Int(BigEndian.read(UInt32.self, from: prefix, at: ExportFile.magic.count))
        let fixedSize = UInt64(ExportFile.headerPrefixSize + ExportFile.checksumSize + ExportFile.trailerSize)
        guard length <= ExportFile.headerBodyLimit, UInt64(length) + fixedSize <= file.size else {
            throw fault(UInt64(ExportFile.magic.count), "header length \(length) is impossible for a \(file.size)-byte file")
        }
        let rest = try file.read(count: length + ExportFile.checksumSize, at: UInt64(ExportFile.headerPrefixSize))
        let body = Array(rest.prefix(length))
        let stored = BigEndian.read(UInt32.self, from: rest, at: length)
        guard CRC32C.update(CRC32C.checksum(prefix), with: body) == stored else {
            throw fault(0, "header checksum mismatch (header is bytes 0..<\(ExportFile.headerPrefixSize + rest.count))")
        }
        let header = try ExportHeader.decode(body: body, file: file.path, offset: UInt64(ExportFile.headerPrefixSize))
        return (header, UInt64(ExportFile.headerPrefixSize + rest.count))
    }

    private static func readTrailer(_ file: ReadOnlyFile) throws(AuditFault) -> ExportTrailer {
        let offset = file.size - UInt64(ExportFile.trailerSize)
        func fault(_ at: UInt64, _ reason: String) -> AuditFault {
            AuditFault(height: nil, file: file.path, offset: at, reason: reason, code: AuditFaultCode.badExportTrailer)
        }
        let bytes = try file.read(count: ExportFile.trailerSize, at: offset)
        let magicSize = ExportFile.trailerMagic.count
        if let bad = firstMismatch(bytes.prefix(magicSize), ExportFile.trailerMagic) {
            throw fault(offset + UInt64(bad), "bad trailer magic (file truncated or not an export)")
        }
        let checked = ExportFile.trailerSize - ExportFile.checksumSize
        guard CRC32C.checksum(bytes.prefix(checked)) == BigEndian.read(UInt32.self, from: bytes, at: checked) else {
            throw fault(offset, "trailer checksum mismatch")
        }
        let countAt = magicSize
        let heightAt = countAt + MemoryLayout<UInt64>.size
        let headAt = heightAt + MemoryLayout<UInt64>.size
        guard let head = Hash32(bytes: bytes[headAt..<checked]) else { throw fault(offset, "malformed trailer") }
        return ExportTrailer(recordCount: BigEndian.read(UInt64.self, from: bytes, at: countAt),
                             lastHeight: BigEndian.read(UInt64.self, from: bytes, at: heightAt), head: head)
    }

    /// Index (from 0) of the first byte where `found` differs from `expected`.
    private static func firstMismatch(_ found: ArraySlice<UInt8>, _ expected: [UInt8]) -> Int? {
        zip(found, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
    }
}
