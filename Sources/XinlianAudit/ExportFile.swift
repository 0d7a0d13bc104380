import XinlianCore
import XinlianCrypto
import XinlianStorage

/// What ``ExportFile/write(dataDirectory:consortium:to:)`` wrote.
public struct ExportSummary: Sendable, Equatable {
    /// Records (blocks) written.
    public var recordCount: UInt64
    /// Height of the last block written (0 when none).
    public var lastHeight: UInt64
    /// Hash of the last header written, or the genesis hash.
    public var head: Hash32
    /// Size of the export file in bytes.
    public var byteCount: UInt64
    /// An incomplete record at the end of the log (an append in progress or interrupted), which is not exported.
    public var skippedTornTail: TornTail?
}

/// A single portable file holding a whole chain, which `AuditVerifier` checks like a data directory.
///
/// Layout (all integers big-endian):
///
/// | part | bytes |
/// |---|---|
/// | header | `XLNEXP01`, `u32` L, L bytes of canonical body (see ``ExportHeader``), `u32` CRC32C of the preceding |
/// | records | per block, in height order from 1: `u32` length, `u32` CRC32C(length field ‖ payload), payload |
/// | trailer | the last 60 bytes: `XLNEND01`, `u64` count, `u64` last height, 32-byte head, `u32` CRC32C |
///
/// Payloads are the block log's `CommittedBlock` bytes, copied verbatim. Every byte of the file is covered by a
/// checksum, so any single damaged byte is detected and located (see ``ExportReader``).
public enum ExportFile {
    /// `XLNEXP01`.
    public static let magic: [UInt8] = Array("XLNEXP01".utf8)
    /// `XLNEND01`.
    public static let trailerMagic: [UInt8] = Array("XLNEND01".utf8)
    /// The header body's format version.
    public static let version: UInt8 = 1
    /// Magic and body length.
    public static let headerPrefixSize = 12
    /// The CRC32C after the header body, and after the trailer fields.
    public static let checksumSize = 4
    /// Largest accepted header body.
    public static let headerBodyLimit = 1024
    /// Frame length and checksum fields.
    public static let frameHeaderSize = 8
    /// Magic, count, height, head, checksum.
    public static let trailerSize = 60
    /// Largest accepted record payload.
    public static let recordLimit = Limits.recordBytes
    /// The export is written here first, then renamed into place.
    public static let partialSuffix = ".partial"

    /// Writes the chain stored in a node's data directory (its `blocks/` log, read only, never modified) to `path`.
    ///
    /// The file is written to `path + ".partial"`, fsynced, renamed over `path`, and the directory fsynced.
    /// Every record's header is decoded to check chain id, height and hash link (not signatures: that is the
    /// auditor's job), so a damaged or foreign log is refused rather than exported. A torn tail is skipped.
    ///
    /// - Throws: ``AuditFault`` naming the damaged source record, or an `io` fault for the output.
    public static func write(dataDirectory: String, consortium: Consortium, to path: String) throws(AuditFault) -> ExportSummary {
        let partial = path + partialSuffix
        var output = try OutputFile.create(partial)
        let summary: ExportSummary
        do throws(AuditFault) {
            summary = try writeContents(of: BlockLogSource(dataDirectory: dataDirectory), consortium: consortium, into: &output)
            try output.sync()
        } catch {
            output.close()
            FileSystem.remove(partial)
            throw error
        }
        output.close()
        do throws(AuditFault) {
            try FileSystem.rename(partial, to: path)
            try FileSystem.syncParent(of: path)
        } catch {
            FileSystem.remove(partial)
            throw error
        }
        return summary
    }

    private static func writeContents(of source: BlockLogSource, consortium: Consortium,
                                      into output: inout OutputFile) throws(AuditFault) -> ExportSummary {
        try output.append(ExportHeader(consortium: consortium).encoded)
        var chain = HeaderChain(consortium: consortium)
        var failure: AuditFault?
        let report = try source.scan { location, payload in
            guard failure == nil else { return }
            do throws(AuditFault) {
                try chain.accept(payload, file: source.file(location.file), offset: location.offset)
                try output.append(ExportFrame.encode(payload))
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        if let error = report.fault { throw source.fault(error, height: UInt64(report.recordCount) + 1) }
        let trailer = ExportTrailer(recordCount: chain.count, lastHeight: chain.count, head: chain.head)
        try output.append(trailer.encoded)
        return ExportSummary(recordCount: chain.count, lastHeight: chain.count, head: chain.head,
                             byteCount: output.size, skippedTornTail: report.tornTail)
    }
}

/// The exporter's cheap checks: each record decodes to a header of this chain, at the next height,
/// linked to the previous header.
private struct HeaderChain {
    let consortium: Consortium
    private(set) var count: UInt64 = 0
    private(set) var head: Hash32

    init(consortium: Consortium) {
        self.consortium = consortium
        head = consortium.genesisHash
    }

    mutating func accept(_ payload: [UInt8], file: String, offset: UInt64) throws(AuditFault) {
        let height = count + 1
        func fault(_ code: String, _ reason: String) -> AuditFault {
            AuditFault(height: height, file: file, offset: offset, reason: reason, code: code)
        }
        guard payload.count <= ExportFile.recordLimit else {
            throw fault(AuditFaultCode.badEncoding, "record of \(payload.count) bytes exceeds \(ExportFile.recordLimit)")
        }
        let header: BlockHeader
        do throws(DecodingError) {
            var decoder = CanonicalDecoder(payload)
            let version = try decoder.u8("record.version")
            guard version == CommittedBlock.version else {
                throw decoder.error("unsupported_version", "record.version", "version \(version)", at: 0)
            }
            header = try BlockHeader(from: &decoder)
        } catch {
            throw fault(AuditFaultCode.badEncoding, "\(error)")
        }
        guard header.chainID == consortium.chainID else {
            throw fault(AuditFaultCode.wrongChain, "header chain id \(header.chainID), not \(consortium.chainID)")
        }
        guard header.height == height else {
            throw fault(AuditFaultCode.badHeight, "expected height \(height), found \(header.height)")
        }
        guard header.previousHash == head else {
            throw fault(AuditFaultCode.badLink, "previous hash \(header.previousHash) does not match \(head)")
        }
        count = height
        head = header.hash(consortium.suite)
    }
}
