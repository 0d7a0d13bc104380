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

    init(subject: USCC, asOf: ReportAsOf, parameters: ReportParameters) {
        self.subject = subject
        self.asOf = asOf
        self.parameters = parameters
        self.asOfDay = Day(ms: asOf.time)
    }

    mutating func fold(_ entries: [LedgerEntry]) {
        for entry in entries.sorted(by: { $0.precedes($1) }) where entry.height <= asOf.height && positions[entry.id] == nil {
            guard let statement = try? CreditStatement.decode(kind: entry.body.kind, payload: entry.body.payload),
                  let payload = try? JSONDecoder().decode(JSONValue.self, from: Data(entry.body.payload)) else { continue }
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
            case .consentGranted, .consentRevoked:
                continue
            default:
                facts[entry.id] = FactState(entry: entry, original: statement, payload: payload, effective: statement,
                                            effectiveValue: payload)
                factOrder.append(entry.id)
            }
        }
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
                      disputes: fact.disputes.compactMap { id in disputes[id].map { DisputeFlag(tx: id, status: status(of: $0)) } })
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
