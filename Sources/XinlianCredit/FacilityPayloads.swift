import XinlianCore
import XinlianCrypto

/// `facilityOpened`: a lender opens a credit facility for the enterprise.
public struct FacilityOpened: CreditPayload {
    public static let kind = TransactionKind.facilityOpened

    /// The reporter's own id for the facility; unique per reporter and enterprise.
    public var facilityId: String
    public var type: FacilityType
    /// Principal or limit.
    public var amount: Money
    public var openedOn: Day
    public var maturesOn: Day
    public var security: Security
    public var classification: Classification
    public var purpose: String?

    public func validate(root: String, today: Day?) throws(CreditError) {
        let check = Checker(root: root, today: today)
        try check.identifier(facilityId, "facilityId")
        try check.positive(amount, "amount")
        try check.notFuture(openedOn, "openedOn")
        try check.notBefore(maturesOn, openedOn, "maturesOn", "openedOn")
        try check.text(purpose, "purpose", limit: 500)
    }
}

/// Amount and days past due.
public struct Overdue: Codable, Sendable, Hashable {
    /// Days past due, 1-36500.
    public var days: Int
    public var amount: Money
}

/// `facilityUpdated`: the facility's state at a date (balance, classification, overdue).
public struct FacilityUpdated: CreditPayload {
    public static let kind = TransactionKind.facilityUpdated

    public var facilityId: String
    /// The `facilityOpened` transaction, when the reporter names it.
    public var opening: Hash32?
    /// The date the state is reported for.
    public var asOf: Day
    public var balance: Money
    public var classification: Classification
    /// `active`, `overdue`, `restructured` or `defaulted` (`closed` comes with `facilityClosed`).
    public var status: FacilityStatus
    /// Required when `status` is `overdue`; absent when `active`.
    public var overdue: Overdue?

    public func validate(root: String, today: Day?) throws(CreditError) {
        let check = Checker(root: root, today: today)
        try check.identifier(facilityId, "facilityId")
        try check.notFuture(asOf, "asOf")
        try check.nonNegative(balance, "balance")
        try check.require(status != .closed, "status", "must not be closed (report facilityClosed)")
        if status == .overdue, overdue == nil {
            throw check.missing("overdue", "is required when status is overdue")
        }
        if let overdue {
            try check.require(status != .active, "overdue", "must be absent when status is active")
            try check.require((1...36_500).contains(overdue.days), "overdue.days", "must be between 1 and 36500")
            try check.positive(overdue.amount, "overdue.amount")
            try check.sameCurrency(overdue.amount, as: balance, "overdue.amount", "balance")
        }
    }

    /// Overdue, defaulted or classified substandard or worse.
    public var isNegative: Bool { overdue != nil || status.isNegative || classification.isNonPerforming }
}

/// `facilityClosed`: the facility ended.
public struct FacilityClosed: CreditPayload {
    public static let kind = TransactionKind.facilityClosed

    public var facilityId: String
    public var opening: Hash32?
    public var closedOn: Day
    public var reason: FacilityCloseReason

    public func validate(root: String, today: Day?) throws(CreditError) {
        let check = Checker(root: root, today: today)
        try check.identifier(facilityId, "facilityId")
        try check.notFuture(closedOn, "closedOn")
    }
}
