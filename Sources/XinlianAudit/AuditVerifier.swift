import XinlianCore
import XinlianCrypto
import XinlianStorage

/// Offline verification of a whole chain from its genesis alone: every record's checksum and encoding, every
/// header's height, chain id, hash link and validator set, every transactions root, every commit certificate's
/// quorum, every transaction's chain id and signature, no transaction id twice, and (optionally) every state root.
///
/// Nothing is ever written. The first fault in chain order is thrown, naming file, byte offset and height.
/// Signature work of a window of blocks is spread over ``AuditOptions/workers`` threads; memory holds one window
/// of records plus the replay state (see `TransactionIDSet` and `StateReplay`).
public enum AuditVerifier {
    /// Verifies a node's data directory: its block log in `blocks/`, read with `BlockLog.scan` (read-only).
    /// A torn tail is a fault (`torn_tail`), not repaired; an empty log verifies as height 0.
    /// `BlockLog.scan` cannot be stopped early, so after a fault the rest of the log is still read (not verified).
    public static func verify(dataDirectory: String, consortium: Consortium,
                              options: AuditOptions = AuditOptions()) throws(AuditFault) -> AuditReport {
        let source = BlockLogSource(dataDirectory: dataDirectory)
        var checker = ChainChecker(consortium: consortium, options: options)
        var window = RecordWindow(options: options)
        var failure: AuditFault?
        let scan = try source.scan { location, payload in
            guard failure == nil else { return }
            window.append(PendingRecord(height: UInt64(location.index) + 1, file: source.file(location.file),
                                        offset: location.offset, payload: payload))
            guard window.isFull else { return }
            do throws(AuditFault) { try checker.process(window.drain()) } catch { failure = error }
        }
        if let failure { throw failure }
        try checker.process(window.drain())
        if let fault = source.fault(after: scan) { throw fault }
        return checker.report
    }

    /// Verifies an export file written by ``ExportFile/write(dataDirectory:consortium:to:)``: its header must
    /// name the consortium's chain, genesis and suite, and its trailer must match the records verified.
    public static func verify(exportFile path: String, consortium: Consortium,
                              options: AuditOptions = AuditOptions()) throws(AuditFault) -> AuditReport {
        let reader = try ExportReader(path: path)
        try checkHeader(reader, consortium: consortium)
        var checker = ChainChecker(consortium: consortium, options: options)
        var window = RecordWindow(options: options)
        while true {
            let record: ExportRecord?
            do throws(AuditFault) {
                record = try reader.next()
            } catch {
                // Records before the damaged frame come first in chain order.
                try checker.process(window.drain())
                throw error
            }
            guard let record else { break }
            window.append(PendingRecord(height: record.height, file: path, offset: record.offset, payload: record.payload))
            if window.isFull { try checker.process(window.drain()) }
        }
        try checker.process(window.drain())
        try checkTrailer(reader, against: checker.report)
        return checker.report
    }

    private static func checkHeader(_ reader: ExportReader, consortium: Consortium) throws(AuditFault) {
        let header = reader.header
        func fault(_ code: String, _ reason: String) -> AuditFault {
            AuditFault(height: nil, file: reader.path, offset: 0, reason: reason, code: code)
        }
        guard header.chainID == consortium.chainID else {
            throw fault(AuditFaultCode.wrongChain, "export is of chain \(header.chainID), genesis names \(consortium.chainID)")
        }
        guard header.genesisHash == consortium.genesisHash else {
            throw fault(AuditFaultCode.wrongGenesis,
                        "export's genesis hash \(header.genesisHash) is not this genesis's \(consortium.genesisHash)")
        }
        guard header.suite == consortium.suite.id else {
            throw fault(AuditFaultCode.wrongGenesis, "export uses suite \(header.suite.rawValue), genesis \(consortium.suite.id.rawValue)")
        }
    }

    private static func checkTrailer(_ reader: ExportReader, against report: AuditReport) throws(AuditFault) {
        let trailer = reader.trailer
        let verified = ExportTrailer(recordCount: report.blocks, lastHeight: report.height, head: report.head)
        guard trailer == verified else {
            throw AuditFault(height: nil, file: reader.path, offset: reader.trailerOffset,
                             reason: "trailer claims \(trailer.recordCount) records, height \(trailer.lastHeight), head "
                                 + "\(trailer.head); verified \(report.blocks) records, height \(report.height), head \(report.head)",
                             code: AuditFaultCode.trailerMismatch)
        }
    }
}
