import Foundation
import Testing
import XinlianCore
import XinlianCredit
import XinlianCrypto

@Suite struct ReportTests {
    static let opened = Fixture.day("2023-01-10")

    /// Opening plus an overdue update (2024-03-31) of facility LN-2023-001 by bank-a.
    static func overdueFacility() -> (TestLedger, opening: Hash32, update: Hash32) {
        var ledger = TestLedger()
        let opening = ledger.add(.facilityOpened, Examples.payload(.facilityOpened), on: opened)
        let update = ledger.add(.facilityUpdated, Examples.payload(.facilityUpdated), on: Fixture.day("2024-04-01"))
        return (ledger, opening, update)
    }

    @Test func reportHasExactlyTheTopLevelKeys() throws {
        let report = TestLedger().report(on: Fixture.today)
        let data = try JSONEncoder().encode(report)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == ["subject", "asOf", "basicInfo", "operatingStatus", "facilities", "collateral", "guarantees",
                                     "overdue", "publicRecords", "disputes", "queryRecords", "sources"])
        let asOf = try #require(object["asOf"] as? [String: Any])
        #expect(Set(asOf.keys) == ["height", "blockHash", "time"])
        let guarantees = try #require(object["guarantees"] as? [String: Any])
        #expect(Set(guarantees.keys) == ["given", "received"])
        #expect(try JSONDecoder().decode(CreditReport.self, from: data) == report)
    }

    @Test func basicInfoAndStatusShowTheLatestInForce() {
        var ledger = TestLedger()
        ledger.add(.registration, Examples.payload(.registration), reporter: "samr", on: Fixture.day("2020-01-01"))
        let renamed = ledger.add(.registration, Examples.payload(.registration, ["name": .string("杭州西湖茶业股份有限公司")]),
                                 reporter: "samr", on: Fixture.day("2022-01-01"))
        ledger.add(.operatingStatus, Examples.payload(.operatingStatus), reporter: "samr", on: Fixture.day("2024-03-02"))
        let report = ledger.report(on: Fixture.today)
        #expect(report.basicInfo.current?.name == "杭州西湖茶业股份有限公司")
        #expect(report.basicInfo.source == renamed)
        #expect(report.basicInfo.history.count == 2)
        #expect(report.operatingStatus.current?.status == .abnormal)
        #expect(report.sources.count == 3)
    }

    @Test func correctionReplacesInTheCurrentViewAndStaysInHistory() throws {
        var (ledger, _, update) = Self.overdueFacility()
        let restated = Examples.payload(.facilityUpdated, ["balance": Fixture.money(390_000_000), "status": .string("active"),
                                                           "classification": .string("normal"), "overdue": nil])
        let correction = ledger.add(.correction, ["corrects": .string(update.hex), "reason": .string("逾期系误报"),
                                                  "payload": .object(restated)], on: Fixture.day("2024-05-01"))
        let report = ledger.report(on: Fixture.today)
        let facility = try #require(report.facilities.first)
        #expect(facility.balance == Money.cny(390_000_000))
        #expect(facility.status == .active)
        #expect(facility.overdue == nil)
        #expect(report.overdue.isEmpty)
        let stated = facility.history[1]
        #expect(stated.status == .corrected)
        #expect(stated.payload == .object(Examples.payload(.facilityUpdated)))
        #expect(stated.effective == .object(restated))
        #expect(stated.corrections.map(\.tx) == [correction])
        #expect(report.sources.contains(correction))
    }

    @Test func retractionWithdrawsAStatement() throws {
        var (ledger, _, update) = Self.overdueFacility()
        ledger.add(.correction, ["corrects": .string(update.hex), "reason": .string("重复报送"), "retract": .bool(true)],
                   on: Fixture.day("2024-05-01"))
        let facility = try #require(ledger.report(on: Fixture.today).facilities.first)
        #expect(facility.history[1].status == .retracted)
        #expect(facility.balance == nil)
        #expect(facility.status == .active)
        #expect(facility.maxOverdueDays == 0)
    }

    @Test func aCorrectionByAnotherReporterIsIgnored() throws {
        var (ledger, _, update) = Self.overdueFacility()
        ledger.add(.correction, ["corrects": .string(update.hex), "reason": .string("x"), "retract": .bool(true)],
                   reporter: "bank-b", on: Fixture.day("2024-05-01"))
        let facility = try #require(ledger.report(on: Fixture.today).facilities.first)
        #expect(facility.history[1].status == .asStated)
        #expect(facility.status == .overdue)
    }

    @Test(arguments: [(Int64(0), DisputeStatus.open), (1, .open), (20 * 86_400_000, .open), (20 * 86_400_000 + 1, .overdue)])
    func unresolvedDisputeFlagsAndTurnsOverdue(elapsedMs: Int64, expected: DisputeStatus) throws {
        var (ledger, _, update) = Self.overdueFacility()
        let filed = Fixture.noon(Fixture.day("2024-06-01"))
        let dispute = ledger.add(.dispute, ["disputes": .string(update.hex), "reason": .string("系统故障")], reporter: "bureau",
                                 on: Fixture.day("2024-06-01"), blockTimeMs: filed)
        let report = ReportAssembler.assemble(subject: Fixture.subject, entries: ledger.entries,
                                              asOf: ledger.asOf(ms: filed + UInt64(elapsedMs)), parameters: ReportParameters())
        let view = try #require(report.disputes.first)
        #expect(view.tx == dispute)
        #expect(view.deadline == filed + 20 * 86_400_000)
        #expect(view.status == expected)
        let facility = try #require(report.facilities.first)
        #expect(facility.disputed)
        #expect(facility.history[1].disputes.map(\.tx) == [dispute])
        #expect(facility.history[1].disputes.map(\.status) == [expected])
        #expect(facility.status == .overdue)
    }

    @Test func upheldDisputeRemovesTheStatementUntilRestated() throws {
        var (ledger, _, update) = Self.overdueFacility()
        let dispute = ledger.add(.dispute, ["disputes": .string(update.hex), "reason": .string("系统故障")], reporter: "bureau",
                                 on: Fixture.day("2024-06-01"))
        ledger.add(.disputeResolved, ["dispute": .string(dispute.hex), "outcome": .string("upheld"), "explanation": .string("属实")],
                   on: Fixture.day("2024-06-25"))
        var report = ledger.report(on: Fixture.today)
        var facility = try #require(report.facilities.first)
        #expect(facility.history[1].status == .removedByDispute)
        #expect(facility.status == .active)
        #expect(!facility.disputed)
        #expect(report.overdue.isEmpty)
        #expect(report.disputes.first?.status == .upheld)
        #expect(report.disputes.first?.resolution?.late == true)

        let restated = Examples.payload(.facilityUpdated, ["overdue": nil, "status": .string("active"), "classification": .string("normal")])
        ledger.add(.correction, ["corrects": .string(update.hex), "reason": .string("按异议结果更正"), "payload": .object(restated)],
                   on: Fixture.day("2024-06-28"))
        report = ledger.report(on: Fixture.today)
        facility = try #require(report.facilities.first)
        #expect(facility.history[1].status == .corrected)
        #expect(facility.balance == Money.cny(400_000_000))
    }

    @Test func rejectedDisputeLeavesTheStatement() throws {
        var (ledger, _, update) = Self.overdueFacility()
        let dispute = ledger.add(.dispute, ["disputes": .string(update.hex), "reason": .string("系统故障")], reporter: "bureau",
                                 on: Fixture.day("2024-06-01"))
        let resolution = ledger.add(.disputeResolved, ["dispute": .string(dispute.hex), "outcome": .string("rejected"),
                                                       "explanation": .string("逾期属实")], on: Fixture.day("2024-06-05"))
        let report = ledger.report(on: Fixture.today)
        let facility = try #require(report.facilities.first)
        #expect(facility.status == .overdue)
        #expect(!facility.disputed)
        #expect(report.disputes.first?.status == .rejected)
        #expect(report.disputes.first?.resolution?.late == false)
        #expect(report.sources.suffix(2) == [dispute, resolution])
    }

    @Test(arguments: [-1, 0, 1])
    func curedOverdueLeavesFiveYearsAfterItEnded(offset: Int) throws {
        var ledger = TestLedger()
        ledger.add(.facilityOpened, Examples.payload(.facilityOpened, ["openedOn": .string("2015-01-10"),
                                                                      "maturesOn": .string("2016-01-10")]), on: Fixture.day("2015-01-10"))
        ledger.add(.facilityUpdated, Examples.payload(.facilityUpdated, ["asOf": .string("2015-06-30")]), on: Fixture.day("2015-07-01"))
        ledger.add(.facilityUpdated, Examples.payload(.facilityUpdated, ["asOf": .string("2015-09-30"), "status": .string("active"),
                                                                        "classification": .string("normal"), "overdue": nil]),
                   on: Fixture.day("2015-10-01"))
        ledger.add(.facilityClosed, Examples.payload(.facilityClosed, ["closedOn": .string("2016-01-10")]), on: Fixture.day("2016-01-10"))
        let report = ledger.report(on: Fixture.day("2020-09-30").adding(days: offset))
        let facility = try #require(report.facilities.first)
        #expect(facility.status == .closed)
        if offset < 0 {
            #expect(report.overdue.count == 1)
            #expect(report.overdue.first?.visibleUntil == Fixture.day("2020-09-30"))
            #expect(facility.history.count == 4)
            #expect(facility.maxOverdueDays == 35)
        } else {
            #expect(report.overdue.isEmpty)
            #expect(facility.history.map(\.kind) == [.facilityOpened, .facilityUpdated, .facilityClosed])
            #expect(facility.worstClassification == .normal)
            #expect(facility.maxOverdueDays == 0)
            #expect(report.sources.count == 3)
        }
    }

    @Test(arguments: [-1, 0, 1])
    func writtenOffFacilityLeavesFiveYearsAfterClosing(offset: Int) {
        var ledger = TestLedger()
        ledger.add(.facilityOpened, Examples.payload(.facilityOpened, ["openedOn": .string("2015-01-10")]), on: Fixture.day("2015-01-10"))
        ledger.add(.facilityUpdated, Examples.payload(.facilityUpdated, [
            "asOf": .string("2015-12-31"), "status": .string("defaulted"), "classification": .string("loss"),
        ]), on: Fixture.day("2016-01-02"))
        ledger.add(.facilityClosed, Examples.payload(.facilityClosed, ["closedOn": .string("2016-03-01"), "reason": .string("writtenOff")]),
                   on: Fixture.day("2016-03-01"))
        let report = ledger.report(on: Fixture.day("2021-03-01").adding(days: offset))
        #expect(report.facilities.count == (offset < 0 ? 1 : 0))
        #expect(report.overdue.count == (offset < 0 ? 1 : 0))
        #expect(report.overdue.first?.closeReason == (offset < 0 ? .writtenOff : nil))
        #expect(report.sources.count == (offset < 0 ? 3 : 0))
    }

    @Test(arguments: [-1, 0, 1])
    func settledPublicRecordLeavesFiveYearsLaterEvenFromALeapDay(offset: Int) {
        var ledger = TestLedger()
        let record = Examples.payload(.publicRecord, ["decidedOn": .string("2019-08-01"), "settledOn": .string("2020-02-29")])
        ledger.add(.publicRecord, record, reporter: "court-registry", on: Fixture.day("2020-03-01"))
        let report = ledger.report(on: Fixture.day("2025-02-28").adding(days: offset))
        #expect(report.publicRecords.count == (offset < 0 ? 1 : 0))
        #expect(report.publicRecords.first?.visibleUntil == (offset < 0 ? Fixture.day("2025-02-28") : nil))
    }

    @Test func unsettledNegativeInformationNeverExpires() throws {
        var ledger = TestLedger()
        ledger.add(.publicRecord, Examples.payload(.publicRecord, ["decidedOn": .string("2005-01-01"), "status": .string("inForce"),
                                                                  "settledOn": nil]), reporter: "court", on: Fixture.day("2005-01-02"))
        ledger.add(.facilityOpened, Examples.payload(.facilityOpened, ["openedOn": .string("2005-01-10")]), on: Fixture.day("2005-01-10"))
        ledger.add(.facilityUpdated, Examples.payload(.facilityUpdated, ["asOf": .string("2006-01-01")]), on: Fixture.day("2006-01-02"))
        let report = ledger.report(on: Fixture.today)
        #expect(report.publicRecords.count == 1)
        #expect(report.publicRecords.first?.visibleUntil == nil)
        let run = try #require(report.overdue.first)
        #expect(run.endedOn == nil)
        #expect(run.startedOn == Fixture.day("2006-01-01"))
    }

    @Test func retentionFollowsTheParameter() {
        var ledger = TestLedger()
        ledger.add(.publicRecord, Examples.payload(.publicRecord), reporter: "court", on: Fixture.day("2024-02-01"))
        let short = ReportParameters(retentionYears: 1, disputeDeadlineDays: 20)
        #expect(ledger.report(on: Fixture.day("2025-01-14"), parameters: short).publicRecords.count == 1)
        #expect(ledger.report(on: Fixture.day("2025-01-15"), parameters: short).publicRecords.isEmpty)
    }
}

