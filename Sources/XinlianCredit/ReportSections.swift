import XinlianCore
import XinlianCrypto

extension CreditStatement {
    var registration: Registration? { if case .registration(let p) = self { p } else { nil } }
    var operatingStatus: OperatingStatusChange? { if case .operatingStatus(let p) = self { p } else { nil } }
    var collateralRegistered: CollateralRegistered? { if case .collateralRegistered(let p) = self { p } else { nil } }
    var collateralReleased: CollateralReleased? { if case .collateralReleased(let p) = self { p } else { nil } }
    var guaranteeIssued: GuaranteeIssued? { if case .guaranteeIssued(let p) = self { p } else { nil } }
    var guaranteeReleased: GuaranteeReleased? { if case .guaranteeReleased(let p) = self { p } else { nil } }
    var publicRecord: PublicRecord? { if case .publicRecord(let p) = self { p } else { nil } }
}

extension Assembly {
    func report() -> CreditReport {
        var shown: Set<Hash32> = []
        let registrations = ownFacts([.registration])
        let statuses = ownFacts([.operatingStatus])
        shown.formUnion((registrations + statuses).map(\.id))
        let latestRegistration = registrations.last { $0.effective?.registration != nil }
        let latestStatus = statuses.last { $0.effective?.operatingStatus != nil }
        let (facilities, overdue) = facilitySections(shown: &shown)
        let collateral = collateralSection(shown: &shown)
        let guarantees = GuaranteeSection(given: guaranteeViews(given: true, shown: &shown),
                                          received: guaranteeViews(given: false, shown: &shown))
        let publicRecords = publicRecordSection(shown: &shown)
        let disputeStates = disputeOrder.compactMap { disputes[$0] }.filter { shown.contains($0.target) }
        return CreditReport(
            subject: subject, asOf: asOf,
            basicInfo: BasicInfoSection(current: latestRegistration?.effective?.registration, source: latestRegistration?.id,
                                        history: registrations.map(view), personalData: latestRegistration?.effectivePersonal),
            operatingStatus: OperatingStatusSection(current: latestStatus?.effective?.operatingStatus, source: latestStatus?.id,
                                                    history: statuses.map(view)),
            facilities: facilities, collateral: collateral, guarantees: guarantees, overdue: overdue,
            publicRecords: publicRecords, disputes: disputeStates.map(disputeView),
            queryRecords: queries.map(queryView),
            sources: sources(shown: shown, disputes: disputeStates))
    }

    private func sources(shown: Set<Hash32>, disputes: [DisputeState]) -> [Hash32] {
        var ids = Set<Hash32>()
        for id in shown {
            ids.insert(id)
            ids.formUnion(facts[id]?.correctionIDs ?? [])
        }
        for dispute in disputes {
            ids.insert(dispute.entry.id)
            if let resolution = dispute.resolution { ids.insert(resolution.entry.id) }
        }
        ids.formUnion(queries.map(\.entry.id))
        return ids.compactMap { positions[$0] }.sorted { $0.precedes($1) }.map(\.id)
    }

    private func collateralSection(shown: inout Set<Hash32>) -> [CollateralView] {
        let groups = grouped(ownFacts([.collateralRegistered, .collateralReleased])) { fact -> String? in
            fact.original.identity["collateralId"].map { "\(fact.reporter.value)\u{0}\($0)" }
        }
        return groups.compactMap { facts in
            guard let first = facts.first, let id = first.original.identity["collateralId"] else { return nil }
            var current: CollateralRegistered?
            var released: CollateralReleased?
            for fact in facts {
                if let registered = fact.effective?.collateralRegistered {
                    current = registered
                    released = nil
                } else if let release = fact.effective?.collateralReleased {
                    released = release
                }
            }
            shown.formUnion(facts.map(\.id))
            let registrations = facts.filter { $0.entry.body.kind == .collateralRegistered }
            return CollateralView(reporter: first.reporter, collateralId: id,
                                  withdrawn: !registrations.isEmpty && registrations.allSatisfy { $0.effective == nil },
                                  current: current, released: released, disputed: facts.contains(where: isDisputed),
                                  history: facts.map(view))
        }
    }

