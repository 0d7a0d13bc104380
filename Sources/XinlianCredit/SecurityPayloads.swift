import XinlianCore
import XinlianCrypto

/// Details of pledged intellectual property; required exactly when the collateral type is `intellectualProperty`.
public struct IntellectualPropertyDetails: Codable, Sendable, Hashable {
    public var kind: IntellectualPropertyKind
    /// Patent, trademark or copyright registration number (e.g. `ZL201910123456.7`).
    public var registrationNumber: String
    /// Date the protection ends; must not be before the valuation date.
    public var expiresOn: Day?
}

/// Details of live-animal collateral; required exactly when the collateral type is `livestock`.
public struct LivestockDetails: Codable, Sendable, Hashable {
    public var species: LivestockSpecies
    /// Number of animals, 1-1,000,000.
    public var headCount: Int
    /// Where the herd is kept (farm address).
    public var location: String
    /// Ear-tag or electronic-tag range identifying the animals.
    public var tagRange: String?
}

/// `collateralRegistered`: an asset of the enterprise is mortgaged or pledged to the reporter.
/// The subject is the owner of the asset.
public struct CollateralRegistered: CreditPayload {
    public static let kind = TransactionKind.collateralRegistered

    public var collateralId: String
    public var type: CollateralType
    public var interest: SecurityInterest
    public var description: String
    /// Appraised value.
    public var value: Money
    public var valuedOn: Day
    public var registeredOn: Day
    /// Number in the public register (property register, 动产融资统一登记), when registered there.
    public var registrationNumber: String?
    /// The reporter's facilities this secures (its `facilityId`s), 1-50, no repeats.
    public var securesFacilityIds: [String]?
    public var intellectualProperty: IntellectualPropertyDetails?
    public var livestock: LivestockDetails?

    public func validate(root: String, today: Day?) throws(CreditError) {
        let check = Checker(root: root, today: today)
        try check.identifier(collateralId, "collateralId")
        try check.text(description, "description", limit: 500)
        try check.positive(value, "value")
        try check.notFuture(valuedOn, "valuedOn")
        try check.notFuture(registeredOn, "registeredOn")
        try check.text(registrationNumber, "registrationNumber", limit: 100)
        try validateFacilities(check)
        try validateDetails(check)
    }

    private func validateFacilities(_ check: Checker) throws(CreditError) {
        guard let ids = securesFacilityIds else { return }
        try check.require((1...50).contains(ids.count), "securesFacilityIds", "must list 1 to 50 facility ids")
        for (index, id) in ids.enumerated() {
            try check.identifier(id, "securesFacilityIds[\(index)]")
            try check.require(!ids[..<index].contains(id), "securesFacilityIds[\(index)]", "must not repeat a facility id")
        }
    }

    private func validateDetails(_ check: Checker) throws(CreditError) {
        switch (type, intellectualProperty) {
        case (.intellectualProperty, .none):
            throw check.missing("intellectualProperty", "is required when type is intellectualProperty")
        case (.intellectualProperty, .some(let details)):
            try check.text(details.registrationNumber, "intellectualProperty.registrationNumber", limit: 100)
            if let expiry = details.expiresOn {
                try check.notBefore(expiry, valuedOn, "intellectualProperty.expiresOn", "valuedOn")
            }
        case (_, .some):
            throw CreditError.invalid(check.path("intellectualProperty"), "must be absent unless type is intellectualProperty")
        case (_, .none):
            break
        }
        switch (type, livestock) {
        case (.livestock, .none):
            throw check.missing("livestock", "is required when type is livestock")
        case (.livestock, .some(let herd)):
            try check.require((1...1_000_000).contains(herd.headCount), "livestock.headCount", "must be between 1 and 1000000")
            try check.text(herd.location, "livestock.location", limit: 500)
            try check.text(herd.tagRange, "livestock.tagRange", limit: 100)
        case (_, .some):
            throw CreditError.invalid(check.path("livestock"), "must be absent unless type is livestock")
        case (_, .none):
            break
        }
    }
}

/// `collateralReleased`: the mortgage or pledge ended.
public struct CollateralReleased: CreditPayload {
    public static let kind = TransactionKind.collateralReleased

    public var collateralId: String
    /// The `collateralRegistered` transaction, when the reporter names it.
    public var registration: Hash32?
    public var releasedOn: Day
    public var reason: CollateralReleaseReason

    public func validate(root: String, today: Day?) throws(CreditError) {
        let check = Checker(root: root, today: today)
        try check.identifier(collateralId, "collateralId")
        try check.notFuture(releasedOn, "releasedOn")
    }
}

/// `guaranteeIssued`: an enterprise (`guarantor`) guarantees the subject's obligation to the reporter.
/// The subject is the borrower; the guarantee also appears, as given, in the guarantor's report.
public struct GuaranteeIssued: CreditPayload {
    public static let kind = TransactionKind.guaranteeIssued

    public var guaranteeId: String
    public var guarantor: USCC
    public var liability: GuaranteeLiability
    /// Maximum amount guaranteed.
    public var amount: Money
    public var issuedOn: Day
    public var expiresOn: Day
    /// The reporter's facility it secures.
    public var securesFacilityId: String?

    public func validate(root: String, today: Day?) throws(CreditError) {
        let check = Checker(root: root, today: today)
        try check.identifier(guaranteeId, "guaranteeId")
        try check.positive(amount, "amount")
        try check.notFuture(issuedOn, "issuedOn")
        try check.notBefore(expiresOn, issuedOn, "expiresOn", "issuedOn")
        if let securesFacilityId { try check.identifier(securesFacilityId, "securesFacilityId") }
    }
}

/// `guaranteeReleased`: the guarantee ended. It must name its issuance, so the guarantor's report finds it.
public struct GuaranteeReleased: CreditPayload {
    public static let kind = TransactionKind.guaranteeReleased

    public var guaranteeId: String
    /// The `guaranteeIssued` transaction (required).
    public var issuance: Hash32
    public var releasedOn: Day
    public var reason: GuaranteeReleaseReason

    public func validate(root: String, today: Day?) throws(CreditError) {
        let check = Checker(root: root, today: today)
        try check.identifier(guaranteeId, "guaranteeId")
        try check.notFuture(releasedOn, "releasedOn")
    }
}
