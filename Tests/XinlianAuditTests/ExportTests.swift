import Foundation
import Testing
import XinlianAudit
import XinlianCore
import XinlianCrypto
import XinlianStorage

@Suite struct ExportTests {
    /// Offsets sampled when flipping bytes of a larger export.
    static let sampledFlips = 300
    static let seed: UInt64 = 0x5EED_A0D1

    /// Builds a ledger of `blocks` blocks and exports it; returns the data directory, export path and facts.
    static func exported(_ fixture: TestConsortium, scratch: ScratchDirectory, blocks: Int,
                         transactionsPerBlock: @escaping (UInt64) -> Int = { $0 % 4 == 0 ? 0 : Int($0 % 3) + 1 })
        throws -> (data: String, export: String, facts: LedgerFacts) {
        let data = scratch.sub("data")
        let facts = try LedgerBuilder(fixture: fixture).build(dataDirectory: data, blocks: blocks,
                                                              transactionsPerBlock: transactionsPerBlock)
        let export = scratch.sub("chain.xlnexp")
        let summary = try ExportFile.write(dataDirectory: data, consortium: fixture.consortium, to: export)
        #expect(summary.recordCount == facts.height)
        #expect(summary.lastHeight == facts.height)
        #expect(summary.head == facts.head)
        #expect(summary.skippedTornTail == nil)
        return (data, export, facts)
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func exportVerifiesToTheSameReport(suite: CryptoSuiteID) throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: suite)
        let (data, export, facts) = try Self.exported(fixture, scratch: scratch, blocks: 20)
        let fromData = try AuditVerifier.verify(dataDirectory: data, consortium: fixture.consortium)
        let fromExport = try AuditVerifier.verify(exportFile: export, consortium: fixture.consortium)
        #expect(fromExport == fromData)
        #expect(fromExport == AuditReport(blocks: facts.height, transactions: facts.transactions, height: facts.height,
                                          head: facts.head))
        #expect(!FileManager.default.fileExists(atPath: export + ExportFile.partialSuffix))

        let again = scratch.sub("again.xlnexp")
        // Written over an existing world-readable file, the export still ends up owner-only.
        _ = FileManager.default.createFile(atPath: again, contents: Data([1]), attributes: [.posixPermissions: 0o644])
        _ = try ExportFile.write(dataDirectory: data, consortium: fixture.consortium, to: again)
        // An export holds every statement: readable by its owner only.
        #expect(try FileManager.default.attributesOfItem(atPath: again)[.posixPermissions] as? Int == 0o600)
        #expect(try Data(contentsOf: URL(fileURLWithPath: again)) == Data(contentsOf: URL(fileURLWithPath: export)))
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func readerYieldsTheLogPayloadsVerbatimWithOffsets(suite: CryptoSuiteID) throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: suite)
        let (data, export, facts) = try Self.exported(fixture, scratch: scratch, blocks: 6)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: export))
        let reader = try ExportReader(path: export)
        #expect(reader.header == ExportHeader(consortium: fixture.consortium))
        #expect(reader.trailer == ExportTrailer(recordCount: facts.height, lastHeight: facts.height, head: facts.head))
        #expect(Array(bytes.prefix(8)) == ExportFile.magic)
        #expect(Array(bytes.suffix(ExportFile.trailerSize)) == reader.trailer.encoded)
        #expect(Array(bytes.prefix(Int(reader.recordsOffset))) == reader.header.encoded)
        var records: [ExportRecord] = []
        while let record = try reader.next() { records.append(record) }
        #expect(records.map(\.payload) == (try LogTools.payloads(dataDirectory: data)))
        #expect(records.map(\.height) == Array(1...facts.height))
        for record in records {
            let start = Int(record.payloadOffset)
            #expect(Array(bytes[start..<(start + record.payload.count)]) == record.payload)
        }
        #expect(records.first?.offset == reader.recordsOffset)
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func everyFlippedByteOfASmallExportIsLocated(suite: CryptoSuiteID) throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: suite)
        let (_, export, _) = try Self.exported(fixture, scratch: scratch, blocks: 3, transactionsPerBlock: { _ in 1 })
        let size = try Data(contentsOf: URL(fileURLWithPath: export)).count
        try checkFlips(export, offsets: Array(0..<size), consortium: fixture.consortium, scratch: scratch)
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func sampledFlippedBytesOfALargerExportAreLocated(suite: CryptoSuiteID) throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: suite)
        let (_, export, _) = try Self.exported(fixture, scratch: scratch, blocks: 20)
        let size = try Data(contentsOf: URL(fileURLWithPath: export)).count
        var random = SplitMix64(seed: Self.seed)
        let offsets = (0..<Self.sampledFlips).map { _ in Int.random(in: 0..<size, using: &random) }
        try checkFlips(export, offsets: offsets, consortium: fixture.consortium, scratch: scratch)
    }

    /// Flips each byte in `offsets` (one at a time) and checks the fault: thrown, at or before the byte, and in
    /// the right record when the byte is in one.
    private func checkFlips(_ export: String, offsets: [Int], consortium: Consortium, scratch: ScratchDirectory) throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: export))
        let reader = try ExportReader(path: export)
        var records: [(range: Range<Int>, height: UInt64)] = []
        while let record = try reader.next() {
            let start = Int(record.offset)
            records.append((start..<(start + ExportFile.frameHeaderSize + record.payload.count), record.height))
        }
        let damaged = scratch.sub("damaged.xlnexp")
        for offset in offsets {
            var bytes = original
            bytes[offset] ^= 0xFF
            try bytes.write(to: URL(fileURLWithPath: damaged))
            let fault = auditFault { () throws(AuditFault) in
                try AuditVerifier.verify(exportFile: damaged, consortium: consortium, options: AuditOptions(workers: 1))
            }
            guard let fault else {
                Issue.record("flipping byte \(offset) went undetected")
                continue
            }
            #expect(fault.file == damaged)
            #expect(fault.offset <= UInt64(offset), "byte \(offset): \(fault)")
            let expectedHeight = records.first { $0.range.contains(offset) }?.height
            #expect(fault.height == expectedHeight, "byte \(offset): \(fault)")
        }
    }

    @Test func exportOfAnotherGenesisIsRefusedAtTheHeader() throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let (_, export, _) = try Self.exported(fixture, scratch: scratch, blocks: 2)
        let cases: [(Consortium, String)] = [
            (try TestConsortium(suite: .ed25519SHA256, chainID: "other-chain").consortium, AuditFaultCode.wrongChain),
            (try TestConsortium(suite: .ed25519SHA256, seed: 42).consortium, AuditFaultCode.wrongGenesis),
        ]
        for (consortium, code) in cases {
            let fault = try #require(auditFault { () throws(AuditFault) in
                try AuditVerifier.verify(exportFile: export, consortium: consortium)
            })
            #expect(fault.code == code)
            #expect(fault.height == nil)
            #expect(fault.offset == 0)
        }
    }

    @Test func trailerThatDisagreesWithTheRecordsIsAFault() throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let (_, export, _) = try Self.exported(fixture, scratch: scratch, blocks: 4)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: export))
        let reader = try ExportReader(path: export)
        var lastOffset: UInt64 = 0
        while let record = try reader.next() { lastOffset = record.offset }
        let shortened = bytes.prefix(Int(lastOffset)) + bytes.suffix(ExportFile.trailerSize)
        let path = scratch.sub("short.xlnexp")
        try shortened.write(to: URL(fileURLWithPath: path))
        let fault = try #require(auditFault { () throws(AuditFault) in
            try AuditVerifier.verify(exportFile: path, consortium: fixture.consortium)
        })
        #expect(fault.code == AuditFaultCode.trailerMismatch)
        #expect(fault.offset == UInt64(shortened.count - ExportFile.trailerSize))
    }

    @Test func emptyLedgerExportsAndVerifies() throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: .sm2SM3)
        let data = scratch.sub("data")
        try FileManager.default.createDirectory(atPath: LedgerStore.blocksDirectory(data), withIntermediateDirectories: true)
        let export = scratch.sub("empty.xlnexp")
        let summary = try ExportFile.write(dataDirectory: data, consortium: fixture.consortium, to: export)
        #expect(summary.recordCount == 0)
        #expect(summary.head == fixture.consortium.genesisHash)
        let report = try AuditVerifier.verify(exportFile: export, consortium: fixture.consortium)
        #expect(report == AuditReport(blocks: 0, transactions: 0, height: 0, head: fixture.consortium.genesisHash))
    }

    @Test func tornTailIsSkippedByTheExporterAndSourceIsUntouched() throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let data = scratch.sub("data")
        let facts = try LedgerBuilder(fixture: fixture).build(dataDirectory: data, blocks: 4)
        let segment = LedgerStore.blocksDirectory(data) + "/segment-00000000000000000000.log"
        let handle = try #require(FileHandle(forUpdatingAtPath: segment))
        _ = try handle.seekToEnd()
        try handle.write(contentsOf: Data([0, 0, 0, 9, 1, 2]))
        try handle.close()
        let before = try LogTools.snapshot(data)
        let export = scratch.sub("chain.xlnexp")
        let summary = try ExportFile.write(dataDirectory: data, consortium: fixture.consortium, to: export)
        #expect(summary.skippedTornTail != nil)
        #expect(summary.recordCount == facts.height)
        #expect(try LogTools.snapshot(data) == before)
        #expect(try AuditVerifier.verify(exportFile: export, consortium: fixture.consortium).head == facts.head)
    }

    @Test func exporterRefusesADamagedLogAndLeavesNoFile() throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let data = scratch.sub("data")
        try LedgerBuilder(fixture: fixture).build(dataDirectory: data, blocks: 4)
        let export = scratch.sub("chain.xlnexp")
        let other = try TestConsortium(suite: .ed25519SHA256, chainID: "other-chain").consortium
        let fault = try #require(auditFault { () throws(AuditFault) in
            try ExportFile.write(dataDirectory: data, consortium: other, to: export)
        })
        #expect(fault.code == AuditFaultCode.wrongChain)
        #expect(fault.height == 1)
        #expect(!FileManager.default.fileExists(atPath: export))
        #expect(!FileManager.default.fileExists(atPath: export + ExportFile.partialSuffix))
    }
}
