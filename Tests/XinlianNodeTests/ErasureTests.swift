import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import XinlianAudit
import XinlianConsensus
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianNode
import XinlianStorage

/// Issue 9: natural persons' fields are kept off the signed bytes and erased after their retention period or on a
/// regulator's order; the chain, the audit and report proofs still verify, and no byte of the erased data stays in
/// the data directory.
@Suite("Erasable personal data")
struct ErasureTests {
    static let proprietor = try! USCC.withCheckCharacter("92330106MA2KQ7788")
    static let holder = "王小明"
    static let shopName = "西湖区王小明五金店"
    static let shopAddress = "浙江省杭州市西湖区文一路88号"

    static func soleProprietorship(_ node: ReportNode) throws -> Transaction {
        try node.sign(.registration, [
            "name": .string(shopName), "legalForm": .string("soleProprietorship"), "legalRepresentative": .string(holder),
            "registeredCapital": .object(["minor": .integer(10_000_000), "currency": .string("CNY")]),
            "establishedOn": .string("2018-03-01"), "registrationAuthority": .string("杭州市西湖区市场监督管理局"),
            "address": .string(shopAddress), "industry": .string("F5274"),
        ], by: "registry", subject: proprietor)
    }

    static func report(_ node: ReportNode) async throws -> ReportResponse {
        try await VerifiableReportTests.fetch(node, proprietor)
    }

    /// Every file under `directory`, read whole; true when one holds `needle`'s UTF-8 bytes.
    static func contains(_ directory: String, _ needle: String) throws -> [String] {
        let bytes = Data(needle.utf8)
        var found: [String] = []
        let files = FileManager.default.enumerator(atPath: directory)
        while let name = files?.nextObject() as? String {
            let path = directory + "/" + name
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            if let data = FileManager.default.contents(atPath: path), data.range(of: bytes) != nil { found.append(name) }
        }
        return found
    }

