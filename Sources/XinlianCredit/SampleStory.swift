import XinlianCore
import XinlianCrypto

/// One enterprise's generated history.
struct Story {
    let subject: USCC
    let guarantor: USCC?
    let number: Int
    var random: SplitMix64
    var events: [SampleEvent] = []
    var nextKey: Int
    var payloads: [Int: [String: JSONValue]] = [:]

    static let members: [InstitutionID] = ["icbc-zhejiang", "ccb-hangzhou", "nbcb", "tailong-bank", "zj-leasing"]
    static let registry: InstitutionID = "samr-zhejiang"
    static let regulator: InstitutionID = "nfra-zhejiang"
    static let bureau: InstitutionID = "pboc-crc"
    /// 2019-01-01.
    static let epoch = Day(daysSinceEpoch: 17_897)

    /// The first enterprise's story takes every branch, so every kind appears.
    var full: Bool { number == 0 }

    init(subject: USCC, guarantor: USCC?, number: Int, firstKey: Int, random: SplitMix64) {
        self.subject = subject
        self.guarantor = guarantor
        self.number = number
        self.nextKey = firstKey
        self.random = random
    }

    @discardableResult
    mutating func emit(_ kind: TransactionKind, _ day: Day, _ reporter: InstitutionID, _ role: InstitutionRole,
                       _ payload: [String: JSONValue], refs: [(field: String, key: Int)] = []) -> Int {
        let key = nextKey
        nextKey += 1
        var members = payload
        for ref in refs { members[ref.field] = .string(Self.placeholder(ref.key)) }
        let timeMs = UInt64(max(0, day.startMs + 9 * 3_600_000 + Int64(min(key, 39_999)) * 1_000))
        events.append(SampleEvent(key: key, kind: kind, subject: subject, payload: .object(members), role: role,
                                  reporter: reporter, timeMs: timeMs, references: refs))
        payloads[key] = payload
        return key
    }

    static func placeholder(_ key: Int) -> String {
        let digits = String(key, radix: 16)
        return String(repeating: "0", count: 64 - digits.count) + digits
    }

    static func money(_ minor: Int) -> JSONValue { .object(["minor": .integer(Int64(minor)), "currency": .string("CNY")]) }
    static func day(_ day: Day) -> JSONValue { .string(day.description) }

    mutating func tell() {
        let base = Self.epoch.adding(days: random.below(365))
        registration(base)
        let lender = random.pick(Self.members)
        let first = facility(0, opened: base.adding(days: 20), lender: lender, scenario: full ? .cured : nil)
        let count = full ? 2 : random.range(1...3)
        for index in 1..<max(1, count) {
            facility(index, opened: base.adding(days: 20 + 45 * index), lender: random.pick(Self.members),
                     scenario: full ? .defaulted : nil)
        }
        security(first, lender: lender)
        let record = publicRecord(base.adding(days: 300))
        annotations(first, record: record)
        consents(base.adding(days: 10))
    }

    mutating func registration(_ base: Day) {
        let established = base.adding(days: -random.range(400...7_000))
        let names = ["西湖茶业", "安吉竹木", "宁波港通物流", "包头草原牧业", "温州正泰电气配件", "义乌小商品贸易", "嘉兴纺织", "台州汽配"]
        let forms = ["limitedLiabilityCompany", "jointStockCompany", "farmersCooperative", "partnership"]
        let industries = ["A0311", "C1762", "G5431", "C3821", "F5191", "C3670", "A0111"]
        emit(.registration, base, Self.registry, .registry, [
            "name": .string("\(random.pick(names))有限公司\(number)"), "legalForm": .string(random.pick(forms)),
            "legalRepresentative": .string(random.pick(["张伟", "王芳", "李强", "刘洋", "陈静"])),
            "registeredCapital": Self.money(random.range(10...5_000) * 1_000_000),
            "establishedOn": Self.day(established), "registrationAuthority": .string("杭州市市场监督管理局"),
            "address": .string("浙江省杭州市西湖区文三路\(random.range(1...999))号"), "industry": .string(random.pick(industries)),
        ])
        emit(.operatingStatus, base.adding(days: 1), Self.registry, .registry,
             ["status": .string("operating"), "effectiveOn": Self.day(established)])
        if full || random.chance(10) {
            emit(.operatingStatus, base.adding(days: 200), Self.registry, .registry, [
                "status": .string("abnormal"), "effectiveOn": Self.day(base.adding(days: 200)),
                "reason": .string("未按规定期限公示年度报告"),
            ])
        }
    }
}
