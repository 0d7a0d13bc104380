import XinlianCore
import XinlianCrypto

/// A run of negative states of one facility, from the first negative statement to the statement that settles it.
struct NegativeRun {
    var startedOn: Day
    var endedOn: Day?
    var maxOverdueDays = 0
    var maxOverdueAmount: Money?
    var worstClassification: Classification?
    var defaulted = false
    var closeReason: FacilityCloseReason?
    var statements: [Hash32] = []

    mutating func absorb(_ update: FacilityUpdated, _ id: Hash32) {
        statements.append(id)
        if let overdue = update.overdue {
            maxOverdueDays = max(maxOverdueDays, overdue.days)
            if maxOverdueAmount.map({ $0.minor < overdue.amount.minor }) ?? true { maxOverdueAmount = overdue.amount }
        }
        worstClassification = max(worstClassification ?? update.classification, update.classification)
        defaulted = defaulted || update.status == .defaulted
    }
}

extension Assembly {
    /// Facilities (grouped by reporter and `facilityId`) and their overdue records.
    ///
    /// Negative statements disappear `retentionYears` after the run they belong to was settled; a facility whose
    /// negative close has expired disappears entirely.
    func facilitySections(shown: inout Set<Hash32>) -> ([FacilityView], [OverdueRecord]) {
        let groups = grouped(ownFacts([.facilityOpened, .facilityUpdated, .facilityClosed])) { fact -> String? in
            fact.original.identity["facilityId"].map { "\(fact.reporter.value)\u{0}\($0)" }
        }
        var views: [FacilityView] = []
        var records: [OverdueRecord] = []
        for facts in groups {
            let runs = negativeRuns(facts)
            let expired = runs.filter { isExpired($0.endedOn) }
            let hidden = Set(expired.flatMap(\.statements))
            if expired.contains(where: { $0.closeReason != nil }) { continue }
            let visible = facts.filter { !hidden.contains($0.id) }
            guard var view = facilityView(visible) else { continue }
            view.withdrawn = facts.contains { $0.entry.body.kind == .facilityOpened }
                && !facts.contains { $0.entry.body.kind == .facilityOpened && $0.effective != nil }
            views.append(view)
            shown.formUnion(visible.map(\.id))
            records += runs.filter { !isExpired($0.endedOn) }.map { run in
                OverdueRecord(reporter: view.reporter, facilityId: view.facilityId, facilityType: view.type,
                              startedOn: run.startedOn, endedOn: run.endedOn, maxOverdueDays: run.maxOverdueDays,
                              maxOverdueAmount: run.maxOverdueAmount, worstClassification: run.worstClassification,
                              defaulted: run.defaulted, closeReason: run.closeReason,
                              visibleUntil: run.endedOn.map(expiry), sources: run.statements)
            }
        }
        return (views, records)
    }

    /// Splits the statements in force into negative runs, in ledger order.
    func negativeRuns(_ facts: [FactState]) -> [NegativeRun] {
        var runs: [NegativeRun] = []
        var current: NegativeRun?
        for fact in facts {
            switch fact.effective {
            case .facilityUpdated(let update):
                if update.isNegative {
                    if current == nil { current = NegativeRun(startedOn: update.asOf) }
                    current?.absorb(update, fact.id)
                } else if var run = current {
                    run.endedOn = update.asOf
                    runs.append(run)
                    current = nil
                }
            case .facilityClosed(let close):
                if close.reason.isNegative {
                    var run = current ?? NegativeRun(startedOn: close.closedOn)
                    run.closeReason = close.reason
                    run.statements.append(fact.id)
                    current = run
                }
                if var run = current {
                    run.endedOn = close.closedOn
                    runs.append(run)
                    current = nil
                }
            default:
                continue
            }
        }
        if let current { runs.append(current) }
        return runs
    }

    /// The facility's current state, folded over the statements in force among `facts`.
    func facilityView(_ facts: [FactState]) -> FacilityView? {
        guard let first = facts.first, let id = first.original.identity["facilityId"] else { return nil }
        var view = FacilityView(reporter: first.reporter, facilityId: id, withdrawn: false, status: .active,
                                maxOverdueDays: 0, disputed: facts.contains(where: isDisputed), history: facts.map(self.view))
        for fact in facts {
            switch fact.effective {
            case .facilityOpened(let opened):
                view.type = opened.type
                view.amount = opened.amount
                view.openedOn = opened.openedOn
                view.maturesOn = opened.maturesOn
                view.security = opened.security
                view.classification = opened.classification
            case .facilityUpdated(let update):
                view.status = update.status
                view.classification = update.classification
                view.balance = update.balance
                view.overdue = update.overdue
                view.updatedAsOf = update.asOf
                view.maxOverdueDays = max(view.maxOverdueDays, update.overdue?.days ?? 0)
            case .facilityClosed(let close):
                view.status = .closed
                view.closedOn = close.closedOn
                view.closeReason = close.reason
                view.overdue = nil
                view.balance = view.balance.map { Money(minor: 0, currency: $0.currency) }
            default:
                continue
            }
            if let classification = view.classification {
                view.worstClassification = max(view.worstClassification ?? classification, classification)
            }
        }
        return view
    }
}
