import Foundation
import Testing
import XinlianStorage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Test support

/// Deterministic PRNG (SplitMix64) for reproducible payloads.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(count + 8)
        while result.count < count { withUnsafeBytes(of: next()) { result.append(contentsOf: $0) } }
        return Array(result.prefix(count))
    }
}

/// Runs `body` with a fresh directory that is removed afterwards.
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-storage-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url.path)
}

/// Every file in `directory` with its bytes.
func snapshot(_ directory: String) throws -> [String: Data] {
    var files: [String: Data] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
        files[name] = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
    }
    return files
}

func copyDirectory(_ source: String, to destination: String) throws {
    try? FileManager.default.removeItem(atPath: destination)
    try FileManager.default.copyItem(atPath: source, toPath: destination)
}

func truncateFile(_ path: String, to length: UInt64) throws {
    let handle = try #require(FileHandle(forWritingAtPath: path))
    defer { try? handle.close() }
    try handle.truncate(atOffset: length)
}

func fileSize(_ path: String) throws -> UInt64 {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return try #require((attributes[.size] as? NSNumber)?.uint64Value)
}

/// XORs `mask` into the byte at `offset` of `path`.
func flipByte(_ path: String, at offset: UInt64, mask: UInt8 = 0x01) throws {
    var data = try Data(contentsOf: URL(fileURLWithPath: path))
    data[Int(offset)] ^= mask
    try data.write(to: URL(fileURLWithPath: path))
}

func overwrite(_ path: String, at offset: UInt64, with bytes: [UInt8]) throws {
    var data = try Data(contentsOf: URL(fileURLWithPath: path))
    data.replaceSubrange(Int(offset)..<(Int(offset) + bytes.count), with: bytes)
    try data.write(to: URL(fileURLWithPath: path))
}

// MARK: - Tests

@Suite struct BlockLogTests {
    private static let frameHeaderSize: UInt64 = 8
    private static let segmentHeaderSize: UInt64 = 16
    private static let smallSegments = BlockLog.Options(segmentSizeTargetBytes: 256)

