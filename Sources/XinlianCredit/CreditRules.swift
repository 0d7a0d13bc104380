import XinlianCore
import XinlianCrypto

/// Who may submit what, and how statements must relate to the statements they name.
public enum CreditRules {
    /// Where a transaction comes from. Only a node writes `queryRecord`; the API refuses it.
    public enum Origin: Sendable, Hashable {
        /// Submitted by an institution through a node's API.
        case api
        /// Written by a node (a query record) or met in a block or in gossip.
        case node
    }

    /// The roles that may report `kind` directly. `nil` for kinds whose reporter is fixed by the statement they
    /// name (`correction`, `disputeResolved`, `queryRecord`) and for `governance`.
    public static func permittedRoles(for kind: TransactionKind) -> Set<InstitutionRole>? {
        switch kind {
        case .registration, .operatingStatus: [.registry]
        case .facilityOpened, .facilityUpdated, .facilityClosed, .collateralRegistered, .collateralReleased,
             .guaranteeIssued, .guaranteeReleased: [.member]
        case .publicRecord: [.registry, .regulator]
        case .erasureOrder: [.regulator]
        case .dispute: [.member, .registry, .bureau]
        case .consentGranted: [.member, .bureau]
        case .consentRevoked: [.member, .bureau, .registry]
        case .correction, .disputeResolved, .queryRecord, .governance: nil
        }
    }

    /// Checks a transaction against the credit model: its kind may come from `origin`, its reporter's `roles`
    /// permit it, its payload decodes and validates, and the transactions it names (looked up with
    /// `referenced`, by id) exist, are about the same enterprise and fit. Returns the decoded statement.
    ///
    /// The personal data its payload commits to is joined first (``PersonalFields/join(_:suite:required:)``): it must
    /// be carried and match when `personalRequired` (admission, proposals); a block already certified is checked
    /// without it where this node does not hold it.
    ///
    /// `decoded` is the statement this transaction decoded to when it was checked before (admission), if the caller
    /// kept it: identical transaction and personal data, so joining and decoding again would give the same; its
    /// roles and references are still checked here, against this block.
    @discardableResult
    public static func check(transaction: Transaction, roles: Set<InstitutionRole>, referenced: (Hash32) -> Transaction?,
                             origin: Origin = .api, suite: CryptoSuite,
                             personalRequired: Bool = true, decoded: CreditStatement? = nil) throws(CreditError) -> CreditStatement {
        let body = transaction.body
        let root = body.kind.rawValue
        guard body.kind != .governance else {
            throw CreditError(code: "kind_not_supported", path: root, rule: "governance is not a credit statement")
        }
        guard body.subject != nil else { throw CreditError.invalid(root, "needs a subject enterprise") }
        if body.kind == .queryRecord, origin == .api {
            throw CreditError(code: "kind_not_submittable", path: root, rule: "is written by a node, never through the API")
        }
        if body.kind != .queryRecord { try checkRoles(body.kind, roles: roles, root: root) }
        let statement: CreditStatement
        if let decoded {
            // Tests (debug builds) check that reuse changes nothing: decoding is a pure function of the transaction
            // and its personal data, and a node must judge a block exactly as the simulator, which never reuses.
            assert((try? CreditStatement.decode(kind: body.kind,
                                                 value: PersonalFields.join(transaction, suite: suite, required: personalRequired).value,
                                                 root: root, today: Day(ms: body.timeMs))) == decoded,
                   "a reused statement differs from a fresh decode")
            statement = decoded
        } else {
            let joined = try PersonalFields.join(transaction, suite: suite, required: personalRequired)
            statement = try CreditStatement.decode(kind: body.kind, value: joined.value, root: root, today: Day(ms: body.timeMs))
        }
        if case .queryRecord(let query) = statement { try checkQueryRoles(query, reporter: body.reporter, roles: roles) }
        try withoutActuallyEscaping(referenced) { (escapable) throws(CreditError) in
            try checkReferences(statement, lookup: Lookup(transaction: transaction, referenced: escapable), roles: roles)
        }
        return statement
    }

    static func checkRoles(_ kind: TransactionKind, roles: Set<InstitutionRole>, root: String) throws(CreditError) {
        let permitted = permittedRoles(for: kind) ?? Set(InstitutionRole.allCases).subtracting([.auditor])
        guard !roles.isDisjoint(with: permitted) else {
            let held = roles.map(\.rawValue).sorted().joined(separator: ", ")
            let allowed = permitted.map(\.rawValue).sorted().joined(separator: ", ")
            throw CreditError(code: "role_not_permitted", path: root,
                              rule: "may be reported by \(allowed), not by an institution with roles [\(held)]")
        }
    }