    /// Guarantees given (the enterprise is the guarantor of another's obligation) or received (it is the borrower).
    private func guaranteeViews(given: Bool, shown: inout Set<Hash32>) -> [GuaranteeView] {
        let all = factOrder.compactMap { facts[$0] }
        let issued = all.filter { fact in
            guard let guarantee = fact.original.guaranteeIssued else { return false }
            return given ? guarantee.guarantor == subject && fact.entry.body.subject != subject
                         : fact.entry.body.subject == subject
        }
        let ids = Set(issued.map(\.id))
        let releases = all.filter { fact in fact.original.guaranteeReleased.map { ids.contains($0.issuance) } ?? false }
        return issued.compactMap { issuance in
            guard let stated = issuance.original.guaranteeIssued else { return nil }
            let ends = releases.filter { $0.original.guaranteeReleased?.issuance == issuance.id }
            let group = [issuance] + ends
            shown.formUnion(group.map(\.id))
            return GuaranteeView(reporter: issuance.reporter, guaranteeId: stated.guaranteeId,
                                 borrower: issuance.entry.body.subject ?? subject, guarantor: stated.guarantor,
                                 withdrawn: issuance.effective == nil, current: issuance.effective?.guaranteeIssued,
                                 released: ends.last { $0.effective != nil }?.effective?.guaranteeReleased,
                                 disputed: group.contains(where: isDisputed), history: group.map(view))
        }
    }

    /// Public records; one settled longer ago than the retention period leaves the report.
    private func publicRecordSection(shown: inout Set<Hash32>) -> [PublicRecordView] {
        let groups = grouped(ownFacts([.publicRecord])) { fact -> String? in
            fact.original.identity["recordId"].map { "\(fact.reporter.value)\u{0}\($0)" }
        }
        return groups.compactMap { facts in
            guard let first = facts.first, let id = first.original.identity["recordId"] else { return nil }
            let current = facts.last { $0.effective != nil }?.effective?.publicRecord
            if let current, current.isSettled, isExpired(current.settledOn) { return nil }
            shown.formUnion(facts.map(\.id))
            return PublicRecordView(reporter: first.reporter, recordId: id, withdrawn: current == nil, current: current,
                                    visibleUntil: current?.settledOn.map(expiry), disputed: facts.contains(where: isDisputed),
                                    history: facts.map(view))
        }
    }

    private func disputeView(_ dispute: DisputeState) -> DisputeView {
        let due = deadline(of: dispute)
        let resolution = dispute.resolution.map { resolved in
            DisputeView.Resolution(tx: resolved.entry.id, outcome: resolved.payload.outcome,
                                   explanation: resolved.payload.explanation, resolvedBy: resolved.entry.body.reporter,
                                   time: resolved.entry.blockTimeMs, late: resolved.entry.blockTimeMs > due)
        }
        return DisputeView(tx: dispute.entry.id, disputes: dispute.target,
                           disputedKind: facts[dispute.target]?.entry.body.kind ?? .registration,
                           filedBy: dispute.entry.body.reporter, filedAt: dispute.entry.blockTimeMs, deadline: due,
                           reason: dispute.payload.reason, evidence: dispute.payload.evidence, status: status(of: dispute),
                           resolution: resolution)
    }

    private func queryView(_ query: (entry: LedgerEntry, payload: QueryRecord)) -> QueryView {
        QueryView(tx: query.entry.id, institution: query.payload.institution, purpose: query.payload.purpose,
                  consent: query.payload.consent, reportHeight: query.payload.reportHeight,
                  servedBy: query.entry.body.reporter, time: query.entry.blockTimeMs)
    }
}
