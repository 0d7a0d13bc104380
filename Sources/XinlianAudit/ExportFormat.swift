import XinlianCore
import XinlianCrypto
import XinlianStorage

/// The header of an export file: which chain and genesis it belongs to.
///
/// On disk: magic `XLNEXP01`, `u32` BE body length `L`, the canonical body (`u8` version = 1, chain id as a
/// name, 32-byte genesis hash, `u8` crypto suite code), then `u32` BE CRC32C over magic, length and body.
public struct ExportHeader: Sendable, Equatable {
    /// Format version of the header body (``ExportFile/version``).
    public var version: UInt8
    /// The chain the records belong to.
    public var chainID: ChainID
    /// The genesis hash: block 1's `previousHash`.
    public var genesisHash: Hash32
    /// The consortium's crypto suite (block records do not name it).
    public var suite: CryptoSuiteID

    /// Creates a header.
    public init(version: UInt8 = ExportFile.version, chainID: ChainID, genesisHash: Hash32, suite: CryptoSuiteID) {
        self.version = version
        self.chainID = chainID
        self.genesisHash = genesisHash
        self.suite = suite
    }

    /// The header for `consortium`.
    public init(consortium: Consortium) {
        self.init(chainID: consortium.chainID, genesisHash: consortium.genesisHash, suite: consortium.suite.id)
    }

    /// The canonical body.
    var body: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.u8(version)
        encoder.name(chainID)
        encoder.hash(genesisHash)
        encoder.u8(suite.code)
        return encoder.bytes
    }

    /// The complete on-disk header: magic, length, body, checksum.
    public var encoded: [UInt8] {
        let body = body
        var bytes = ExportFile.magic
        BigEndian.append(UInt32(body.count), to: &bytes)
        bytes += body
        BigEndian.append(CRC32C.checksum(bytes), to: &bytes)
        return bytes
    }

    /// Decodes a checksummed body; `offset` maps decoder positions to file offsets in faults.
    static func decode(body: [UInt8], file: String, offset: UInt64) throws(AuditFault) -> ExportHeader {
        var decoder = CanonicalDecoder(body)
        do throws(DecodingError) {
            let versionAt = decoder.offset
            let version = try decoder.u8("export.version")
            guard version == ExportFile.version else {
                throw decoder.error("unsupported_version", "export.version", "version \(version)", at: versionAt)
            }
            let chainID = try decoder.name("export.chainId")
            let genesisHash = try decoder.hash("export.genesisHash")
            let suiteAt = decoder.offset
            let code = try decoder.u8("export.suite")
            guard let suite = CryptoSuiteID(code: code) else {
                throw decoder.error("invalid_tag", "export.suite",
                                    "unknown crypto suite code \(code); expected one of: \(CryptoSuiteID.acceptedCodes)", at: suiteAt)
            }
            try decoder.finish("export.header")
            return ExportHeader(version: version, chainID: chainID, genesisHash: genesisHash, suite: suite)
        } catch {
            throw AuditFault(height: nil, file: file, offset: offset + UInt64(error.offset),
                             reason: "header: \(error)", code: AuditFaultCode.badExportHeader)
        }
    }
}

/// The last ``ExportFile/trailerSize`` bytes of an export file.
///
/// On disk: magic `XLNEND01`, `u64` BE record count, `u64` BE last height, 32-byte head hash (hash of the last
/// header, or the genesis hash when there are no records), `u32` BE CRC32C over the 56 bytes before it.
public struct ExportTrailer: Sendable, Equatable {
    /// Records in the file.
    public var recordCount: UInt64
    /// Height of the last record (equal to the count: exports start at height 1).
    public var lastHeight: UInt64
    /// Hash of the last record's header, or the genesis hash when there are none.
    public var head: Hash32

    /// Creates a trailer.
    public init(recordCount: UInt64, lastHeight: UInt64, head: Hash32) {
        self.recordCount = recordCount
        self.lastHeight = lastHeight
        self.head = head
    }

    /// The 60 on-disk bytes.
    public var encoded: [UInt8] {
        var bytes = ExportFile.trailerMagic
        BigEndian.append(recordCount, to: &bytes)
        BigEndian.append(lastHeight, to: &bytes)
        bytes += head.bytes
        BigEndian.append(CRC32C.checksum(bytes), to: &bytes)
        return bytes
    }
}

/// One record of an export file, with its absolute position.
public struct ExportRecord: Sendable, Equatable {
    /// 0-based record index.
    public var index: UInt64
    /// The height the record must hold (`index + 1`: exports start at height 1).
    public var height: UInt64
    /// Absolute byte offset of the frame (its length field) in the file.
    public var offset: UInt64
    /// The canonical `CommittedBlock` bytes, exactly as the block log stored them.
    public var payload: [UInt8]

    /// Absolute byte offset of the payload.
    public var payloadOffset: UInt64 { offset + UInt64(ExportFile.frameHeaderSize) }
}

/// Frame encoding of export records: `u32` BE length, `u32` BE CRC32C(length bytes ‖ payload), payload.
/// Independent of the block log's own frame layout.
enum ExportFrame {
    static func checksum(lengthField: some Collection<UInt8>, payload: [UInt8]) -> UInt32 {
        CRC32C.update(CRC32C.checksum(lengthField), with: payload)
    }

    static func encode(_ payload: [UInt8]) -> [UInt8] {
        let lengthField = BigEndian.bytes(UInt32(truncatingIfNeeded: payload.count))
        var bytes = lengthField
        bytes.reserveCapacity(ExportFile.frameHeaderSize + payload.count)
        BigEndian.append(checksum(lengthField: lengthField, payload: payload), to: &bytes)
        bytes += payload
        return bytes
    }
}