@Suite struct GuaranteeAndHistoryTests {
    @Test func guaranteeAppearsInBothEnterprisesReports() throws {
        var ledger = TestLedger()
        ledger.add(.registration, Examples.payload(.registration), reporter: "samr", on: Fixture.day("2020-01-01"))
        let issuance = ledger.add(.guaranteeIssued, Examples.payload(.guaranteeIssued), on: Fixture.day("2023-01-10"))
        let restated = Examples.payload(.guaranteeIssued, ["amount": Fixture.money(250_000_000)])
        let correction = ledger.add(.correction, ["corrects": .string(issuance.hex), "reason": .string("金额更正"),
                                                  "payload": .object(restated)], on: Fixture.day("2023-02-01"))
        let release = ledger.add(.guaranteeReleased, Examples.payload(.guaranteeReleased, ["issuance": .string(issuance.hex)]),
                                 on: Fixture.day("2024-06-01"))

        let borrower = ledger.report(Fixture.subject, on: Fixture.today)
        #expect(borrower.guarantees.given.isEmpty)
        let received = try #require(borrower.guarantees.received.first)
        #expect(received.guarantor == Fixture.other)
        #expect(received.current?.amount == Money.cny(250_000_000))
        #expect(received.released?.reason == .obligationSettled)

        let guarantor = ledger.report(Fixture.other, on: Fixture.today)
        #expect(guarantor.guarantees.received.isEmpty)
        let given = try #require(guarantor.guarantees.given.first)
        #expect(given.borrower == Fixture.subject)
        #expect(given.current?.amount == Money.cny(250_000_000))
        #expect(given.released != nil)
        #expect(guarantor.basicInfo.current == nil)
        #expect(guarantor.sources == [issuance, correction, release])
        #expect(ledger.report(Fixture.third, on: Fixture.today).sources.isEmpty)
    }