    /// A query record is the requester's own statement, whoever carries it (the API, gossip, a proposal, a synced
    /// block): its `institution` is its reporter, `supervision` is asked only by a regulator and `audit` only by an
    /// auditor, and any other purpose by a role that may read reports (any role but auditor).
    static func checkQueryRoles(_ query: QueryRecord, reporter: InstitutionID,
                                roles: Set<InstitutionRole>) throws(CreditError) {
        let root = TransactionKind.queryRecord.rawValue
        guard query.institution == reporter else {
            throw CreditError(code: "query_mismatch", path: "\(root).institution",
                              rule: "must be the reporter, \(reporter) (a query is recorded by the institution that asked)")
        }
        switch query.purpose {
        case .supervision:
            guard roles.contains(.regulator) else {
                throw CreditError(code: "purpose_not_permitted", path: "\(root).purpose",
                                  rule: "supervision is only for the regulator role")
            }
        case .audit:
            guard roles.contains(.auditor) else {
                throw CreditError(code: "purpose_not_permitted", path: "\(root).purpose", rule: "audit is only for the auditor role")
            }
        default:
            try checkRoles(.queryRecord, roles: roles, root: root)
        }
    }

    private static func checkReferences(_ statement: CreditStatement, lookup: Lookup,
                                        roles: Set<InstitutionRole>) throws(CreditError) {
        let transaction = lookup.transaction
        switch statement {
        case .facilityUpdated(let p):
            if let id = p.opening { try lookup.item(id, "opening", .facilityOpened, "facilityId", p.facilityId) }
        case .facilityClosed(let p):
            if let id = p.opening { try lookup.item(id, "opening", .facilityOpened, "facilityId", p.facilityId) }
        case .collateralReleased(let p):
            if let id = p.registration {
                try lookup.item(id, "registration", .collateralRegistered, "collateralId", p.collateralId)
            }
        case .guaranteeIssued(let p):
            guard p.guarantor != transaction.body.subject else {
                throw CreditError.invalid("guaranteeIssued.guarantor", "must differ from the subject (the borrower)")
            }
        case .guaranteeReleased(let p):
            try lookup.item(p.issuance, "issuance", .guaranteeIssued, "guaranteeId", p.guaranteeId)
        case .correction(let p):
            let original = try lookup.resolve(p.corrects, "corrects")
            try checkCorrection(transaction, payload: p, original: original, roles: roles)
            // A restatement's own references (an update's opening, a release's registration) obey the same rules
            // as the statement it replaces would have.
            if let value = p.payload {
                let restated = try CreditStatement.decode(kind: original.body.kind, value: value, root: "correction.payload",
                                                          today: Day(ms: transaction.body.timeMs))
                try checkReferences(restated, lookup: lookup, roles: roles)
            }
        case .dispute(let p):
            try checkDispute(p, lookup: lookup)
        case .disputeResolved(let p):
            try checkResolution(p, lookup: lookup, roles: roles)
        case .consentRevoked(let p):
            let grant = try lookup.resolve(p.consent, "consent", kinds: [.consentGranted])
            guard grant.body.reporter == transaction.body.reporter || roles.contains(.registry) else {
                throw CreditError(code: "not_original_reporter", path: "consentRevoked.consent",
                                  rule: "may be revoked only by \(grant.body.reporter), which recorded it, or by a registry")
            }
        case .queryRecord(let p):
            try checkQuery(p, lookup: lookup)
        case .registration, .operatingStatus, .facilityOpened, .collateralRegistered, .publicRecord, .consentGranted,
             .erasureOrder:
            break
        }
    }

    /// The rules of a correction, given the statement it corrects: same enterprise, same reporter (still holding a
    /// role that may report that kind), a correctable kind, and a restated payload that is valid for that kind and
    /// keeps the fields that identify the item.
    public static func checkCorrection(_ correction: Transaction, payload: Correction, original: Transaction,
                                       roles: Set<InstitutionRole>) throws(CreditError) {
        let path = "correction.corrects"
        let kind = original.body.kind
        guard CreditStatement.correctableKinds.contains(kind) else {
            throw CreditError(code: "invalid_reference", path: path, rule: "must name a factual statement, not \(kind.rawValue)")
        }
        guard original.body.subject == correction.body.subject else {
            throw CreditError(code: "invalid_reference", path: path, rule: "must name a statement about the same enterprise")
        }
        guard original.body.reporter == correction.body.reporter else {
            throw CreditError(code: "not_original_reporter", path: path,
                              rule: "must name a statement by the same reporter (\(original.body.reporter))")
        }
        try checkRoles(kind, roles: roles, root: "correction")
        guard let value = payload.payload else { return }
        let root = "correction.payload"
        let restated = try CreditStatement.decode(kind: kind, value: value, root: root, today: Day(ms: correction.body.timeMs))
        let stated = try Lookup.decode(original, path)
        for (field, text) in stated.identity.sorted(by: { $0.key < $1.key }) where restated.identity[field] != text {
            throw CreditError.invalid("\(root).\(field)", "must equal the corrected statement's \(field) (retract and restate instead)")
        }
    }

