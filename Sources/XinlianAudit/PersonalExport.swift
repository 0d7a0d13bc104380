import Foundation
import XinlianCore
import XinlianCrypto
import XinlianStorage

/// The personal data beside an export (`docs/audit.md`, "Personal data"): a JSON file `<export>.personal.json`
/// holding, for the exported blocks, the personal data the node still held (erased data is not there), each
/// checkable against the commitment its signed statement carries. An export without it is integrity-only: it
/// verifies in full and holds no personal data at all.
public struct PersonalExport: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var height: UInt64
        /// Hex id of the transaction.
        public var transaction: String
        /// Base64 of the canonical ``PersonalData``.
        public var data: String
    }

    public var chainId: String
    public var genesisHash: String
    /// The last exported height.
    public var throughHeight: UInt64
    public var entries: [Entry]

    /// Where the companion of `exportPath` is.
    public static func path(for exportPath: String) -> String { exportPath + ".personal.json" }

    /// Writes the personal data of `dataDirectory` for heights up to `throughHeight` to `path` (mode 0600, written
    /// whole then renamed), decrypted with the node's `key`. Returns how many statements' data it holds.
    @discardableResult
    public static func write(dataDirectory: String, consortium: Consortium, key: PersonalDataKey, throughHeight: UInt64,
                             to path: String) throws -> Int {
        // The node's store is read, never re-encrypted: a wrong key is refused rather than adopted.
        let storePath = PersonalStore.path(dataDirectory)
        let rows = FileManager.default.fileExists(atPath: storePath)
            ? try PersonalStore(path: storePath, key: key, adoptingKey: false).all(throughHeight: throughHeight) : []
        let document = PersonalExport(chainId: consortium.chainID.value, genesisHash: consortium.genesisHash.hex,
                                      throughHeight: throughHeight,
                                      entries: rows.map { Entry(height: $0.height, transaction: $0.id.hex,
                                                                data: Data($0.data.canonicalBytes).base64EncodedString()) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let partial = path + ".partial"
        _ = FileManager.default.createFile(atPath: partial, contents: nil,
                                       attributes: [.posixPermissions: Int(FileProtection.fileMode)])
        try FileManager.default.setAttributes([.posixPermissions: Int(FileProtection.fileMode)], ofItemAtPath: partial)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: partial))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: try encoder.encode(document))
        try handle.synchronize()
        try handle.close()
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        try FileManager.default.moveItem(atPath: partial, toPath: path)
        return rows.count
    }

    /// Checks a personal-data companion against its export, which must already verify: the same chain and height;
    /// each entry's transaction at its height, committing to exactly that data; and nothing that the chain's
    /// erasure rule (retention, erasure orders) had erased by the export's last block. Returns the entries checked.
    public static func verify(_ path: String, exportFile: String, consortium: Consortium) throws(AuditFault) -> Int {
        func fault(_ height: UInt64?, _ reason: String) -> AuditFault {
            AuditFault(height: height, file: path, offset: 0, reason: reason, code: AuditFaultCode.badPersonalData)
        }
        let document: PersonalExport
        do {
            document = try JSONDecoder().decode(PersonalExport.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw fault(nil, "not a personal-data export: \(error)")
        }
        guard document.chainId == consortium.chainID.value, document.genesisHash == consortium.genesisHash.hex else {
            throw fault(nil, "for chain \(document.chainId) with genesis \(document.genesisHash), not this consortium's")
        }
        var wanted: [UInt64: [(id: Hash32, data: PersonalData)]] = [:]
        for entry in document.entries {
            guard let id = Hash32(hex: entry.transaction), let bytes = Data(base64Encoded: entry.data),
                  let data = try? PersonalData(canonicalBytes: Array(bytes), limit: PersonalData.encodedLimit) else {
                throw fault(entry.height, "entry for \(entry.transaction) is malformed")
            }
            wanted[entry.height, default: []].append((id, data))
        }
        let suite = consortium.suite
        let reader = try ExportReader(path: exportFile)
        var committed: [Hash32: (height: UInt64, timeMs: UInt64, subject: USCC?, commitment: Hash32?)] = [:]
        var orders: [USCC: [UInt64]] = [:]
        var last: BlockHeader?
        while let record = try reader.next() {
            let index: BlockRecordIndex
            do { index = try BlockRecordIndex(record: record.payload) } catch {
                throw AuditFault(height: record.height, file: exportFile, offset: record.offset, reason: "\(error)",
                                 code: AuditFaultCode.badEncoding)
            }
            last = index.header
            let needed = Set((wanted[record.height] ?? []).map(\.id))
            for position in index.ranges.indices {
                guard let transaction = try? index.transaction(at: position) else { continue }
                if transaction.body.kind == .erasureOrder, let subject = transaction.body.subject {
                    orders[subject, default: []].append(record.height)
                }
                let id = transaction.id(suite)
                if needed.contains(id) {
                    committed[id] = (record.height, index.header.timeMs, transaction.body.subject, transaction.personalCommitment)
                }
            }
        }
        guard let last, last.height == document.throughHeight else {
            throw fault(nil, "written through height \(document.throughHeight), but the export ends at \(last?.height ?? 0)")
        }
        var checked = 0
        for (height, entries) in wanted {
            for entry in entries {
                guard let found = committed[entry.id], found.height == height else {
                    throw fault(height, "transaction \(entry.id.hex) is not in the export at height \(height)")
                }
                guard found.commitment == entry.data.commitment(suite) else {
                    throw fault(height, "the personal data of \(entry.id.hex) does not match the commitment it signed")
                }
                if let due = consortium.genesis.parameters.personalDataErasureMs(committedMs: found.timeMs), due <= last.timeMs {
                    throw fault(height, "the personal data of \(entry.id.hex) was due for erasure by the export's last block")
                }
                if let subject = found.subject, orders[subject]?.contains(where: { $0 > height }) == true {
                    throw fault(height, "the personal data of \(entry.id.hex) was erased by an erasure order in the export")
                }
                checked += 1
            }
        }
        return checked
    }
}