    @Test func personalFieldsAreOffTheSignedBytes() throws {
        let node = try ReportNode()
        defer { node.remove() }
        let registration = try Self.soleProprietorship(node)
        let signed = String(decoding: registration.body.payload, as: UTF8.self)
        for field in [Self.holder, Self.shopName, Self.shopAddress] { #expect(!signed.contains(field)) }
        let personal = try #require(registration.personal)
        #expect(signed.contains(personal.commitment(node.consortium.suite).hex))
        let fields = String(decoding: personal.fields, as: UTF8.self)
        for field in [Self.holder, Self.shopName, Self.shopAddress] { #expect(fields.contains(field)) }
        #expect(!fields.contains("registeredCapital"))
    }

    @Test func everyWayInRequiresMatchingPersonalData() throws {
        let node = try ReportNode()
        defer { node.remove() }
        let suite = node.consortium.suite
        let good = try Self.soleProprietorship(node)
        func code(_ transaction: Transaction) -> String? {
            do {
                try CreditRules.check(transaction: transaction, roles: [.registry], referenced: { _ in nil }, origin: .node, suite: suite)
                return nil
            } catch { return error.code }
        }
        #expect(code(good) == nil)
        // Gossiped or proposed without its personal data: refused as the API refuses it.
        #expect(code(good.withoutPersonalData) == "personal_data_missing")
        // Another salt, or other fields, do not match the signed commitment.
        var forged = good
        forged.personal = PersonalData(salt: Array(repeating: 9, count: 32), fields: try #require(good.personal).fields)
        #expect(code(forged) == "personal_data_mismatch")
        // A representative's name in the signed payload is refused.
        let body = TransactionBody(chainID: node.consortium.chainID, kind: .registration, reporter: "registry",
                                   subject: Self.proprietor, timeMs: node.clock.ms, nonce: 1,
                                   payload: try Payload.canonicalize(.object([
                                       "name": .string("某公司"), "legalForm": .string("limitedLiabilityCompany"),
                                       "legalRepresentative": .string(Self.holder),
                                       "registeredCapital": .object(["minor": .integer(1), "currency": .string("CNY")]),
                                       "establishedOn": .string("2018-03-01"), "registrationAuthority": .string("局"),
                                       "address": .string("路"), "industry": .string("F5274"),
                                   ])))
        let inClear = try Transaction.sign(body, with: try #require(node.keys["registry"]))
        #expect(code(inClear) == "personal_data_in_clear")
        // Personal data smuggling a non-personal field past the signature is refused.
        var smuggled = body
        let padded = PersonalData(salt: Array(repeating: 1, count: 32),
                                  fields: try Payload.canonicalize(.object(["legalRepresentative": .string(Self.holder),
                                                                            "industry": .string("K7010")])))
        smuggled.payload = try Payload.canonicalize(.object([
            "name": .string("某公司"), "legalForm": .string("limitedLiabilityCompany"),
            "registeredCapital": .object(["minor": .integer(1), "currency": .string("CNY")]),
            "establishedOn": .string("2018-03-01"), "registrationAuthority": .string("局"),
            "address": .string("路"), "personal": .string(padded.commitment(suite).hex),
        ]))
        #expect(code(try Transaction.sign(smuggled, with: try #require(node.keys["registry"]), personal: padded)) == "personal_data_mismatch")
        // A certified block is checked without personal data this node does not hold.
        #expect(throws: Never.self) {
            try CreditRules.check(transaction: good.withoutPersonalData, roles: [.registry], referenced: { _ in nil },
                                  origin: .node, suite: suite, personalRequired: false)
        }
    }

    @Test func personalDataThatDoesNotMatchIsNeitherKeptNorPassedOn() throws {
        let node = try ReportNode()
        defer { node.remove() }
        let suite = node.consortium.suite
        let registration = try Self.soleProprietorship(node)
        #expect(registration.keepingMatchingPersonalData(suite).personal == registration.personal)
        // A sync peer's junk attached to a statement that commits to nothing, or to other data, is dropped.
        let junk = PersonalData(salt: Array(repeating: 7, count: 32), fields: Array(#"{"legalRepresentative":"诽谤"}"#.utf8))
        var forged = registration
        forged.personal = junk
        #expect(forged.keepingMatchingPersonalData(suite).personal == nil)
        let consent = try node.consent()
        let padded = Transaction(body: consent.body, signature: consent.signature, personal: junk)
        #expect(padded.keepingMatchingPersonalData(suite).personal == nil)
    }

    @Test func personalDataTravelsWithProposalsGossipAndSync() throws {
        let node = try ReportNode()
        defer { node.remove() }
        let registration = try Self.soleProprietorship(node)
        let gossip = try WireCodec.decode(WireCodec.encode(.transactions([registration])))
        guard case .transactions(let carried) = gossip else { Issue.record("not a transactions frame"); return }
        #expect(carried.first?.personal == registration.personal)
        // A frame naming a position past its transactions is refused.
        var bytes = WireCodec.encode(.transactions([registration]))
        let personalBytes = try #require(registration.personal).canonicalBytes
        let indexAt = bytes.count - personalBytes.count - 4
        bytes[indexAt + 3] = 5
        #expect(throws: WireError.self) { try WireCodec.decode(bytes) }
    }

    @Test func anErasureOrderErasesEverywhereAndEverythingStillVerifies() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        try await node.commit([try Self.soleProprietorship(node)])
        let before = try await Self.report(node)
        #expect(before.report.basicInfo.current?.legalRepresentative == Self.holder)
        #expect(before.report.basicInfo.current?.name == Self.shopName)
        #expect(before.report.basicInfo.personalData == PersonalDataStatus(state: .present))
        if let proof = before.proof { #expect(VerifiableReportTests.failure(before.report, proof, node.consortium) == nil) }
        #expect(try await node.engine.personalDataCounts().held == 1, "held before the order")
        #expect(try Self.contains(node.directory + "/data", Self.holder).isEmpty, "held in clear: not encrypted at rest")
        // An export carries it beside the blocks; the audit checks it against the signed commitment.
        let before1 = node.directory + "/before.xlx"
        let exported = try ExportFile.write(dataDirectory: node.directory + "/data", consortium: node.consortium, to: before1)
        #expect(try PersonalExport.write(dataDirectory: node.directory + "/data", consortium: node.consortium,
                                         key: try PersonalDataKey.load(path: node.directory + "/personal.key"),
                                         throughHeight: exported.lastHeight, to: PersonalExport.path(for: before1)) == 1)
        #expect(try PersonalExport.verify(PersonalExport.path(for: before1), exportFile: before1, consortium: node.consortium) == 1)
        var doctored = try JSONDecoder().decode(PersonalExport.self,
                                                from: Data(contentsOf: URL(fileURLWithPath: PersonalExport.path(for: before1))))
        let forgedData = PersonalData(salt: Array(repeating: 1, count: 32), fields: Array(#"{"legalRepresentative":"李四"}"#.utf8))
        doctored.entries[0].data = Data(forgedData.canonicalBytes).base64EncodedString()
        try JSONEncoder().encode(doctored).write(to: URL(fileURLWithPath: node.directory + "/doctored.json"))
        #expect(throws: AuditFault.self) {
            try PersonalExport.verify(node.directory + "/doctored.json", exportFile: before1, consortium: node.consortium)
        }

        // A member may not order an erasure; a regulator may.
        let byBank = try node.sign(.erasureOrder, ["reason": .string("客户申请")], by: "bank-a", subject: Self.proprietor)
        #expect(try await node.engine.admit([byBank]).first.map { if case .rejected = $0.state { true } else { false } } == true)
        let order = try node.sign(.erasureOrder, ["reason": .string("个体工商户注销满五年"), "legalBasis": .string("PIPL Art. 47")],
                                  by: "regulator", subject: Self.proprietor)
        let orderID = try await node.commit([order])[0]

        let after = try await Self.report(node)
        let current = try #require(after.report.basicInfo.current)
        #expect(current.legalRepresentative == nil)
        #expect(current.name == nil)
        #expect(current.address == nil)
        #expect(current.registrationAuthority == "杭州市西湖区市场监督管理局", "the rest of the statement stays")
        let erased = try #require(after.report.basicInfo.personalData)
        #expect(erased.state == .erased)
        #expect(erased.order == orderID)
        #expect(erased.erasedOn == node.today)
        let proof = try #require(after.proof)
        #expect(VerifiableReportTests.failure(after.report, proof, node.consortium) == nil, "the report still verifies")
        #expect(!String(decoding: try JSONEncoder().encode(after), as: UTF8.self).contains(Self.holder))

        // A new export holds none of it; the old personal data does not pass against the chain that erased it.
        let after1 = node.directory + "/after.xlx"
        let exportedAfter = try ExportFile.write(dataDirectory: node.directory + "/data", consortium: node.consortium, to: after1)
        #expect(try PersonalExport.write(dataDirectory: node.directory + "/data", consortium: node.consortium,
                                         key: try PersonalDataKey.load(path: node.directory + "/personal.key"),
                                         throughHeight: exportedAfter.lastHeight, to: PersonalExport.path(for: after1)) == 0)
        for file in [after1, PersonalExport.path(for: after1)] {
            #expect(FileManager.default.contents(atPath: file)?.range(of: Data(Self.holder.utf8)) == nil, "\(file)")
        }
        try FileManager.default.copyItem(atPath: PersonalExport.path(for: before1), toPath: node.directory + "/stale.json")
        let stale = try JSONDecoder().decode(PersonalExport.self, from: Data(contentsOf: URL(fileURLWithPath: node.directory + "/stale.json")))
        var restamped = stale
        restamped.throughHeight = exportedAfter.lastHeight
        try JSONEncoder().encode(restamped).write(to: URL(fileURLWithPath: node.directory + "/stale.json"))
        #expect(throws: AuditFault.self) {
            try PersonalExport.verify(node.directory + "/stale.json", exportFile: after1, consortium: node.consortium)
        }
        for file in [before1, after1, PersonalExport.path(for: before1), PersonalExport.path(for: after1),
                     node.directory + "/doctored.json", node.directory + "/stale.json"] {
            try? FileManager.default.removeItem(atPath: file)
        }

        // The audit still passes, the encrypted row is gone, and no byte of the erased data is in the data directory.
        #expect(try await node.engine.personalDataCounts().held == 0)
        let audit = try AuditVerifier.verify(dataDirectory: node.directory + "/data", consortium: node.consortium)
        #expect(audit.height == (await node.engine.height))
        for text in [Self.holder, Self.shopName, Self.shopAddress] {
            #expect(try Self.contains(node.directory + "/data", text).isEmpty, "\(text) left on disk")
        }
    }

    @Test func personalDataIsErasedWhenItsRetentionEnds() async throws {
        let node = try ReportNode(personalDataRetentionDays: 30)
        defer { node.remove() }
        try await node.commit([try Self.soleProprietorship(node)])
        #expect(try await Self.report(node).report.basicInfo.current?.legalRepresentative == Self.holder)
        let committed = node.clock.ms
        // Thirty-one days later the next block erases it on every node (the rule is the chain's, not a clock's).
        node.clock.advance(days: 31)
        try await node.commit([try node.registration()])
        let after = try await Self.report(node)
        #expect(after.report.basicInfo.current?.legalRepresentative == nil)
        #expect(after.report.basicInfo.personalData?.state == .erased)
        #expect(after.report.basicInfo.personalData?.erasedOn == Day(ms: committed + 30 * 86_400_000))
        let proof = try #require(after.proof)
        #expect(VerifiableReportTests.failure(after.report, proof, node.consortium) == nil)
        #expect(try Self.contains(node.directory + "/data", Self.holder).isEmpty)
    }
}