    private static func checkDispute(_ payload: Dispute, lookup: Lookup) throws(CreditError) {
        let target = try lookup.resolve(payload.disputes, "disputes", kinds: CreditStatement.correctableKinds)
        guard target.body.reporter != lookup.transaction.body.reporter else {
            throw CreditError.invalid("dispute.disputes", "must name another reporter's statement (correct your own instead)")
        }
    }

    private static func checkResolution(_ payload: DisputeResolved, lookup: Lookup,
                                        roles: Set<InstitutionRole>) throws(CreditError) {
        let disputeTx = try lookup.resolve(payload.dispute, "dispute", kinds: [.dispute])
        guard case .dispute(let dispute) = try Lookup.decode(disputeTx, "disputeResolved.dispute") else {
            throw CreditError(code: "invalid_reference", path: "disputeResolved.dispute", rule: "must name a dispute")
        }
        let target = try lookup.resolve(dispute.disputes, "dispute")
        guard target.body.reporter == lookup.transaction.body.reporter || roles.contains(.regulator) else {
            throw CreditError(code: "not_original_reporter", path: "disputeResolved.dispute",
                              rule: "may be resolved only by \(target.body.reporter), which reported the disputed statement, or by a regulator")
        }
    }

    private static func checkQuery(_ payload: QueryRecord, lookup: Lookup) throws(CreditError) {
        guard let id = payload.consent else { return }
        let grantTx = try lookup.resolve(id, "consent", kinds: [.consentGranted])
        guard case .consentGranted(let grant) = try Lookup.decode(grantTx, "queryRecord.consent") else { return }
        guard grantTx.body.reporter == payload.institution else {
            throw CreditError(code: "invalid_reference", path: "queryRecord.consent",
                              rule: "must name a consent granted to \(payload.institution)")
        }
        guard grant.purpose == payload.purpose.consentPurpose else {
            throw CreditError(code: "invalid_reference", path: "queryRecord.consent",
                              rule: "must name a consent for purpose \(payload.purpose.rawValue)")
        }
        guard grant.expiresOn >= Day(ms: lookup.transaction.body.timeMs) else {
            throw CreditError(code: "invalid_reference", path: "queryRecord.consent", rule: "must name an unexpired consent")
        }
    }
}

/// Resolves the transactions a statement names and checks the common constraints.
struct Lookup {
    let transaction: Transaction
    let referenced: (Hash32) -> Transaction?

    var root: String { transaction.body.kind.rawValue }

    func resolve(_ id: Hash32, _ field: String, kinds: Set<TransactionKind>? = nil) throws(CreditError) -> Transaction {
        let path = "\(root).\(field)"
        guard let target = referenced(id) else {
            throw CreditError(code: "unknown_reference", path: path, rule: "must name a committed transaction")
        }
        if let kinds, !kinds.contains(target.body.kind) {
            let names = kinds.map(\.rawValue).sorted().joined(separator: " or ")
            throw CreditError(code: "invalid_reference", path: path,
                              rule: "must name a \(names) transaction, not \(target.body.kind.rawValue)")
        }
        guard target.body.subject == transaction.body.subject else {
            throw CreditError(code: "invalid_reference", path: path, rule: "must name a transaction about the same enterprise")
        }
        return target
    }

    /// An item's earlier statement: right kind, same reporter, same item id.
    func item(_ id: Hash32, _ field: String, _ kind: TransactionKind, _ idField: String, _ itemId: String) throws(CreditError) {
        let target = try resolve(id, field, kinds: [kind])
        guard target.body.reporter == transaction.body.reporter else {
            throw CreditError(code: "invalid_reference", path: "\(root).\(field)", rule: "must name a statement by the same reporter")
        }
        let stated = try Self.decode(target, "\(root).\(field)")
        guard stated.identity[idField] == itemId else {
            throw CreditError.invalid("\(root).\(idField)", "must equal the \(idField) of the \(kind.rawValue) named by \(field)")
        }
    }

    static func decode(_ target: Transaction, _ path: String) throws(CreditError) -> CreditStatement {
        do { return try CreditStatement.decode(kind: target.body.kind, payload: target.body.payload) } catch {
            throw CreditError(code: "invalid_reference", path: path, rule: "names a transaction whose payload is invalid (\(error))")
        }
    }
}
