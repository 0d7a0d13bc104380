import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
