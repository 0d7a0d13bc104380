import XinlianCore
import XinlianCrypto

/// A committed transaction with its id and where and when it was committed.
public struct LedgerEntry: Sendable, Hashable {
    public var id: Hash32
    public var transaction: Transaction
    public var height: UInt64
    /// Position inside its block.
    public var index: UInt32
    /// The block's time (ms since the Unix epoch).
    public var blockTimeMs: UInt64

    public init(id: Hash32, transaction: Transaction, height: UInt64, index: UInt32, blockTimeMs: UInt64) {
        self.id = id
        self.transaction = transaction
        self.height = height
        self.index = index
        self.blockTimeMs = blockTimeMs
    }

    var body: TransactionBody { transaction.body }
    func precedes(_ other: LedgerEntry) -> Bool { (height, index) < (other.height, other.index) }
}

/// The ledger point a report is as of.
public struct ReportAsOf: Codable, Sendable, Hashable {
    public var height: UInt64
    public var blockHash: Hash32
    /// Block time at `height`, ms since the Unix epoch; retention and dispute deadlines are measured against it.
    public var time: UInt64

    public init(height: UInt64, blockHash: Hash32, time: UInt64) {
        self.height = height
        self.blockHash = blockHash
        self.time = time
    }
}

/// The consortium parameters report assembly needs.
public struct ReportParameters: Sendable, Hashable {
    public var retentionYears: Int
    public var disputeDeadlineDays: Int
    /// Days personal data is kept after the block that committed it (0: until an erasure order).
    public var personalDataRetentionDays: Int
    /// The suite personal data commitments are checked with.
    public var suite: CryptoSuiteID

    public init(retentionYears: Int = 5, disputeDeadlineDays: Int = 20,
                personalDataRetentionDays: Int = Int(ConsensusParameters.defaultPersonalDataRetentionDays),
                suite: CryptoSuiteID = .ed25519SHA256) {
        self.retentionYears = retentionYears
        self.disputeDeadlineDays = disputeDeadlineDays
        self.personalDataRetentionDays = personalDataRetentionDays
        self.suite = suite
    }

    public init(_ genesis: Genesis) {
        self.init(retentionYears: Int(genesis.parameters.negativeInformationRetentionYears),
                  disputeDeadlineDays: Int(genesis.parameters.disputeDeadlineDays),
                  personalDataRetentionDays: Int(genesis.parameters.personalDataRetentionDays), suite: genesis.cryptoSuite)
    }
}

/// Where a statement's personal data stands (``PersonalData``): shown with every statement whose payload commits
/// to some.
public struct PersonalDataStatus: Codable, Sendable, Hashable {
    public enum State: String, Codable, Sendable, Hashable {
        /// Joined into the statement as shown.
        case present
        /// Erased after its retention period or by an erasure order; the statement is shown without it.
        case erased
        /// Not erased, but this node does not hold it (it missed the data when the block was decided).
        case unavailable
    }

    public var state: State
    /// The day it was erased: the retention period's end, or the erasure order's block day.
    public var erasedOn: Day?
    /// The erasure order, when one erased it.
    public var order: Hash32?

    public init(state: State, erasedOn: Day? = nil, order: Hash32? = nil) {
        self.state = state
        self.erasedOn = erasedOn
        self.order = order
    }
}

/// An enterprise credit report: a pure function of the ledger at `asOf`.
public struct CreditReport: Codable, Sendable, Hashable {
    public var subject: USCC
    public var asOf: ReportAsOf
    public var basicInfo: BasicInfoSection
    public var operatingStatus: OperatingStatusSection
    public var facilities: [FacilityView]
    public var collateral: [CollateralView]
    public var guarantees: GuaranteeSection
    /// Overdue and default records (negative runs of facilities), within the retention window.
    public var overdue: [OverdueRecord]
    public var publicRecords: [PublicRecordView]
    public var disputes: [DisputeView]
    public var queryRecords: [QueryView]
    /// Ids of every transaction the report shows, in ledger order.
    public var sources: [Hash32]
}

/// How a statement stands in the current view.
public enum StatementStatus: String, Codable, Sendable, Hashable {
    /// In force as stated.
    case asStated
    /// Superseded by a correction that restates it (`effective` holds the restated payload).
    case corrected
    /// Withdrawn by its reporter.
    case retracted
    /// Removed by an upheld dispute.
    case removedByDispute
}

/// A dispute's state at the report's `asOf`.
public enum DisputeStatus: String, Codable, Sendable, Hashable {
    case open, overdue, upheld, rejected

    /// Open or past its deadline: the disputed statement carries a flag.
    public var isUnresolved: Bool { self == .open || self == .overdue }
}

/// One correction of a statement.
public struct CorrectionView: Codable, Sendable, Hashable {
    public var tx: Hash32
    public var height: UInt64
    public var time: UInt64
    public var reason: String
    public var payload: JSONValue?
    public var retract: Bool?
}

/// A dispute marker on a statement.
public struct DisputeFlag: Codable, Sendable, Hashable {
    public var tx: Hash32
    public var status: DisputeStatus
}

