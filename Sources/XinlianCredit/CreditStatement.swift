import Foundation
import XinlianCore
import XinlianCrypto

/// A decoded, validated credit payload of any kind but `governance`.
public enum CreditStatement: Sendable, Hashable {
    case registration(Registration)
    case operatingStatus(OperatingStatusChange)
    case facilityOpened(FacilityOpened)
    case facilityUpdated(FacilityUpdated)
    case facilityClosed(FacilityClosed)
    case collateralRegistered(CollateralRegistered)
    case collateralReleased(CollateralReleased)
    case guaranteeIssued(GuaranteeIssued)
    case guaranteeReleased(GuaranteeReleased)
    case publicRecord(PublicRecord)
    case correction(Correction)
    case dispute(Dispute)
    case disputeResolved(DisputeResolved)
    case consentGranted(ConsentGranted)
    case consentRevoked(ConsentRevoked)
    case queryRecord(QueryRecord)
    case erasureOrder(ErasureOrder)

    /// Kinds a `correction` may supersede and a `dispute` may contest: the factual statements.
    public static let correctableKinds: Set<TransactionKind> = [
        .registration, .operatingStatus, .facilityOpened, .facilityUpdated, .facilityClosed,
        .collateralRegistered, .collateralReleased, .guaranteeIssued, .guaranteeReleased, .publicRecord,
    ]

    /// Decodes and validates payload bytes (canonical JSON text) of `kind`, as signed: without its personal data
    /// (the `personal` commitment is set aside; ``PersonalFields/join(_:suite:required:)`` joins the data).
    /// Error paths start at the kind's name.
    public static func decode(kind: TransactionKind, payload bytes: [UInt8], today: Day? = nil) throws(CreditError) -> CreditStatement {
        var value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            throw CreditError(code: "invalid_payload", path: kind.rawValue, rule: "must be a JSON object")
        }
        if case .object(var members) = value, members.removeValue(forKey: PersonalData.payloadKey) != nil {
            value = .object(members)
        }
        return try decode(kind: kind, value: value, root: kind.rawValue, today: today)
    }

    /// Decodes and validates a payload value of `kind`; error paths start at `root`.
    public static func decode(kind: TransactionKind, value: JSONValue, root: String,
                              today: Day? = nil) throws(CreditError) -> CreditStatement {
        func read<P: CreditPayload>(_ type: P.Type) throws(CreditError) -> P {
            let payload = try PayloadDecoder.decode(type, from: value, root: root)
            try payload.validate(root: root, today: today)
            return payload
        }
        switch kind {
        case .registration: return .registration(try read(Registration.self))
        case .operatingStatus: return .operatingStatus(try read(OperatingStatusChange.self))
        case .facilityOpened: return .facilityOpened(try read(FacilityOpened.self))
        case .facilityUpdated: return .facilityUpdated(try read(FacilityUpdated.self))
        case .facilityClosed: return .facilityClosed(try read(FacilityClosed.self))
        case .collateralRegistered: return .collateralRegistered(try read(CollateralRegistered.self))
        case .collateralReleased: return .collateralReleased(try read(CollateralReleased.self))
        case .guaranteeIssued: return .guaranteeIssued(try read(GuaranteeIssued.self))
        case .guaranteeReleased: return .guaranteeReleased(try read(GuaranteeReleased.self))
        case .publicRecord: return .publicRecord(try read(PublicRecord.self))
        case .correction: return .correction(try read(Correction.self))
        case .dispute: return .dispute(try read(Dispute.self))
        case .disputeResolved: return .disputeResolved(try read(DisputeResolved.self))
        case .consentGranted: return .consentGranted(try read(ConsentGranted.self))
        case .consentRevoked: return .consentRevoked(try read(ConsentRevoked.self))
        case .queryRecord: return .queryRecord(try read(QueryRecord.self))
        case .erasureOrder: return .erasureOrder(try read(ErasureOrder.self))
        case .governance:
            throw CreditError(code: "kind_not_supported", path: root, rule: "governance is not a credit statement")
        }
    }

    /// Transactions this statement names by id (what the index must resolve, and follow for counterparties).
    public var references: [Hash32] {
        switch self {
        case .facilityUpdated(let p): p.opening.map { [$0] } ?? []
        case .facilityClosed(let p): p.opening.map { [$0] } ?? []
        case .collateralReleased(let p): p.registration.map { [$0] } ?? []
        case .guaranteeReleased(let p): [p.issuance]
        case .correction(let p): [p.corrects]
        case .dispute(let p): [p.disputes]
        case .disputeResolved(let p): [p.dispute]
        case .consentRevoked(let p): [p.consent]
        case .queryRecord(let p): p.consent.map { [$0] } ?? []
        default: []
        }
    }

    /// Enterprises other than the subject whose reports show this statement: the guarantor of a guarantee.
    public var counterparties: [USCC] {
        if case .guaranteeIssued(let p) = self { return [p.guarantor] }
        return []
    }

    /// The fields that identify the item a statement is about; a correction must keep them.
    var identity: [String: String] {
        switch self {
        case .facilityOpened(let p): ["facilityId": p.facilityId]
        case .facilityUpdated(let p): ["facilityId": p.facilityId]
        case .facilityClosed(let p): ["facilityId": p.facilityId]
        case .collateralRegistered(let p): ["collateralId": p.collateralId]
        case .collateralReleased(let p): ["collateralId": p.collateralId]
        case .guaranteeIssued(let p): ["guaranteeId": p.guaranteeId, "guarantor": p.guarantor.code]
        case .guaranteeReleased(let p): ["guaranteeId": p.guaranteeId, "issuance": p.issuance.hex]
        case .publicRecord(let p): ["recordId": p.recordId]
        case .correction, .dispute, .disputeResolved, .consentGranted, .consentRevoked,
             .queryRecord, .registration, .operatingStatus, .erasureOrder: [:]
        }
    }
}

extension CreditPayload {
    /// The payload as a JSON value (what a transaction's canonical payload text encodes).
    public var jsonValue: JSONValue {
        get throws(CreditError) {
            do {
                let data = try JSONEncoder().encode(self)
                return try JSONDecoder().decode(JSONValue.self, from: data)
            } catch {
                throw CreditError(code: "invalid_payload", path: Self.kind.rawValue, rule: "cannot be encoded: \(error)")
            }
        }
    }
}
