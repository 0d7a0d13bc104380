import Foundation
import XinlianCrypto

/// Stable machine-readable codes of ``AuditFault``. Besides these, a fault may carry any code of
/// `VerificationError` from `BlockVerifier` (`wrong_chain`, `bad_height`, `bad_link`, `bad_validator_set`,
/// `unknown_proposer`, `bad_transactions_root`, `bad_certificate`, `no_quorum`, `unknown_reporter`,
/// `bad_signature`).
public enum AuditFaultCode {
    /// A header names another chain (same code as `BlockVerifier`'s).
    public static let wrongChain = "wrong_chain"
    /// A header is not at the expected height (same code as `BlockVerifier`'s).
    public static let badHeight = "bad_height"
    /// A header does not link to the previous one (same code as `BlockVerifier`'s).
    public static let badLink = "bad_link"
    /// A file could not be opened, read, written, synced or renamed.
    public static let io = "io"
    /// A block-log frame (or segment header) is damaged: bad checksum, impossible length, wrong segment index.
    public static let corruptRecord = "corrupt_record"
    /// The last segment of a block log ends in an incomplete or damaged record (reported, never repaired).
    public static let tornTail = "torn_tail"
    /// A record's payload is not a canonical `CommittedBlock`.
    public static let badEncoding = "bad_encoding"
    /// A transaction id occurs twice in the chain (a replay).
    public static let duplicateTransaction = "duplicate_transaction"
    /// Replaying the enterprise hash chains gives a different state root than the header's.
    public static let badStateRoot = "bad_state_root"
    /// The state tree could not be updated (an internal inconsistency of the replay).
    public static let stateReplay = "state_replay"
    /// An export file's header is missing, damaged or unsupported.
    public static let badExportHeader = "bad_export_header"
    /// An export file's trailer is missing or damaged.
    public static let badExportTrailer = "bad_export_trailer"
    /// An export file's frame is damaged (length or checksum).
    public static let badExportFrame = "bad_export_frame"
    /// An export file's header names another genesis or crypto suite than the consortium's.
    public static let wrongGenesis = "wrong_genesis"
    /// An export file's trailer disagrees with the records verified (count, height or head).
    public static let trailerMismatch = "trailer_mismatch"
    /// A personal-data companion does not match its export (malformed, another chain, data that does not match its
    /// commitment, or data the chain's rule had erased).
    public static let badPersonalData = "bad_personal_data"
}

/// The first fault an audit found: where it is (file and absolute byte offset), which block it
/// affects (when it is inside or about a record) and why.
///
/// For block-log data directories `file` is relative to the data directory
/// (`blocks/segment-00000000000000000000.log`); for export files it is the path given.
/// `offset` is the first byte of the damaged structure: the frame of a record, a header, a trailer.
public struct AuditFault: Error, Sendable, Equatable, CustomStringConvertible {
    /// The height of the block the fault is in or about, when there is one.
    public let height: UInt64?
    /// The file the fault is in.
    public let file: String
    /// Absolute byte offset in `file`.
    public let offset: UInt64
    /// Human-readable explanation.
    public let reason: String
    /// Stable code (see ``AuditFaultCode``).
    public let code: String

    /// Creates a fault.
    public init(height: UInt64?, file: String, offset: UInt64, reason: String, code: String) {
        self.height = height
        self.file = file
        self.offset = offset
        self.reason = reason
        self.code = code
    }

    /// `height 17: blocks/segment-00000000000000000000.log at byte 123456: bad_signature: transaction 3: …`
    public var description: String {
        let place = "\(file) at byte \(offset): \(code): \(reason)"
        guard let height else { return place }
        return "height \(height): \(place)"
    }
}

/// What a successful audit verified.
public struct AuditReport: Sendable, Equatable, CustomStringConvertible {
    /// Blocks verified.
    public let blocks: UInt64
    /// Transactions verified across all blocks.
    public let transactions: UInt64
    /// Height of the last block (0 for an empty chain).
    public let height: UInt64
    /// Hash of the last block header, or the genesis hash for an empty chain.
    public let head: Hash32

    /// Creates a report.
    public init(blocks: UInt64, transactions: UInt64, height: UInt64, head: Hash32) {
        self.blocks = blocks
        self.transactions = transactions
        self.height = height
        self.head = head
    }

    /// `20 blocks, 31 transactions, height 20, head 5f…`.
    public var description: String {
        "\(blocks) blocks, \(transactions) transactions, height \(height), head \(head)"
    }
}

/// How an audit runs.
public struct AuditOptions: Sendable, Equatable {
    /// Default bound on the blocks held in memory at once.
    public static let defaultWindowBlocks = 64
    /// Default bound on the record bytes held in memory at once (a single larger record is still accepted).
    public static let defaultWindowBytes = 32 << 20
    /// Default worker count: the active processor count.
    public static var defaultWorkers: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// Replay every enterprise hash chain and compare each header's state root (memory grows with the number
    /// of enterprises). On by default.
    public var checkStateRoots: Bool
    /// Threads used to decode blocks and verify signatures; 1 verifies on the calling thread only.
    /// Values below 1 are treated as 1.
    public var workers: Int
    /// At most this many blocks are read ahead and verified concurrently. Values below 1 are treated as 1.
    public var windowBlocks: Int
    /// A window is also closed once its records reach this many bytes. Values below 1 are treated as 1.
    public var windowBytes: Int

    /// Creates options; the defaults use every core.
    public init(checkStateRoots: Bool = true, workers: Int = AuditOptions.defaultWorkers,
                windowBlocks: Int = AuditOptions.defaultWindowBlocks,
                windowBytes: Int = AuditOptions.defaultWindowBytes) {
        self.checkStateRoots = checkStateRoots
        self.workers = workers
        self.windowBlocks = windowBlocks
        self.windowBytes = windowBytes
    }
}