    /// Small payloads of varying size (including empty).
    private func smallPayloads(_ count: Int, seed: UInt64) -> [[UInt8]] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { index in rng.bytes(index % 7 == 0 ? 0 : Int(rng.next() % 40)) }
    }

    private func makeLog(_ directory: String, _ payloads: [[UInt8]], options: BlockLog.Options) throws {
        let log = try BlockLog(directory: directory, options: options)
        for payload in payloads { try log.append(payload) }
        log.close()
    }

    private func expectRecords(_ log: BlockLog, equal payloads: [[UInt8]]) throws {
        #expect(log.count == payloads.count)
        for (index, payload) in payloads.enumerated() { #expect(try log.read(index) == payload) }
    }

    private func expectCorrupt(
        file: String, offset: UInt64, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let error = #expect(throws: StorageError.self, sourceLocation: sourceLocation) { try body() }
        guard case let .corrupt(actualFile, actualOffset, _) = error else {
            Issue.record("expected .corrupt, got \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
        #expect(actualFile == file, sourceLocation: sourceLocation)
        #expect(actualOffset == offset, sourceLocation: sourceLocation)
        #expect(error?.code == "corrupt", sourceLocation: sourceLocation)
    }

    /// Open (writable and read-only) and scan all fail with the expected fault and modify nothing.
    private func expectRejected(_ directory: String, file: String, offset: UInt64, options: BlockLog.Options) throws {
        let before = try snapshot(directory)
        expectCorrupt(file: file, offset: offset) { _ = try BlockLog(directory: directory, options: options) }
        expectCorrupt(file: file, offset: offset) { _ = try BlockLog.openReadOnly(directory: directory, options: options) }
        let report = try BlockLog.scan(directory: directory, options: options) { _, _ in }
        #expect(report.fault?.code == "corrupt")
        #expect(try snapshot(directory) == before)
    }

    // MARK: Round trip

    @Test func roundTripAcrossSegments() throws {
        try withTemporaryDirectory { directory in
            var rng = SplitMix64(seed: 42)
            let options = BlockLog.Options(segmentSizeTargetBytes: 4_096)
            let payloads = (0..<150).map { index in
                rng.bytes(index % 10 == 0 ? Int(rng.next() % (100 * 1_024 + 1)) : Int(rng.next() % 700))
            }
            let log = try BlockLog(directory: directory, options: options)
            for (index, payload) in payloads.enumerated() {
                let location = try log.append(payload)
                #expect(location.index == index)
                #expect(location.payloadLength == payload.count)
                #expect(log.location(index) == location)
            }
            #expect(log.segmentFiles.count > 10)
            try expectRecords(log, equal: payloads)
            log.close()

            let reopened = try BlockLog(directory: directory, options: options)
            #expect(reopened.recoveredTornTail == nil)
            try expectRecords(reopened, equal: payloads)
            for index in payloads.indices {
                let location = reopened.location(index)
                #expect(try BlockLog.readRecord(directory: directory, at: location) == payloads[index])
            }
        }
    }

    @Test func segmentFilesFollowNamingAndHeaderFormat() throws {
        try withTemporaryDirectory { directory in
            try makeLog(directory, smallPayloads(40, seed: 1), options: Self.smallSegments)
            let log = try BlockLog.openReadOnly(directory: directory, options: Self.smallSegments)
            #expect(log.segmentFiles.first == "segment-00000000000000000000.log")
            for name in log.segmentFiles {
                let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
                #expect(Array(data.prefix(8)) == Array("XLNSEG01".utf8))
                let first = data[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                #expect(name == "segment-" + String(repeating: "0", count: 20 - String(first).count) + "\(first).log")
                #expect(log.location(Int(first)).file == name)
                #expect(log.location(Int(first)).offset == Self.segmentHeaderSize)
            }
        }
    }

    @Test func appendBatchIsDurableAcrossSegments() throws {
        try withTemporaryDirectory { directory in
            let payloads = smallPayloads(60, seed: 3)
            let log = try BlockLog(directory: directory, options: Self.smallSegments)
            let locations = try log.appendBatch(Array(payloads[..<30]))
            try log.appendBatch(Array(payloads[30...]))
            #expect(locations.map(\.index) == Array(0..<30))
            #expect(log.segmentFiles.count > 2)
            log.close()
            try expectRecords(try BlockLog(directory: directory, options: Self.smallSegments), equal: payloads)
        }
    }

    // MARK: Crash recovery

    /// Cuts the last segment at every byte inside the last three frames and checks recovery.
    @Test func crashAtEveryWritePoint() throws {
        try withTemporaryDirectory { root in
            let original = root + "/original"
            let payloads = smallPayloads(20, seed: 9) + [[7, 7, 7], [], Array(repeating: 1, count: 33)]
            let options = BlockLog.Options(segmentSizeTargetBytes: 512)
            try makeLog(original, payloads, options: options)
            let log = try BlockLog.openReadOnly(directory: original, options: options)
            let tail = (payloads.count - 3..<payloads.count).map { log.location($0) }
            let lastFile = try #require(log.segmentFiles.last)
            try #require(tail.allSatisfy { $0.file == lastFile })
            let fileEnd = try fileSize(original + "/" + lastFile)
            let boundaries = tail.map(\.offset) + [fileEnd]
            for cut in boundaries[0]..<fileEnd {
                let complete = payloads.count - 3 + (boundaries.lastIndex { $0 <= cut } ?? 0)
                let tornStart = boundaries.last { $0 <= cut } ?? cut
                try checkRecovery(from: original, in: root + "/copy", file: lastFile, cut: cut,
                                  payloads: Array(payloads[..<complete]), tornStart: tornStart, options: options)
            }
        }
    }

    private func checkRecovery(
        from original: String, in copy: String, file: String, cut: UInt64,
        payloads: [[UInt8]], tornStart: UInt64, options: BlockLog.Options
    ) throws {
        try copyDirectory(original, to: copy)
        try truncateFile(copy + "/" + file, to: cut)
        let log = try BlockLog(directory: copy, options: options)
        try expectRecords(log, equal: payloads)
        if cut == tornStart {
            #expect(log.recoveredTornTail == nil)
        } else {
            let torn = try #require(log.recoveredTornTail)
            #expect(torn.file == file && torn.offset == tornStart && torn.bytesRemoved == cut - tornStart)
        }
        #expect(try fileSize(copy + "/" + file) == tornStart)
        let extra: [UInt8] = [0xEE, 0xFF]
        try log.append(extra)
        log.close()
        let reopened = try BlockLog(directory: copy, options: options)
        #expect(reopened.recoveredTornTail == nil)
        try expectRecords(reopened, equal: payloads + [extra])
    }

    /// A crash while creating a segment leaves a zero-length or partial-header file: it is removed.
    @Test func crashDuringSegmentCreation() throws {
        try withTemporaryDirectory { root in
            let original = root + "/original"
            let options = BlockLog.Options(segmentSizeTargetBytes: 128)
            let payloads = smallPayloads(10, seed: 5)
            try makeLog(original, payloads, options: options)
            let before = try BlockLog.openReadOnly(directory: original, options: options).segmentFiles
            let log = try BlockLog(directory: original, options: options)
            let rolled = try log.append(Array(repeating: 9, count: 120))
            log.close()
            #expect(!before.contains(rolled.file))
            for cut in 0..<Self.segmentHeaderSize {
                try checkSegmentCreationCrash(original, root + "/copy", rolled.file, cut, payloads, options)
            }
            // Header complete but no frame: a valid empty segment, then frame tears inside it.
            try checkRecovery(from: original, in: root + "/copy", file: rolled.file, cut: Self.segmentHeaderSize,
                              payloads: payloads, tornStart: Self.segmentHeaderSize, options: options)
            try checkRecovery(from: original, in: root + "/copy", file: rolled.file, cut: Self.segmentHeaderSize + 9,
                              payloads: payloads, tornStart: Self.segmentHeaderSize, options: options)
        }
    }

    private func checkSegmentCreationCrash(
        _ original: String, _ copy: String, _ file: String, _ cut: UInt64, _ payloads: [[UInt8]],
        _ options: BlockLog.Options
    ) throws {
        try copyDirectory(original, to: copy)
        try truncateFile(copy + "/" + file, to: cut)
        let log = try BlockLog(directory: copy, options: options)
        let torn = try #require(log.recoveredTornTail)
        #expect(torn.file == file && torn.removesFile && torn.offset == 0 && torn.bytesRemoved == cut)
        #expect(!FileManager.default.fileExists(atPath: copy + "/" + file))
        try expectRecords(log, equal: payloads)
        let large = [UInt8](repeating: 9, count: 120)
        let location = try log.append(large)
        #expect(location.file == file && location.offset == Self.segmentHeaderSize)
        log.close()
        try expectRecords(try BlockLog(directory: copy, options: options), equal: payloads + [large])
    }

    /// A partial header whose bytes do not match the expected header is corruption, not a tear.
    @Test func garbledPartialHeaderIsCorrupt() throws {
        try withTemporaryDirectory { directory in
            try makeLog(directory, smallPayloads(3, seed: 2), options: Self.smallSegments)
            let name = "segment-00000000000000000003.log"
            try Data("XLNSEG9".utf8).write(to: URL(fileURLWithPath: directory + "/" + name))
            try expectRejected(directory, file: name, offset: 0, options: Self.smallSegments)
        }
    }

    /// Documented choice: a checksum mismatch in the final frame is a torn tail. Records are acknowledged only
    /// after fsync, so a final frame that fails its checksum was never acknowledged.
    @Test func flippedByteInFinalRecordIsTornTail() throws {
        try withTemporaryDirectory { directory in
            let payloads = smallPayloads(12, seed: 4) + [[1, 2, 3, 4, 5]]
            try makeLog(directory, payloads, options: Self.smallSegments)
            let last = try BlockLog.openReadOnly(directory: directory, options: Self.smallSegments)
                .location(payloads.count - 1)
            try flipByte(directory + "/" + last.file, at: last.payloadOffset + 2)
            let log = try BlockLog(directory: directory, options: Self.smallSegments)
            let torn = try #require(log.recoveredTornTail)
            #expect(torn.file == last.file && torn.offset == last.offset && torn.reason == "checksum mismatch")
            #expect(torn.bytesRemoved == Self.frameHeaderSize + 5)
            try expectRecords(log, equal: Array(payloads.dropLast()))
        }
    }

    @Test func readOnlyOpenReportsTearAndModifiesNothing() throws {
        try withTemporaryDirectory { directory in
            let payloads = smallPayloads(15, seed: 6)
            try makeLog(directory, payloads, options: Self.smallSegments)
            let writable = try BlockLog(directory: directory, options: Self.smallSegments)
            let last = writable.location(payloads.count - 1)
            writable.close()
            let cut = last.offset + 5
            try truncateFile(directory + "/" + last.file, to: cut)
            let before = try snapshot(directory)

            let log = try BlockLog.openReadOnly(directory: directory, options: Self.smallSegments)
            #expect(log.isReadOnly)
            let torn = try #require(log.recoveredTornTail)
            #expect(torn.file == last.file && torn.offset == last.offset && torn.bytesRemoved == 5)
            try expectRecords(log, equal: Array(payloads.dropLast()))
            #expect(throws: StorageError.readOnly) { try log.append([1]) }
            #expect(throws: StorageError.readOnly) { try log.truncate(toCount: 0) }

            var visited: [[UInt8]] = []
            let report = try BlockLog.scan(directory: directory, options: Self.smallSegments) { visited.append($1) }
            #expect(report.tornTail == torn && report.fault == nil && report.recordCount == payloads.count - 1)
            #expect(visited == Array(payloads.dropLast()))
            #expect(try snapshot(directory) == before)
        }
    }

    // MARK: Corruption

    @Test(arguments: [3, 20, 33])
    func flippedByteInNonFinalRecordIsCorrupt(record: Int) throws {
        try withTemporaryDirectory { directory in
            let payloads = (0..<40).map { [UInt8](repeating: UInt8($0), count: 10 + $0 % 5) }
            try makeLog(directory, payloads, options: Self.smallSegments)
            let target = try BlockLog.openReadOnly(directory: directory, options: Self.smallSegments).location(record)
            try flipByte(directory + "/" + target.file, at: target.payloadOffset + 1)
            try expectRejected(directory, file: target.file, offset: target.offset, options: Self.smallSegments)
            var visited = 0
            let report = try BlockLog.scan(directory: directory, options: Self.smallSegments) { _, _ in visited += 1 }
            #expect(report.recordCount == record && visited == record)
        }
    }

    @Test func damagedLengthFieldInSealedSegmentIsCorrupt() throws {
        try withTemporaryDirectory { directory in
            try makeLog(directory, smallPayloads(40, seed: 8), options: Self.smallSegments)
            let log = try BlockLog.openReadOnly(directory: directory, options: Self.smallSegments)
            let target = log.location(2)
            try #require(target.file != log.segmentFiles.last)
            try flipByte(directory + "/" + target.file, at: target.offset + 3, mask: 0x04)
            try expectRejected(directory, file: target.file, offset: target.offset, options: Self.smallSegments)
        }
    }

    @Test func badMagicIsCorrupt() throws {
        try withTemporaryDirectory { directory in
            try makeLog(directory, smallPayloads(40, seed: 10), options: Self.smallSegments)
            let files = try BlockLog.openReadOnly(directory: directory, options: Self.smallSegments).segmentFiles
            for file in [files[0], try #require(files.last)] {
                try flipByte(directory + "/" + file, at: 2)
                try expectRejected(directory, file: file, offset: 0, options: Self.smallSegments)
                try flipByte(directory + "/" + file, at: 2)
            }
        }
    }

    @Test func missingMiddleSegmentIsCorrupt() throws {
        try withTemporaryDirectory { directory in
            try makeLog(directory, smallPayloads(40, seed: 12), options: Self.smallSegments)
            let files = try BlockLog.openReadOnly(directory: directory, options: Self.smallSegments).segmentFiles
            try #require(files.count >= 3)
            try FileManager.default.removeItem(atPath: directory + "/" + files[1])
            try expectRejected(directory, file: files[2], offset: 8, options: Self.smallSegments)
        }
    }

    @Test func missingFirstSegmentIsCorrupt() throws {
        try withTemporaryDirectory { directory in
            try makeLog(directory, smallPayloads(40, seed: 13), options: Self.smallSegments)
            let files = try BlockLog.openReadOnly(directory: directory, options: Self.smallSegments).segmentFiles
            try FileManager.default.removeItem(atPath: directory + "/" + files[0])
            try expectRejected(directory, file: files[1], offset: 8, options: Self.smallSegments)
        }
    }

    @Test func readVerifiesChecksum() throws {
        try withTemporaryDirectory { directory in
            let payloads = smallPayloads(30, seed: 14).map { $0 + [0xAA] }
            let log = try BlockLog(directory: directory, options: Self.smallSegments)
            try log.appendBatch(payloads)
            for index in [0, payloads.count - 1] {
                let location = log.location(index)
                try flipByte(directory + "/" + location.file, at: location.payloadOffset)
                expectCorrupt(file: location.file, offset: location.offset) { _ = try log.read(index) }
                expectCorrupt(file: location.file, offset: location.offset) {
                    _ = try BlockLog.readRecord(directory: directory, at: location)
                }
            }
            #expect(try log.read(1) == payloads[1])
            let missing = #expect(throws: StorageError.self) { try log.read(payloads.count) }
            #expect(missing?.code == "not_found")
        }
    }

    // MARK: Limits

    @Test func oversizedRecordIsRejectedOnAppend() throws {
        try withTemporaryDirectory { directory in
            let options = BlockLog.Options(recordSizeLimitBytes: 1_024, segmentSizeTargetBytes: 4_096)
            let log = try BlockLog(directory: directory, options: options)
            try log.append([UInt8](repeating: 1, count: 1_024))
            let error = #expect(throws: StorageError.recordTooLarge(size: 1_025, limit: 1_024)) {
                try log.append([UInt8](repeating: 2, count: 1_025))
            }
            #expect(error?.code == "record_too_large")
            #expect(throws: StorageError.recordTooLarge(size: 2_000, limit: 1_024)) {
                try log.appendBatch([[3], [UInt8](repeating: 3, count: 2_000)])
            }
            #expect(log.count == 1)
            try log.append([4])
            log.close()
            try expectRecords(try BlockLog(directory: directory, options: options),
                              equal: [[UInt8](repeating: 1, count: 1_024), [4]])
        }
    }

    @Test func lengthOverLimitMidSegmentIsCorrupt() throws {
        try withTemporaryDirectory { directory in
            let options = BlockLog.Options(recordSizeLimitBytes: 64, segmentSizeTargetBytes: 4_096)
            try makeLog(directory, smallPayloads(10, seed: 15), options: options)
            let target = try BlockLog.openReadOnly(directory: directory, options: options).location(7)
            try overwrite(directory + "/" + target.file, at: target.offset, with: [0, 0, 0, 65])
            try expectRejected(directory, file: target.file, offset: target.offset, options: options)
        }
    }

    // MARK: Maintenance

    @Test func truncateDropsRecordsAcrossSegments() throws {
        try withTemporaryDirectory { directory in
            let payloads = smallPayloads(60, seed: 16)
            let log = try BlockLog(directory: directory, options: Self.smallSegments)
            try log.appendBatch(payloads)
            let boundary = try #require((1..<60).first { log.location($0).offset == Self.segmentHeaderSize })
            for count in [55, boundary, boundary - 1, 0] {
                try log.truncate(toCount: count)
                try expectRecords(log, equal: Array(payloads[..<count]))
            }
            try log.truncate(toCount: 0)
            #expect(log.segmentFiles.isEmpty)
            try log.appendBatch(Array(payloads[..<10]))
            #expect(throws: StorageError.invalidArgument("truncate(toCount: 11) outside 0...10")) {
                try log.truncate(toCount: 11)
            }
            log.close()
            try expectRecords(try BlockLog(directory: directory, options: Self.smallSegments), equal: Array(payloads[..<10]))
        }
    }

    @Test func truncateToSegmentBoundaryThenReopen() throws {
        try withTemporaryDirectory { directory in
            let payloads = smallPayloads(60, seed: 17)
            let log = try BlockLog(directory: directory, options: Self.smallSegments)
            try log.appendBatch(payloads)
            let boundary = try #require((1..<60).first { log.location($0).offset == Self.segmentHeaderSize })
            try log.truncate(toCount: boundary)
            try log.append([42])
            log.close()
            let reopened = try BlockLog(directory: directory, options: Self.smallSegments)
            try expectRecords(reopened, equal: Array(payloads[..<boundary]) + [[42]])
        }
    }

    @Test func writableOpenIsExclusive() throws {
        try withTemporaryDirectory { directory in
            let log = try BlockLog(directory: directory)
            try log.append([1])
            #expect(throws: StorageError.locked(path: directory)) { _ = try BlockLog(directory: directory) }
            #expect(try BlockLog.openReadOnly(directory: directory).count == 1)
            log.close()
            #expect(throws: StorageError.closed) { try log.read(0) }
            #expect(throws: StorageError.closed) { try log.append([2]) }
            #expect(try BlockLog(directory: directory).count == 1)
        }
    }

    @Test func createsMissingDirectoriesAndRejectsBadOptions() throws {
        try withTemporaryDirectory { root in
            let nested = root + "/a/b/log"
            #expect(throws: StorageError.self) { _ = try BlockLog.openReadOnly(directory: nested) }
            let created = try BlockLog(directory: nested)
            #expect(created.count == 0)
            created.close()
            let bad = BlockLog.Options(segmentSizeTargetBytes: 16)
            let error = #expect(throws: StorageError.self) { _ = try BlockLog(directory: nested, options: bad) }
            #expect(error?.code == "invalid_argument")
        }
    }
}
