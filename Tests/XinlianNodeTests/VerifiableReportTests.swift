import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianNode

@Suite("Verifiable reports")
struct VerifiableReportTests {
    /// A borrower with a facility, a guarantee by the guarantor, a release and a correction, over several blocks.
    static func ledger(_ node: ReportNode) async throws {
        try await node.commit([try node.registration(), try node.registration(ReportNode.guarantor, name: "担保公司")])
        let opened = try node.sign(.facilityOpened, [
            "facilityId": .string("LN-1"), "type": .string("loan"),
            "amount": .object(["minor": .integer(500_000_000), "currency": .string("CNY")]),
            "openedOn": .string("2025-01-10"), "maturesOn": .string("2027-01-10"), "security": .string("guarantee"),
            "classification": .string("normal"),
        ], by: "bank-a")
        let issued = try node.sign(.guaranteeIssued, [
            "guaranteeId": .string("GT-1"), "guarantor": .string(ReportNode.guarantor.code),
            "liability": .string("jointAndSeveral"), "amount": .object(["minor": .integer(200_000_000), "currency": .string("CNY")]),
            "issuedOn": .string("2025-01-10"), "expiresOn": .string("2027-01-10"),
        ], by: "bank-a")
        let ids = try await node.commit([opened, issued])
        try await node.commit([
            try node.sign(.facilityUpdated, [
                "facilityId": .string("LN-1"), "opening": .string(ids[0].hex), "asOf": .string("2025-06-30"),
                "balance": .object(["minor": .integer(400_000_000), "currency": .string("CNY")]),
                "classification": .string("substandard"), "status": .string("overdue"),
                "overdue": .object(["days": .integer(40), "amount": .object(["minor": .integer(1_000_000), "currency": .string("CNY")])]),
            ], by: "bank-a"),
            try node.sign(.dispute, ["disputes": .string(ids[1].hex), "reason": .string("担保期限有误")], by: "registry"),
        ])
    }

    static func fetch(_ node: ReportNode, _ subject: USCC) async throws -> ReportResponse {
        let app = Application(router: node.api.router())
        let query = try await node.query(.supervision, consent: nil, by: "regulator", subject: subject)
        return try await app.test(.router) { client in
            let response = try await reportRequest(client, query, purpose: "supervision", subject: subject, extra: "&proof=true")
            try #require(response.status == .ok)
            return try decode(ReportResponse.self, response.body)
        }
    }

    static func failure(_ report: CreditReport, _ proof: ReportProof, _ consortium: Consortium) -> String? {
        do {
            try ReportVerifier.verify(report, proof: proof, consortium: consortium)
            return nil
        } catch {
            return error.code
        }
    }

    @Test func honestReportsVerify() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        try await Self.ledger(node)
        let absent = try USCC.withCheckCharacter("91150202MA0CD9876")
        for subject in [ReportNode.borrower, ReportNode.guarantor, absent] {
            let served = try await Self.fetch(node, subject)
            let proof = try #require(served.proof)
            #expect(Self.failure(served.report, proof, node.consortium) == nil, "\(subject)")
        }
        let guarantor = try await Self.fetch(node, ReportNode.guarantor)
        #expect(guarantor.proof?.counterparty.count == 2)
        #expect(guarantor.report.guarantees.given.count == 1)
        await node.engine.shutdown()
    }

    @Test func tamperedReportsFail() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        try await Self.ledger(node)
        let served = try await Self.fetch(node, ReportNode.borrower)
        let report = served.report
        let proof = try #require(served.proof)
        let consortium = node.consortium
        #expect(proof.transactions.count == 5)

        var dropped = proof
        dropped.transactions.remove(at: 1)
        #expect(Self.failure(report, dropped, consortium) == "head_mismatch")

        // A transaction re-signed by its own reporter with another payload: a valid signature, but not the committed one.
        var altered = proof
        let original = try #require(Data(base64Encoded: proof.transactions[1].transaction))
        let transaction = try Transaction(canonicalBytes: Array(original), limit: Limits.transactionBytes)
        var body = transaction.body
        body.nonce &+= 1
        let resigned = try Transaction.sign(body, with: try #require(node.keys[body.reporter]))
        altered.transactions[1].transaction = Data(resigned.canonicalBytes).base64EncodedString()
        #expect(Self.failure(report, altered, consortium) == "bad_inclusion")

        var alteredReport = report
        alteredReport.facilities[0].maxOverdueDays = 0
        #expect(Self.failure(alteredReport, proof, consortium) == "report_mismatch")

        var added = proof
        added.transactions.append(proof.transactions[0])
        #expect(Self.failure(report, added, consortium) == "out_of_order")
        let other = try await Self.fetch(node, ReportNode.guarantor)
        var foreign = proof
        // The guarantor's registration, committed in the borrower's first block: proven, but about another subject.
        foreign.transactions.append(try #require(other.proof?.transactions.first))
        #expect(Self.failure(report, foreign, consortium) == "wrong_subject")
        var irrelevant = proof
        irrelevant.counterparty.append(proof.transactions[0])
        #expect(Self.failure(report, irrelevant, consortium) == "not_a_counterparty")

        let elsewhere = try ReportNode()
        defer { elsewhere.remove() }
        try await Self.ledger(elsewhere)
        var otherChain = proof
        otherChain.asOf = try #require(try await Self.fetch(elsewhere, ReportNode.borrower).proof?.asOf)
        let code = Self.failure(report, otherChain, consortium)
        #expect(code == "bad_validator_set" || code == "wrong_chain")

        var short = proof
        let certificateBytes = try #require(Data(base64Encoded: proof.asOf.certificate))
        let certificate = try CommitCertificate(canonicalBytes: Array(certificateBytes), limit: Limits.recordBytes)
        let unsigned = CommitCertificate(height: certificate.height, round: certificate.round, blockHash: certificate.blockHash,
                                         signatures: [])
        short.asOf.certificate = Data(unsigned.canonicalBytes).base64EncodedString()
        #expect(Self.failure(report, short, consortium) == "no_quorum")

        await node.engine.shutdown()
        await elsewhere.engine.shutdown()
    }
}
