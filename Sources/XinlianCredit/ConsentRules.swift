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
