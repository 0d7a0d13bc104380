import Foundation
import XinlianCore
import XinlianCrypto

/// Builds credit reports from committed transactions. Pure: the same inputs give the same report.
public enum ReportAssembler {
    /// Assembles the report of `subject` as of `asOf`.
    ///
    /// `entries` must hold every committed transaction whose subject is `subject`, plus, for guarantees the
    /// enterprise gave, each `guaranteeIssued` naming it as guarantor and every transaction naming one of those
    /// (directly or through a chain of references: releases, corrections, disputes, resolutions). Order does not
    /// matter (entries are sorted by height and index); entries above `asOf.height`, duplicates, entries that
    /// fail to decode and entries about other enterprises that are not such counterparty statements are ignored.
    public static func assemble(subject: USCC, entries: [LedgerEntry], asOf: ReportAsOf,
                                parameters: ReportParameters) -> CreditReport {
        var assembly = Assembly(subject: subject, asOf: asOf, parameters: parameters)
        assembly.fold(entries)
        return assembly.report()
    }
}

/// A factual statement and how it stands after corrections and dispute outcomes.
struct FactState {
    let entry: LedgerEntry
    let original: CreditStatement
    let payload: JSONValue
    var effective: CreditStatement?
    var effectiveValue: JSONValue?
    var status: StatementStatus = .asStated
    var corrections: [CorrectionView] = []
    var correctionIDs: [Hash32] = []
    var disputes: [Hash32] = []
    /// Personal data of the statement as stated, and of the statement supplying the effective payload.
    var personal: PersonalDataStatus?
    var effectivePersonal: PersonalDataStatus?

    var id: Hash32 { entry.id }
    var reporter: InstitutionID { entry.body.reporter }
}

struct DisputeState {
    let entry: LedgerEntry
    let payload: Dispute
    let target: Hash32
    var resolution: (entry: LedgerEntry, payload: DisputeResolved)?
}

struct Assembly {
    let subject: USCC
    let asOf: ReportAsOf
    let parameters: ReportParameters
    let asOfDay: Day
    var facts: [Hash32: FactState] = [:]
    var factOrder: [Hash32] = []
    var disputes: [Hash32: DisputeState] = [:]
    var disputeOrder: [Hash32] = []
    var queries: [(entry: LedgerEntry, payload: QueryRecord)] = []
    var positions: [Hash32: LedgerEntry] = [:]
    /// Erasure orders among the entries, by enterprise.
    var erasureOrders: [USCC: [LedgerEntry]] = [:]

    init(subject: USCC, asOf: ReportAsOf, parameters: ReportParameters) {
        self.subject = subject
        self.asOf = asOf
        self.parameters = parameters
        self.asOfDay = Day(ms: asOf.time)
    }

    mutating func fold(_ entries: [LedgerEntry]) {
        let sorted = entries.sorted(by: { $0.precedes($1) }).filter { $0.height <= asOf.height }
        for entry in sorted where entry.body.kind == .erasureOrder {
            if let subject = entry.body.subject { erasureOrders[subject, default: []].append(entry) }
        }
        for entry in sorted where positions[entry.id] == nil {
            let (payload, personal) = joined(entry)
            guard let statement = try? CreditStatement.decode(kind: entry.body.kind, value: payload, root: entry.body.kind.rawValue)
            else { continue }
            positions[entry.id] = entry
            switch statement {
            case .correction(let correction):
                applyCorrection(correction, entry: entry)
            case .dispute(let dispute):
                guard facts[dispute.disputes] != nil else { continue }
                disputes[entry.id] = DisputeState(entry: entry, payload: dispute, target: dispute.disputes)
                disputeOrder.append(entry.id)
                facts[dispute.disputes]?.disputes.append(entry.id)
            case .disputeResolved(let resolved):
                applyResolution(resolved, entry: entry)
            case .queryRecord(let query):
                if entry.body.subject == subject { queries.append((entry, query)) }
            case .consentGranted, .consentRevoked, .erasureOrder:
                continue
            default:
                facts[entry.id] = FactState(entry: entry, original: statement, payload: payload, effective: statement,
                                            effectiveValue: payload, personal: personal, effectivePersonal: personal)
                factOrder.append(entry.id)
            }
        }
    }

    /// The entry's payload with its personal data joined where it is held and not due for erasure as of the report,
    /// and where that personal data stands (nil when the payload commits to none).
    func joined(_ entry: LedgerEntry) -> (JSONValue, PersonalDataStatus?) {
        let suite = CryptoSuite(parameters.suite)
        let erased = erasure(of: entry)
        let transaction = erased == nil ? entry.transaction : entry.transaction.withoutPersonalData
        // Personal data that does not fit its payload is set aside: the statement is shown as signed.
        guard let joined = (try? PersonalFields.join(transaction, suite: suite, required: false))
                ?? (try? PersonalFields.join(transaction.withoutPersonalData, suite: suite, required: false)) else {
            return (.object([:]), nil)
        }
        switch joined.joined {
        case .none: return (joined.value, nil)
        case .present: return (joined.value, PersonalDataStatus(state: .present))
        case .absent: return (joined.value, erased ?? PersonalDataStatus(state: .unavailable))
        }
    }

