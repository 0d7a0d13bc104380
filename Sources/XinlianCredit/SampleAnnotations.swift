import XinlianCore
import XinlianCrypto

extension Story {
    static let collateralTypes = ["intellectualProperty", "livestock", "realEstate", "equipment", "receivables", "landUseRight"]

    mutating func security(_ facility: FacilityStory, lender: InstitutionID) {
        let types = full ? ["intellectualProperty", "livestock"] : [Self.collateralTypes[number % Self.collateralTypes.count]]
        for (index, type) in types.enumerated() {
            var payload: [String: JSONValue] = [
                "collateralId": .string("CL-\(number)-\(index)"), "type": .string(type),
                "interest": .string(type == "intellectualProperty" || type == "receivables" ? "pledge" : "mortgage"),
                "description": .string(Self.collateralDescription(type)), "value": Self.money(random.range(100...3_000) * 1_000_000),
                "valuedOn": Self.day(facility.opened.adding(days: -7)), "registeredOn": Self.day(facility.opened),
                "registrationNumber": .string("ZD\(facility.opened.year)\(100_000 + random.below(900_000))"),
                "securesFacilityIds": .array([.string(facility.id)]),
            ]
            if type == "intellectualProperty" {
                payload["intellectualProperty"] = .object([
                    "kind": .string("patent"), "registrationNumber": .string("ZL\(facility.opened.year - 2)1\(random.range(1_000_000...9_999_999)).X"),
                    "expiresOn": Self.day(facility.opened.adding(years: 12)),
                ])
            }
            if type == "livestock" {
                payload["livestock"] = .object([
                    "species": .string(random.pick(["cattle", "dairyCow", "sheep", "yak"])), "headCount": .integer(Int64(random.range(50...2_000))),
                    "location": .string("内蒙古包头市达尔罕茂明安联合旗牧场"), "tagRange": .string("NM15-\(random.range(10_000...90_000))-\(random.range(1...9))"),
                ])
            }
            let key = emit(.collateralRegistered, facility.opened, lender, .member, payload)
            if let closed = facility.closed {
                emit(.collateralReleased, closed, lender, .member, [
                    "collateralId": .string("CL-\(number)-\(index)"), "releasedOn": Self.day(closed),
                    "reason": .string(facility.writtenOff ? "enforced" : "obligationSettled"),
                ], refs: [("registration", key)])
            }
        }
        guarantee(facility, lender: lender)
    }

    static func collateralDescription(_ type: String) -> String {
        switch type {
        case "intellectualProperty": "发明专利权：一种茶叶低温萃取装置"
        case "livestock": "活体牲畜抵押（耳标登记）"
        case "realEstate": "工业厂房及土地"
        case "equipment": "数控机床生产线"
        case "receivables": "对核心企业应收账款"
        default: "国有建设用地使用权"
        }
    }

    mutating func guarantee(_ facility: FacilityStory, lender: InstitutionID) {
        guard let guarantor else { return }
        let id = "GT-\(number)-0"
        let key = emit(.guaranteeIssued, facility.opened, lender, .member, [
            "guaranteeId": .string(id), "guarantor": .string(guarantor.code),
            "liability": .string(random.pick(["jointAndSeveral", "general"])), "amount": Self.money(random.range(50...2_000) * 1_000_000),
            "issuedOn": Self.day(facility.opened), "expiresOn": Self.day(facility.opened.adding(years: 3)),
            "securesFacilityId": .string(facility.id),
        ])
        if let closed = facility.closed {
            emit(.guaranteeReleased, closed, lender, .member, [
                "guaranteeId": .string(id), "releasedOn": Self.day(closed),
                "reason": .string(facility.writtenOff ? "guarantorPaid" : "obligationSettled"),
            ], refs: [("issuance", key)])
        }
    }

