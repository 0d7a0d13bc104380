import XinlianCore
import XinlianCrypto

/// `correction`: the reporter supersedes one of its own earlier statements, restating it in full (`payload`,
/// checked against the corrected kind's schema) or withdrawing it (`retract: true`).
public struct Correction: CreditPayload {
    public static let kind = TransactionKind.correction

    public var corrects: Hash32
    public var reason: String
    /// The corrected statement's full payload; exactly one of `payload` and `retract` is present.
    public var payload: JSONValue?
    /// `true` withdraws the statement from the current view.
    public var retract: Bool?

    public func validate(root: String, today: Day?) throws(CreditError) {
        let check = Checker(root: root, today: today)
        try check.text(reason, "reason", limit: 1_000)
        switch (payload, retract) {
        case (.none, .none):
            throw check.missing("payload", "one of payload or retract is required")
        case (.some, .some):
            throw CreditError.invalid(check.path("retract"), "must be absent when payload is present")
        case (.none, .some(let flag)):
            try check.require(flag, "retract", "must be true when present")
        case (.some(let value), .none):
            guard case .object = value else { throw CreditError(code: "wrong_type", path: check.path("payload"), rule: "must be an object") }
        }
    }
}

/// `dispute`: an objection (异议) to a statement, filed by an institution for the enterprise.
/// Its deadline is the dispute's block time plus `disputeDeadlineDays`.
public struct Dispute: CreditPayload {
    public static let kind = TransactionKind.dispute

    /// The disputed statement.
    public var disputes: Hash32
    public var reason: String
    /// Hash of the enterprise's signed objection document.
    public var evidence: Hash32?

    public func validate(root: String, today: Day?) throws(CreditError) {
        try Checker(root: root, today: today).text(reason, "reason", limit: 1_000)
    }
}

/// `disputeResolved`: the outcome of a dispute.
public struct DisputeResolved: CreditPayload {
    public static let kind = TransactionKind.disputeResolved

    public var dispute: Hash32
    public var outcome: DisputeOutcome
    public var explanation: String

    public func validate(root: String, today: Day?) throws(CreditError) {
        try Checker(root: root, today: today).text(explanation, "explanation", limit: 1_000)
    }
}

/// `consentGranted`: the enterprise authorizes the reporter (the institution that will query) to read its
/// report for `purpose` from `grantedOn` through `expiresOn` (China Standard Time days, inclusive).
public struct ConsentGranted: CreditPayload {
    public static let kind = TransactionKind.consentGranted
    /// Longest consent: three years.
    public static let maximumYears = 3

    public var purpose: ConsentPurpose
    public var grantedOn: Day
    public var expiresOn: Day
    /// Hash of the signed authorization document.
    public var evidence: Hash32

    public func validate(root: String, today: Day?) throws(CreditError) {
        let check = Checker(root: root, today: today)
        try check.notFuture(grantedOn, "grantedOn")
        try check.notBefore(expiresOn, grantedOn, "expiresOn", "grantedOn")
        try check.require(expiresOn <= grantedOn.adding(years: Self.maximumYears), "expiresOn",
                          "must be at most \(Self.maximumYears) years after grantedOn")
    }
}

/// `consentRevoked`: the enterprise withdraws a consent; effective from the revocation's block time.
public struct ConsentRevoked: CreditPayload {
    public static let kind = TransactionKind.consentRevoked

    public var consent: Hash32
    public var revokedOn: Day
    public var reason: String?

    public func validate(root: String, today: Day?) throws(CreditError) {
        let check = Checker(root: root, today: today)
        try check.notFuture(revokedOn, "revokedOn")
        try check.text(reason, "reason", limit: 1_000)
    }
}

/// `queryRecord`: written by the node that served a report: who asked, for what, under which consent.
public struct QueryRecord: CreditPayload {
    public static let kind = TransactionKind.queryRecord

    /// The institution that asked.
    public var institution: InstitutionID
    public var purpose: QueryPurpose
    /// The consent it was served under; absent exactly for `supervision` and `audit`.
    public var consent: Hash32?
    /// The height the report was as of.
    public var reportHeight: UInt64

    public init(institution: InstitutionID, purpose: QueryPurpose, consent: Hash32?, reportHeight: UInt64) {
        self.institution = institution
        self.purpose = purpose
        self.consent = consent
        self.reportHeight = reportHeight
    }

    public func validate(root: String, today: Day?) throws(CreditError) {
        let check = Checker(root: root, today: today)
        switch (purpose.consentPurpose, consent) {
        case (.some, .none):
            throw check.missing("consent", "is required for purpose \(purpose.rawValue)")
        case (.none, .some):
            throw CreditError.invalid(check.path("consent"), "must be absent for purpose \(purpose.rawValue)")
        default:
            break
        }
    }
}

/// `erasureOrder`: a regulator orders every node to erase the personal data (``PersonalData``) of the subject's
/// statements committed before this one, before their retention period ends (a court order, a data subject's
/// request upheld under PIPL Art. 47). The statements stay on the ledger without their personal fields; reports
/// show them as erased on the order's day.
public struct ErasureOrder: CreditPayload {
    public static let kind = TransactionKind.erasureOrder

    public var reason: String
    /// The legal basis, in words (`PIPL Art. 47(1)`, a case number).
    public var legalBasis: String?

    public init(reason: String, legalBasis: String? = nil) {
        self.reason = reason
        self.legalBasis = legalBasis
    }

    public func validate(root: String, today: Day?) throws(CreditError) {
        let check = Checker(root: root, today: today)
        try check.text(reason, "reason", limit: 1_000)
        try check.text(legalBasis, "legalBasis", limit: 200)
    }
}