    /// When the entry's personal data is erased as of the report: at the end of its retention period, or by the
    /// first erasure order about its enterprise committed after it, whichever comes first.
    func erasure(of entry: LedgerEntry) -> PersonalDataStatus? {
        var found: PersonalDataStatus?
        if parameters.personalDataRetentionDays > 0 {
            let (span, spanOverflow) = UInt64(parameters.personalDataRetentionDays).multipliedReportingOverflow(by: 86_400_000)
            let (due, dueOverflow) = entry.blockTimeMs.addingReportingOverflow(span)
            if !spanOverflow, !dueOverflow, due <= asOf.time {
                found = PersonalDataStatus(state: .erased, erasedOn: Day(ms: due))
            }
        }
        if let subject = entry.body.subject,
           let order = erasureOrders[subject]?.first(where: { $0.height > entry.height }),
           found.map({ ($0.erasedOn?.startMs ?? 0) > Day(ms: order.blockTimeMs).startMs }) ?? true {
            found = PersonalDataStatus(state: .erased, erasedOn: Day(ms: order.blockTimeMs), order: order.id)
        }
        return found
    }

    /// Corrections and upheld disputes apply in ledger order: the last word on a statement wins.
    private mutating func applyCorrection(_ correction: Correction, entry: LedgerEntry) {
        guard var fact = facts[correction.corrects], fact.reporter == entry.body.reporter,
              fact.entry.body.subject == entry.body.subject else { return }
        if let value = correction.payload {
            guard let restated = try? CreditStatement.decode(kind: fact.entry.body.kind, value: value, root: "correction.payload")
            else { return }
            fact.effective = restated
            fact.effectiveValue = value
            fact.effectivePersonal = joined(entry).1
            fact.status = .corrected
        } else {
            fact.effective = nil
            fact.effectiveValue = nil
            fact.status = .retracted
        }
        fact.corrections.append(CorrectionView(tx: entry.id, height: entry.height, time: entry.blockTimeMs,
                                               reason: correction.reason, payload: correction.payload, retract: correction.retract))
        fact.correctionIDs.append(entry.id)
        facts[correction.corrects] = fact
    }

    private mutating func applyResolution(_ resolved: DisputeResolved, entry: LedgerEntry) {
        guard var dispute = disputes[resolved.dispute], dispute.resolution == nil,
              entry.body.subject == dispute.entry.body.subject else { return }
        dispute.resolution = (entry, resolved)
        disputes[resolved.dispute] = dispute
        if resolved.outcome == .upheld, var fact = facts[dispute.target] {
            fact.effective = nil
            fact.effectiveValue = nil
            fact.status = .removedByDispute
            facts[dispute.target] = fact
        }
    }

    // MARK: Shared helpers

    func deadline(of dispute: DisputeState) -> UInt64 {
        let (span, spanOverflow) = UInt64(max(0, parameters.disputeDeadlineDays)).multipliedReportingOverflow(by: 86_400_000)
        let (end, endOverflow) = dispute.entry.blockTimeMs.addingReportingOverflow(span)
        return spanOverflow || endOverflow ? UInt64.max : end
    }

    func status(of dispute: DisputeState) -> DisputeStatus {
        if let resolution = dispute.resolution { return resolution.payload.outcome == .upheld ? .upheld : .rejected }
        return asOf.time > deadline(of: dispute) ? .overdue : .open
    }

    func isDisputed(_ fact: FactState) -> Bool {
        fact.disputes.contains { id in disputes[id].map { status(of: $0).isUnresolved } ?? false }
    }

    func view(_ fact: FactState) -> StatementView {
        StatementView(tx: fact.id, kind: fact.entry.body.kind, reporter: fact.reporter, height: fact.entry.height,
                      index: fact.entry.index, time: fact.entry.blockTimeMs, payload: fact.payload, status: fact.status,
                      effective: fact.status == .corrected ? fact.effectiveValue : nil, corrections: fact.corrections,
                      disputes: fact.disputes.compactMap { id in disputes[id].map { DisputeFlag(tx: id, status: status(of: $0)) } },
                      personalData: fact.personal)
    }

    /// The last day negative information settled on `settled` is still shown is the day before this one.
    func expiry(_ settled: Day) -> Day { settled.adding(years: parameters.retentionYears) }

    func isExpired(_ settled: Day?) -> Bool { settled.map { asOfDay >= expiry($0) } ?? false }

    /// Own facts of the given kinds, in ledger order.
    func ownFacts(_ kinds: Set<TransactionKind>) -> [FactState] {
        factOrder.compactMap { facts[$0] }.filter { $0.entry.body.subject == subject && kinds.contains($0.entry.body.kind) }
    }
}

/// Groups values by a key, keeping first-appearance order of keys and ledger order inside a group.
func grouped<Key: Hashable>(_ facts: [FactState], by key: (FactState) -> Key?) -> [[FactState]] {
    var order: [Key] = []
    var groups: [Key: [FactState]] = [:]
    for fact in facts {
        guard let value = key(fact) else { continue }
        if groups[value] == nil { order.append(value) }
        groups[value, default: []].append(fact)
    }
    return order.compactMap { groups[$0] }
}
