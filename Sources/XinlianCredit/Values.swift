import XinlianCrypto

/// A closed enumeration of payload strings: anything outside `allCases` is refused with the list of allowed values.
public protocol ClosedEnumeration: RawRepresentable, CaseIterable, Codable, Sendable, Hashable where RawValue == String {}

extension ClosedEnumeration {
    static var allowedValues: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// The currencies the consortium accepts (ISO 4217).
public enum Currency: String, ClosedEnumeration {
    case cny = "CNY", usd = "USD", eur = "EUR", hkd = "HKD", jpy = "JPY", gbp = "GBP"
}

/// An amount in integer minor units (fen for CNY, sen for JPY, cents otherwise): `{"minor": 1250000, "currency": "CNY"}`.
public struct Money: Codable, Sendable, Hashable {
    public var minor: Int64
    public var currency: Currency

    public init(minor: Int64, currency: Currency) {
        self.minor = minor
        self.currency = currency
    }

    public static func cny(_ minor: Int64) -> Money { Money(minor: minor, currency: .cny) }
}

/// Legal form of a registered enterprise.
public enum LegalForm: String, ClosedEnumeration {
    case limitedLiabilityCompany, jointStockCompany, soleProprietorship, partnership
    case stateOwnedEnterprise, collectiveEnterprise, farmersCooperative, foreignInvestedEnterprise, branch, other
}

/// Operating status as the registry records it.
public enum OperatingStatus: String, ClosedEnumeration {
    /// 存续 / 在营.
    case operating
    /// 停业: temporarily suspended.
    case suspended
    /// Listed in the directory of abnormal operations (经营异常名录).
    case abnormal
    /// 清算中.
    case liquidating
    /// 破产.
    case bankrupt
    /// Business licence revoked (吊销).
    case revoked
    /// 注销.
    case deregistered
}

/// Kind of credit facility.
public enum FacilityType: String, ClosedEnumeration {
    case loan, creditLine, acceptanceBill, letterOfCredit, factoring, financialLease, guaranteeLetter, tradeFinance
    case billDiscount, overdraft
}

/// Five-tier loan classification (贷款五级分类), best to worst.
public enum Classification: String, ClosedEnumeration, Comparable {
    case normal, specialMention, substandard, doubtful, loss

    /// Substandard, doubtful and loss are non-performing: negative information.
    public var isNonPerforming: Bool { self >= .substandard }

    var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }
    public static func < (lhs: Classification, rhs: Classification) -> Bool { lhs.rank < rhs.rank }
}

/// How a facility is secured.
public enum Security: String, ClosedEnumeration {
    case unsecured, collateral, guarantee, mixed
}

/// Status of a facility as a `facilityUpdated` states it; `closed` is derived from `facilityClosed`.
public enum FacilityStatus: String, ClosedEnumeration {
    case active, overdue, restructured, defaulted, closed

    /// `overdue` and `defaulted` are negative information.
    public var isNegative: Bool { self == .overdue || self == .defaulted }
}

/// Why a facility ended.
public enum FacilityCloseReason: String, ClosedEnumeration {
    case repaid, refinanced, transferred, writtenOff, settledByGuarantor, settledByCollateral

    /// Write-off and settlement by a guarantor or by enforcing collateral are negative information.
    public var isNegative: Bool { self == .writtenOff || self == .settledByGuarantor || self == .settledByCollateral }
}

/// Kind of collateral or pledged asset.
public enum CollateralType: String, ClosedEnumeration {
    case realEstate, landUseRight, equipment, vehicle, inventory, receivables, deposit, equity
    case intellectualProperty, livestock, other
}

/// Mortgage (抵押, the debtor keeps the asset) or pledge (质押, the creditor holds it).
public enum SecurityInterest: String, ClosedEnumeration {
    case mortgage, pledge
}

/// Kind of intellectual property pledged.
public enum IntellectualPropertyKind: String, ClosedEnumeration {
    case patent, trademark, copyright, layoutDesign, plantVariety
}

/// Livestock species accepted as live-animal collateral (活体抵押).
public enum LivestockSpecies: String, ClosedEnumeration {
    case cattle, dairyCow, pig, sheep, goat, horse, camel, yak, poultry, fish
}

/// Why collateral was released.
public enum CollateralReleaseReason: String, ClosedEnumeration {
    case obligationSettled, substituted, enforced, expired, other
}

/// Form of a guarantee (保证方式).
public enum GuaranteeLiability: String, ClosedEnumeration {
    /// 连带责任保证.
    case jointAndSeveral
    /// 一般保证.
    case general
}

/// Why a guarantee ended.
public enum GuaranteeReleaseReason: String, ClosedEnumeration {
    case obligationSettled, expired, guarantorPaid, substituted, other
}

/// Kind of public record.
public enum PublicRecordType: String, ClosedEnumeration {
    case courtJudgment, enforcement, dishonestJudgmentDebtor, taxArrears, administrativePenalty
    case socialInsuranceArrears, environmentalPenalty, customsPenalty
}

/// Whether a public record is still in force.
public enum PublicRecordStatus: String, ClosedEnumeration {
    case inForce
    /// Paid, performed or enforced in full.
    case satisfied
    /// Lifted, withdrawn or overturned by the authority.
    case lifted
}

/// Why an institution may query an enterprise's report (the consent's purpose).
public enum ConsentPurpose: String, ClosedEnumeration, NamedValue {
    case loanApplication, creditLineReview, postLoanManagement, guaranteeReview, leasingOrFactoringReview
    case supplyChainFinance

    public static let valueName = "consent purpose"
}

/// Why a query was served: a consented purpose, or supervision/audit (exempt from consent by role).
public enum QueryPurpose: String, ClosedEnumeration, NamedValue {
    case loanApplication, creditLineReview, postLoanManagement, guaranteeReview, leasingOrFactoringReview
    case supplyChainFinance, supervision, audit

    public static let valueName = "purpose"

    /// The consent purpose this query needs, or `nil` when the purpose is exempt.
    public var consentPurpose: ConsentPurpose? { ConsentPurpose(rawValue: rawValue) }

    public init(_ purpose: ConsentPurpose) {
        // Every consent purpose is a query purpose by construction.
        self = QueryPurpose(rawValue: purpose.rawValue) ?? .supervision
    }
}

/// Outcome of a dispute.
public enum DisputeOutcome: String, ClosedEnumeration {
    /// The enterprise was right: the disputed statement leaves the current view (until a correction restates it).
    case upheld
    /// The statement stands.
    case rejected
}
