import XinlianCore
import XinlianCrypto

/// Whether an institution may be served an enterprise's report.
public enum ConsentRules {
    /// The consent under which `institution` may query for `purpose` at ledger time `time` (ms), or `nil`.
    ///
    /// A consent is valid when a `consentGranted` reported by `institution` for `purpose` was committed at or
    /// before `time`, `time`'s China Standard Time day lies within `grantedOn...expiresOn`, and no
    /// `consentRevoked` naming it was committed at or before `time`. With several, the latest granted wins.
    /// `transactions` are the enterprise's committed entries; pass `subject` to ignore entries about others.
    public static func validConsent(for institution: InstitutionID, purpose: ConsentPurpose, at time: UInt64,
                                    among transactions: [LedgerEntry], subject: USCC? = nil) -> Hash32? {
        let day = Day(ms: time)
        let relevant = transactions.filter { entry in
            entry.blockTimeMs <= time && (subject.map { entry.body.subject == $0 } ?? true)
        }
        var revoked = Set<Hash32>()
        for entry in relevant where entry.body.kind == .consentRevoked {
            if case .consentRevoked(let revocation)? = try? CreditStatement.decode(kind: .consentRevoked, payload: entry.body.payload) {
                revoked.insert(revocation.consent)
            }
        }
        let valid = relevant.filter { entry in
            guard entry.body.kind == .consentGranted, entry.body.reporter == institution, !revoked.contains(entry.id),
                  case .consentGranted(let grant)? = try? CreditStatement.decode(kind: .consentGranted, payload: entry.body.payload)
            else { return false }
            return grant.purpose == purpose && grant.grantedOn <= day && day <= grant.expiresOn
        }
        return valid.max { $0.precedes($1) }?.id
    }
}

/// Why a report request was refused (HTTP 403 with `code`).
public struct QueryRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable: `purpose_not_permitted`, `consent_not_found`, `consent_wrong_purpose`, `consent_not_yet_valid`,
    /// `consent_expired`, `consent_revoked`.
    public let code: String
    public let message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

extension ConsentRules {
    /// Whether `requester` (holding `roles`) may be served `subject`'s report under the signed `query` at ledger time
    /// `time` (ms), judged against the enterprise's committed `entries`. Returns the consent served under (nil for
    /// the exempt purposes).
    ///
    /// - `supervision` only for a regulator, `audit` only for an auditor; neither needs a consent.
    /// - Every other purpose needs the consent `query.consent` names: a `consentGranted` about `subject`, recorded
    ///   by `requester`, for that purpose, committed at or before `time`, with `time`'s day within
    ///   `grantedOn...expiresOn`, and no `consentRevoked` naming it committed at or before `time`.
    public static func authorize(_ query: QueryRecord, requester: InstitutionID, roles: Set<InstitutionRole>, subject: USCC,
                                 at time: UInt64, among entries: [LedgerEntry]) throws(QueryRefusal) -> Hash32? {
        guard let purpose = query.purpose.consentPurpose else {
            let role: InstitutionRole = query.purpose == .supervision ? .regulator : .auditor
            guard roles.contains(role) else {
                throw QueryRefusal("purpose_not_permitted", "purpose \(query.purpose.rawValue) is only for the \(role.rawValue) role")
            }
            return nil
        }
        guard let id = query.consent else {
            throw QueryRefusal("consent_not_found", "purpose \(purpose.rawValue) needs a consent")
        }
        let committed = entries.filter { $0.blockTimeMs <= time && $0.body.subject == subject }
        guard let grantEntry = committed.first(where: { $0.id == id }), grantEntry.body.kind == .consentGranted,
              grantEntry.body.reporter == requester,
              case .consentGranted(let grant)? = try? CreditStatement.decode(kind: .consentGranted, payload: grantEntry.body.payload)
        else {
            throw QueryRefusal("consent_not_found",
                               "no committed consent \(id.hex) about \(subject) granted to \(requester)")
        }
        guard grant.purpose == purpose else {
            throw QueryRefusal("consent_wrong_purpose", "consent \(id.hex) is for \(grant.purpose.rawValue), not \(purpose.rawValue)")
        }
        let day = Day(ms: time)
        guard grant.grantedOn <= day else {
            throw QueryRefusal("consent_not_yet_valid", "consent \(id.hex) is valid from \(grant.grantedOn)")
        }
        guard day <= grant.expiresOn else {
            throw QueryRefusal("consent_expired", "consent \(id.hex) expired after \(grant.expiresOn)")
        }
        for entry in committed where entry.body.kind == .consentRevoked {
            if case .consentRevoked(let revocation)? = try? CreditStatement.decode(kind: .consentRevoked, payload: entry.body.payload),
               revocation.consent == id {
                throw QueryRefusal("consent_revoked", "consent \(id.hex) was revoked by \(entry.id.hex)")
            }
        }
        return id
    }
}