    @Test func historyFollowsLedgerOrderWhateverTheInputOrder() throws {
        var ledger = TestLedger()
        ledger.add(.facilityOpened, Examples.payload(.facilityOpened), on: Fixture.day("2023-01-10"))
        for (month, days) in [("2023-03-31", 5), ("2023-06-30", 40), ("2023-09-30", 70)] {
            ledger.add(.facilityUpdated, Examples.payload(.facilityUpdated, [
                "asOf": .string(month), "overdue": .object(["days": .integer(Int64(days)), "amount": Fixture.money(1_000)]),
            ]), on: Day(month)!.adding(days: 1))
        }
        let late = ledger.add(.facilityClosed, Examples.payload(.facilityClosed), on: Fixture.day("2024-06-01"))
        let shuffled = ledger.entries.reversed() + ledger.entries.prefix(2)
        let report = ReportAssembler.assemble(subject: Fixture.subject, entries: Array(shuffled),
                                              asOf: ledger.asOf(Fixture.today, height: 4), parameters: ReportParameters())
        let facility = try #require(report.facilities.first)
        #expect(facility.history.map(\.height) == [1, 2, 3, 4])
        #expect(facility.status == .overdue)
        #expect(facility.maxOverdueDays == 70)
        #expect(report.sources == ledger.entries.prefix(4).map(\.id))
        #expect(!report.sources.contains(late))
        let run = try #require(report.overdue.first)
        #expect(run.maxOverdueDays == 70)
        #expect(run.sources.count == 3)
    }

    @Test func queryRecordsAreListed() throws {
        var ledger = TestLedger()
        let consent = ledger.add(.consentGranted, Examples.payload(.consentGranted), on: Fixture.day("2024-06-01"))
        let query = ledger.add(.queryRecord, Examples.payload(.queryRecord, ["consent": .string(consent.hex)]), reporter: "node-bank",
                               on: Fixture.day("2024-06-02"))
        ledger.add(.queryRecord, Examples.payload(.queryRecord, ["institution": .string("nfra"), "purpose": .string("supervision"),
                                                                "consent": nil]), reporter: "nfra", on: Fixture.day("2024-06-03"))
        let report = ledger.report(on: Fixture.today)
        #expect(report.queryRecords.count == 2)
        let first = try #require(report.queryRecords.first)
        #expect(first.tx == query)
        #expect(first.institution == "bank-a")
        #expect(first.servedBy == "node-bank")
        #expect(first.consent == consent)
        #expect(report.queryRecords.last?.purpose == .supervision)
        #expect(!report.sources.contains(consent))
    }
}
