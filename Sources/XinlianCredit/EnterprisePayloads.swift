import XinlianCore

/// `registration`: the enterprise's basic information as the registry authority attests it (营业执照 data).
/// A later registration restates it in full (a change of name, address or capital).
public struct Registration: CreditPayload {
    public static let kind = TransactionKind.registration

    /// Registered name, 1-200 characters. Personal data for a sole proprietorship (absent once erased).
    public var name: String?
    public var legalForm: LegalForm
    /// Always personal data (``PersonalFields``): absent from the signed payload, and from the statement once erased.
    public var legalRepresentative: String?
    public var registeredCapital: Money
    public var establishedOn: Day
    public var registrationAuthority: String
    /// Personal data for a sole proprietorship (absent once erased).
    public var address: String?
    /// GB/T 4754 industry code: a section letter A-T, optionally followed by 2, 3 or 4 digits (`C1762`).
    public var industry: String
    public var businessScope: String?

    public func validate(root: String, today: Day?) throws(CreditError) {
        let check = Checker(root: root, today: today)
        try check.text(name, "name", limit: 200)
        try check.text(legalRepresentative, "legalRepresentative", limit: 100)
        try check.nonNegative(registeredCapital, "registeredCapital")
        try check.notFuture(establishedOn, "establishedOn")
        try check.text(registrationAuthority, "registrationAuthority", limit: 200)
        try check.text(address, "address", limit: 500)
        try check.require(Self.isIndustryCode(industry), "industry",
                          "must be a GB/T 4754 code: a letter A-T then 0, 2, 3 or 4 digits")
        try check.text(businessScope, "businessScope", limit: 2_000)
    }

    static func isIndustryCode(_ code: String) -> Bool {
        let bytes = Array(code.utf8)
        guard let section = bytes.first, (UInt8(ascii: "A")...UInt8(ascii: "T")).contains(section),
              [1, 3, 4, 5].contains(bytes.count) else { return false }
        return bytes.dropFirst().allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }
}

/// `operatingStatus`: a change of the enterprise's operating status.
public struct OperatingStatusChange: CreditPayload {
    public static let kind = TransactionKind.operatingStatus

    public var status: OperatingStatus
    public var effectiveOn: Day
    /// The authority that decided it, when not the registry itself.
    public var authority: String?
    /// Required for every status but `operating`.
    public var reason: String?

    public func validate(root: String, today: Day?) throws(CreditError) {
        let check = Checker(root: root, today: today)
        try check.notFuture(effectiveOn, "effectiveOn")
        try check.text(authority, "authority", limit: 200)
        if status != .operating, reason == nil {
            throw check.missing("reason", "is required when status is \(status.rawValue)")
        }
        try check.text(reason, "reason", limit: 1_000)
    }
}

/// `publicRecord`: a court judgment, enforcement, tax arrears, penalty… about the enterprise.
/// A later `publicRecord` with the same `recordId` from the same reporter states the record's new status.
public struct PublicRecord: CreditPayload {
    public static let kind = TransactionKind.publicRecord

    /// The authority's case or document number, e.g. `(2023)浙0106执1234号`.
    public var recordId: String
    public var type: PublicRecordType
    public var authority: String
    public var decidedOn: Day
    public var amount: Money?
    public var status: PublicRecordStatus
    /// When the record was satisfied or lifted; required exactly when `status` is not `inForce`.
    public var settledOn: Day?
    public var summary: String

    public func validate(root: String, today: Day?) throws(CreditError) {
        let check = Checker(root: root, today: today)
        try check.text(recordId, "recordId", limit: 100)
        try check.text(authority, "authority", limit: 200)
        try check.notFuture(decidedOn, "decidedOn")
        if let amount { try check.positive(amount, "amount") }
        switch (status, settledOn) {
        case (.inForce, .some):
            throw CreditError.invalid(check.path("settledOn"), "must be absent when status is inForce")
        case (.satisfied, .none), (.lifted, .none):
            throw check.missing("settledOn", "is required when status is \(status.rawValue)")
        case (_, .some(let settled)):
            try check.notBefore(settled, decidedOn, "settledOn", "decidedOn")
            try check.notFuture(settled, "settledOn")
        case (.inForce, .none):
            break
        }
        try check.text(summary, "summary", limit: 1_000)
    }

    /// The record is negative information until `settledOn`, then for the retention period.
    public var isSettled: Bool { status != .inForce }
}
