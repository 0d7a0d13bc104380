import XinlianCore
import XinlianStorage

/// A node data directory's block log, read only through `BlockLog.scan` (which never writes).
/// Names files relative to the data directory, e.g. `blocks/segment-00000000000000000000.log`.
struct BlockLogSource {
    let dataDirectory: String
    let blocksDirectory: String
    /// What is put in front of a segment file name to make it relative to the data directory.
    private let prefix: String

    init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
        blocksDirectory = LedgerStore.blocksDirectory(dataDirectory)
        let base = dataDirectory.hasSuffix("/") ? dataDirectory : dataDirectory + "/"
        let relative = blocksDirectory.hasPrefix(base) ? String(blocksDirectory.dropFirst(base.count)) : blocksDirectory
        prefix = relative.hasSuffix("/") ? relative : relative + "/"
    }

    func file(_ segment: String) -> String { prefix + segment }

    /// Visits every valid record in order; returns the scan report (fault or torn tail included).
    /// I/O failures (a missing directory, an unreadable segment) become faults.
    func scan(_ visit: (RecordLocation, [UInt8]) -> Void) throws(AuditFault) -> BlockLog.ScanReport {
        do throws(StorageError) {
            return try BlockLog.scan(directory: blocksDirectory, options: BlockLog.Options(recordSizeLimitBytes: Limits.recordBytes), visit: visit)
        } catch {
            throw fault(error, height: nil)
        }
    }

    /// The fault for damage the scan stopped at (or a torn tail), given how many records it visited.
    func fault(after report: BlockLog.ScanReport) -> AuditFault? {
        let height = UInt64(report.recordCount) + 1
        if let error = report.fault { return fault(error, height: height) }
        guard let torn = report.tornTail else { return nil }
        return AuditFault(height: height, file: file(torn.file), offset: torn.offset,
                          reason: "\(torn.reason); \(torn.bytesRemoved) bytes after the last complete record (left as is)",
                          code: AuditFaultCode.tornTail)
    }

    func fault(_ error: StorageError, height: UInt64?) -> AuditFault {
        switch error {
        case let .corrupt(name, offset, reason):
            AuditFault(height: height, file: file(name), offset: offset, reason: reason, code: AuditFaultCode.corruptRecord)
        case let .io(path, reason):
            AuditFault(height: height, file: path, offset: 0, reason: reason, code: AuditFaultCode.io)
        default:
            AuditFault(height: height, file: blocksDirectory, offset: 0, reason: error.description, code: AuditFaultCode.io)
        }
    }
}
