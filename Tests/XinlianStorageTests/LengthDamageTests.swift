import Foundation
import Testing
import XinlianStorage

/// A damaged length field in the last segment misaligns the frame chain. As long as an intact frame
/// follows anywhere, it is corruption (acknowledged blocks follow), never a torn tail to cut off.
@Suite("Block log: damaged length fields")
struct LengthDamageTests {
    @Test func everyBitOfEveryLengthFieldBeforeTheLastFrameIsCorruption() throws {
        try withTemporaryDirectory { directory in
            let source = directory + "/source"
            var rng = SplitMix64(seed: 42)
            let payloads = (0..<6).map { _ in (0..<Int.random(in: 20..<300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) } }
            let log = try BlockLog(directory: source)
            var offsets: [UInt64] = []
            for payload in payloads { offsets.append(try log.append(payload).offset) }
            log.close()
            let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: source).first { $0.hasSuffix(".log") })
            for offset in offsets.dropLast() {
                for bit in 0..<32 {
                    let copy = directory + "/copy"
                    try? FileManager.default.removeItem(atPath: copy)
                    try copyDirectory(source, to: copy)
                    try flipByte(copy + "/" + segment, at: offset + UInt64(bit / 8), mask: UInt8(1 << (bit % 8)))
                    let before = try snapshot(copy)
                    #expect(throws: StorageError.self, "bit \(bit) of the length at \(offset)") {
                        _ = try BlockLog(directory: copy)
                    }
                    #expect(try snapshot(copy) == before)
                }
            }
        }
    }
}