    mutating func publicRecord(_ day: Day) -> (key: Int, reporter: InstitutionID)? {
        guard full || random.chance(35) else { return nil }
        let byRegistry = random.chance(50)
        let reporter = byRegistry ? Self.registry : Self.regulator
        let role: InstitutionRole = byRegistry ? .registry : .regulator
        let type = full ? "enforcement" : random.pick(["courtJudgment", "enforcement", "taxArrears", "administrativePenalty"])
        var payload: [String: JSONValue] = [
            "recordId": .string("(\(day.year))浙0106执\(random.range(100...9_999))号"), "type": .string(type),
            "authority": .string(byRegistry ? "杭州市西湖区人民法院" : "国家金融监督管理总局浙江监管局"),
            "decidedOn": Self.day(day), "amount": Self.money(random.range(1...500) * 100_000),
            "status": .string("inForce"), "summary": .string("未按期履行生效判决确定的给付义务"),
        ]
        let key = emit(.publicRecord, day, reporter, role, payload)
        if full || random.chance(50) {
            let settled = day.adding(days: 120)
            payload["status"] = .string("satisfied")
            payload["settledOn"] = Self.day(settled)
            emit(.publicRecord, settled, reporter, role, payload)
        }
        return (key, reporter)
    }

    /// Corrections, disputes and their outcomes.
    mutating func annotations(_ facility: FacilityStory, record: (key: Int, reporter: InstitutionID)?) {
        guard let update = facility.updateKeys.first, var restated = payloads[update],
              case .object(let balance)? = restated["balance"], case .integer(let minor)? = balance["minor"] else { return }
        let day = facility.opened.adding(days: 100)
        if full || random.chance(30) {
            restated["balance"] = Self.money(Int(minor) + 12_345_600)
            emit(.correction, day, facility.lender, .member, [
                "reason": .string("余额录入错误，更正为核算系统数据"), "payload": .object(restated),
            ], refs: [("corrects", update)])
        }
        if full || random.chance(25) {
            let dispute = emit(.dispute, day.adding(days: 5), Self.bureau, .bureau, [
                "reason": .string("企业称该期逾期系银行扣款系统故障所致"),
            ], refs: [("disputes", update)])
            if full || random.chance(60) {
                emit(.disputeResolved, day.adding(days: 15), facility.lender, .member, [
                    "outcome": .string(full || random.chance(50) ? "rejected" : "upheld"),
                    "explanation": .string("经核查扣款记录，逾期属实"),
                ], refs: [("dispute", dispute)])
            }
        }
        if full, let record {
            emit(.dispute, Self.epoch.adding(days: 700), Self.bureau, .bureau, [
                "reason": .string("企业称判决已履行完毕"),
            ], refs: [("disputes", record.key)])
        }
        if full, let last = facility.updateKeys.last {
            emit(.correction, day.adding(days: 300), facility.lender, .member, [
                "reason": .string("重复报送，撤回"), "retract": .bool(true),
            ], refs: [("corrects", last)])
        }
    }

    mutating func consents(_ day: Day) {
        guard full || random.chance(70) else { return }
        let grantee = random.pick(Self.members)
        let purpose = random.pick(["loanApplication", "creditLineReview", "guaranteeReview"])
        let grant = emit(.consentGranted, day, grantee, .member, [
            "purpose": .string(purpose), "grantedOn": Self.day(day), "expiresOn": Self.day(day.adding(years: 1)),
            "evidence": .string(Self.placeholder(0xC0_0000 + number)),
        ])
        // The requester records its own query (a query record's institution is its reporter).
        emit(.queryRecord, day.adding(days: 2), grantee, .member, [
            "institution": .string(grantee.value), "purpose": .string(purpose), "reportHeight": .integer(Int64(nextKey)),
        ], refs: [("consent", grant)])
        guard full || random.chance(20) else { return }
        let second = emit(.consentGranted, day.adding(days: 30), grantee, .member, [
            "purpose": .string("postLoanManagement"), "grantedOn": Self.day(day.adding(days: 30)),
            "expiresOn": Self.day(day.adding(years: 2)), "evidence": .string(Self.placeholder(0xC1_0000 + number)),
        ])
        emit(.consentRevoked, day.adding(days: 90), grantee, .member, [
            "revokedOn": Self.day(day.adding(days: 90)), "reason": .string("企业撤回授权"),
        ], refs: [("consent", second)])
        emit(.queryRecord, day.adding(days: 95), Self.regulator, .regulator, [
            "institution": .string(Self.regulator.value), "purpose": .string("supervision"), "reportHeight": .integer(Int64(nextKey)),
        ])
    }
}
