import XinlianCore
import XinlianCrypto

/// What happened to a generated facility.
struct FacilityStory {
    enum Scenario { case clean, cured, defaulted }

    var id: String
    var lender: InstitutionID
    var opened: Day
    var openingKey: Int
    var updateKeys: [Int] = []
    var closed: Day?
    var writtenOff = false
}

extension Story {
    @discardableResult
    mutating func facility(_ index: Int, opened: Day, lender: InstitutionID, scenario forced: FacilityStory.Scenario?) -> FacilityStory {
        let roll = random.below(100)
        let scenario = forced ?? (roll < 55 ? .clean : roll < 80 ? .cured : .defaulted)
        let id = "LN-\(opened.year)-\(number)-\(index)"
        let amount = random.range(50...5_000) * 1_000_000
        let type = random.pick(["loan", "loan", "creditLine", "acceptanceBill", "factoring", "financialLease", "tradeFinance"])
        let key = emit(.facilityOpened, opened, lender, .member, [
            "facilityId": .string(id), "type": .string(type), "amount": Self.money(amount),
            "openedOn": Self.day(opened), "maturesOn": Self.day(opened.adding(days: 365 * random.range(1...3))),
            "security": .string(index == 0 ? "mixed" : random.pick(["unsecured", "collateral", "guarantee"])),
            "classification": .string("normal"), "purpose": .string("流动资金周转"),
        ])
        var story = FacilityStory(id: id, lender: lender, opened: opened, openingKey: key)
        let states = Self.states(scenario, updates: random.range(2...4))
        var balance = amount
        for (step, state) in states.enumerated() {
            let asOf = opened.adding(days: 90 * (step + 1))
            balance = max(0, balance - amount / (states.count + 1))
            var payload: [String: JSONValue] = [
                "facilityId": .string(id), "asOf": Self.day(asOf), "balance": Self.money(balance),
                "classification": .string(state.classification), "status": .string(state.status),
            ]
            if state.overdueDays > 0 {
                payload["overdue"] = .object(["days": .integer(Int64(state.overdueDays)),
                                              "amount": Self.money(max(1, amount / 10))])
            }
            let refs: [(field: String, key: Int)] = random.chance(50) ? [("opening", key)] : []
            story.updateKeys.append(emit(.facilityUpdated, asOf, lender, .member, payload, refs: refs))
        }
        let end = opened.adding(days: 90 * (states.count + 1))
        if scenario == .defaulted || full || random.chance(70) {
            story.closed = end
            story.writtenOff = scenario == .defaulted
            emit(.facilityClosed, end, lender, .member, [
                "facilityId": .string(id), "closedOn": Self.day(end), "reason": .string(story.writtenOff ? "writtenOff" : "repaid"),
            ], refs: [("opening", key)])
        }
        return story
    }

    static func states(_ scenario: FacilityStory.Scenario, updates: Int)
        -> [(status: String, classification: String, overdueDays: Int)] {
        switch scenario {
        case .clean:
            return Array(repeating: ("active", "normal", 0), count: updates)
        case .cured:
            return [("overdue", "specialMention", 45), ("overdue", "substandard", 95), ("active", "normal", 0)]
        case .defaulted:
            return [("overdue", "substandard", 92), ("defaulted", "doubtful", 183), ("defaulted", "loss", 365)]
        }
    }
}