/// One statement in an item's history: what was said, when, by whom, and how it stands now.
public struct StatementView: Codable, Sendable, Hashable {
    public var tx: Hash32
    public var kind: TransactionKind
    public var reporter: InstitutionID
    public var height: UInt64
    public var index: UInt32
    public var time: UInt64
    /// The payload as originally stated.
    public var payload: JSONValue
    public var status: StatementStatus
    /// The payload in force after corrections; present when `status` is `corrected`.
    public var effective: JSONValue?
    public var corrections: [CorrectionView]
    public var disputes: [DisputeFlag]
    /// Present when the statement commits to personal data.
    public var personalData: PersonalDataStatus?
}

/// Basic information: the latest registration in force and every registration statement.
public struct BasicInfoSection: Codable, Sendable, Hashable {
    public var current: Registration?
    public var source: Hash32?
    public var history: [StatementView]
    /// Where the personal fields of `current` stand (erased ones are absent from it).
    public var personalData: PersonalDataStatus?
}

/// Operating status: the latest status in force and every status statement.
public struct OperatingStatusSection: Codable, Sendable, Hashable {
    public var current: OperatingStatusChange?
    public var source: Hash32?
    public var history: [StatementView]
}

/// A credit facility's current state and history.
public struct FacilityView: Codable, Sendable, Hashable {
    public var reporter: InstitutionID
    public var facilityId: String
    /// The opening was retracted or removed by a dispute.
    public var withdrawn: Bool
    public var type: FacilityType?
    public var amount: Money?
    public var openedOn: Day?
    public var maturesOn: Day?
    public var security: Security?
    public var status: FacilityStatus
    public var classification: Classification?
    public var balance: Money?
    public var overdue: Overdue?
    /// Date of the latest update in force.
    public var updatedAsOf: Day?
    public var closedOn: Day?
    public var closeReason: FacilityCloseReason?
    /// Worst classification and longest overdue among the statements shown.
    public var worstClassification: Classification?
    public var maxOverdueDays: Int
    public var disputed: Bool
    public var history: [StatementView]
}

/// A run of negative facility states (overdue, defaulted, substandard or worse, negative close).
public struct OverdueRecord: Codable, Sendable, Hashable {
    public var reporter: InstitutionID
    public var facilityId: String
    public var facilityType: FacilityType?
    public var startedOn: Day
    /// When it was settled (a non-negative update or the close); absent while it lasts.
    public var endedOn: Day?
    public var maxOverdueDays: Int
    public var maxOverdueAmount: Money?
    public var worstClassification: Classification?
    public var defaulted: Bool
    public var closeReason: FacilityCloseReason?
    /// The day it leaves the report (`endedOn` + retention years).
    public var visibleUntil: Day?
    public var sources: [Hash32]
}

/// A mortgage or pledge of the enterprise's asset.
public struct CollateralView: Codable, Sendable, Hashable {
    public var reporter: InstitutionID
    public var collateralId: String
    public var withdrawn: Bool
    public var current: CollateralRegistered?
    public var released: CollateralReleased?
    public var disputed: Bool
    public var history: [StatementView]
}

/// Guarantees this enterprise gave (as guarantor) and received (as borrower).
public struct GuaranteeSection: Codable, Sendable, Hashable {
    public var given: [GuaranteeView]
    public var received: [GuaranteeView]
}

/// One guarantee.
public struct GuaranteeView: Codable, Sendable, Hashable {
    /// The lender that reported it.
    public var reporter: InstitutionID
    public var guaranteeId: String
    public var borrower: USCC
    public var guarantor: USCC
    public var withdrawn: Bool
    public var current: GuaranteeIssued?
    public var released: GuaranteeReleased?
    public var disputed: Bool
    public var history: [StatementView]
}

/// A public record's current state and history.
public struct PublicRecordView: Codable, Sendable, Hashable {
    public var reporter: InstitutionID
    public var recordId: String
    public var withdrawn: Bool
    public var current: PublicRecord?
    public var visibleUntil: Day?
    public var disputed: Bool
    public var history: [StatementView]
}

/// A dispute and its resolution.
public struct DisputeView: Codable, Sendable, Hashable {
    public struct Resolution: Codable, Sendable, Hashable {
        public var tx: Hash32
        public var outcome: DisputeOutcome
        public var explanation: String
        public var resolvedBy: InstitutionID
        public var time: UInt64
        /// Resolved after the deadline.
        public var late: Bool
    }

    public var tx: Hash32
    public var disputes: Hash32
    public var disputedKind: TransactionKind
    public var filedBy: InstitutionID
    /// Block time of the dispute.
    public var filedAt: UInt64
    /// `filedAt` + `disputeDeadlineDays`.
    public var deadline: UInt64
    public var reason: String
    public var evidence: Hash32?
    public var status: DisputeStatus
    public var resolution: Resolution?
}

/// A served report query.
public struct QueryView: Codable, Sendable, Hashable {
    public var tx: Hash32
    public var institution: InstitutionID
    public var purpose: QueryPurpose
    public var consent: Hash32?
    public var reportHeight: UInt64
    /// The institution whose node served it.
    public var servedBy: InstitutionID
    public var time: UInt64
}
