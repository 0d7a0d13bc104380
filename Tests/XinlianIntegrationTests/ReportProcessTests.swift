import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing

/// The environment variable the CLI reads genesis from for `https://` nodes.
enum PinnedAPI { static let environmentVariable = "XINLIAN_GENESIS" }

/// `xinlian report`, `enterprises`, `sample` and `submit` with `@N` references against a real node process.
@Suite("Reports through the CLI", .serialized)
struct ReportProcessTests {
    static let uscc = "91330106MA27XY123U"

    @Test func reportConsentVerifyAndList() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-rt-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let port = try freePort()
        // The API speaks TLS by default; the CLI trusts it through the keys genesis pins (XINLIAN_GENESIS).
        let url = "https://127.0.0.1:\(port)"
        let testnet = try CLI.run(["testnet", "--validators", "1", "--output", root, "--api-port", String(port)])
        try #require(testnet.status == 0, "\(testnet.stderr)")
        let node = try CLI.start(home: root + "/node0")
        defer { if node.isRunning { kill(node.processIdentifier, SIGKILL) } }
        let keys = root + "/institutions/"
        let genesis = root + "/genesis.json"
        let trust = [PinnedAPI.environmentVariable: genesis]
        func cli(_ arguments: [String], stdin: String? = nil) throws -> CLI.Output {
            try CLI.run(arguments, stdin: stdin, environment: trust)
        }
        #expect(try eventually(30) { try cli(["status", "--node", url]).status == 0 })
        // Without genesis the CLI will not talk to a TLS node; plain HTTP to it fails; a foreign genesis is refused.
        let untrusted = try CLI.run(["status", "--node", url], environment: [PinnedAPI.environmentVariable: ""])
        #expect(untrusted.status != 0 && untrusted.stderr.contains("XINLIAN_GENESIS"), "\(untrusted.stderr)")
        #expect(try cli(["status", "--node", "http://127.0.0.1:\(port)"]).status != 0)
        let other = root + "/other"
        _ = try CLI.run(["testnet", "--validators", "1", "--output", other])
        let foreign = try CLI.run(["status", "--node", url], environment: [PinnedAPI.environmentVariable: other + "/genesis.json"])
        #expect(foreign.status != 0 && foreign.stderr.contains("does not pin"), "\(foreign.stderr)")

        let registered = try cli(["submit", "--node", url, "--key", keys + "registry.key", "--wait", "-"], stdin: """
            {"kind":"registration","subject":"\(Self.uscc)","payload":{"name":"杭州西湖茶业有限公司","legalForm":"limitedLiabilityCompany","legalRepresentative":"张伟","registeredCapital":{"minor":1000000000,"currency":"CNY"},"establishedOn":"2012-05-18","registrationAuthority":"杭州市西湖区市场监督管理局","address":"浙江省杭州市西湖区龙井路1号","industry":"C1530"}}
            """)
        try #require(registered.status == 0, "\(registered.stderr)")
        let today = ISO8601DateFormatter().string(from: Date()).prefix(10)
        let bank = try cli(["submit", "--node", url, "--key", keys + "bank-a.key", "--wait", "-"], stdin: """
            {"kind":"facilityOpened","subject":"\(Self.uscc)","payload":{"facilityId":"LN-1","type":"loan","amount":{"minor":500000000,"currency":"CNY"},"openedOn":"2025-01-10","maturesOn":"2027-01-10","security":"unsecured","classification":"normal"}}
            {"kind":"facilityUpdated","subject":"\(Self.uscc)","payload":{"facilityId":"LN-1","opening":"@0","asOf":"2025-06-30","balance":{"minor":400000000,"currency":"CNY"},"classification":"normal","status":"active"}}
            {"kind":"consentGranted","subject":"\(Self.uscc)","payload":{"purpose":"loanApplication","grantedOn":"\(today)","expiresOn":"2027-12-31","evidence":"\(String(repeating: "ab", count: 32))"}}
            """)
        try #require(bank.status == 0, "\(bank.stderr)")
        let consent = try #require(bank.stdout.split(separator: "\n").map { $0.split(separator: " ") }.last?.first.map(String.init))

        let refused = try cli(["report", Self.uscc, "--node", url, "--key", keys + "bank-b.key", "--purpose", "loanApplication",
                                   "--consent", consent])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("consent_not_found"), "\(refused.stderr)")
        #expect(refused.stdout.isEmpty)

        let text = try cli(["report", Self.uscc, "--node", url, "--key", keys + "bank-a.key", "--purpose", "loanApplication",
                                "--consent", consent, "--format", "text"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("杭州西湖茶业有限公司"))
        #expect(text.stdout.contains("bank-a LN-1: loan 5000000.00 CNY, active"))
        #expect(try eventually(30) {
            let status = try JSONSerialization.jsonObject(with: Data(try cli(["status", "--node", url]).stdout.utf8)) as? [String: Any]
            return status?["mempoolSize"] as? Int == 0
        })

        let saved = root + "/report.json"
        let verified = try cli(["report", Self.uscc, "--node", url, "--key", keys + "regulator.key", "--purpose", "supervision",
                                    "--verify", "--genesis", genesis, "--save", saved])
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stderr.contains("verified complete as of height"), "\(verified.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(verified.stdout.utf8)) as? [String: Any])
        let queries = try #require(report["queryRecords"] as? [[String: Any]])
        #expect(queries.map { $0["institution"] as? String } == ["bank-a"])

        var response = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: saved))) as? [String: Any])
        var proof = try #require(response["proof"] as? [String: Any])
        var transactions = try #require(proof["transactions"] as? [Any])
        transactions.remove(at: 1)
        proof["transactions"] = transactions
        response["proof"] = proof
        try JSONSerialization.data(withJSONObject: response).write(to: URL(fileURLWithPath: saved))
        let dropped = try cli(["report", Self.uscc, "--key", keys + "regulator.key", "--purpose", "supervision",
                                   "--verify", "--genesis", genesis, "--from", saved])
        #expect(dropped.status != 0)
        #expect(dropped.stderr.contains("head_mismatch"), "\(dropped.stderr)")

        let listed = try cli(["enterprises", "--node", url, "--key", keys + "regulator.key"])
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(listed.stdout == Self.uscc + "\n")
        let notRegulator = try cli(["enterprises", "--node", url, "--key", keys + "bank-a.key"])
        #expect(notRegulator.status != 0)
        #expect(notRegulator.stderr.contains("role_not_permitted"))

        kill(node.processIdentifier, SIGTERM)
        node.waitUntilExit()
    }

    @Test func sampleIsDeterministicJSONLines() throws {
        let first = try CLI.run(["sample", "--enterprises", "3", "--seed", "5"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout == (try CLI.run(["sample", "--enterprises", "3", "--seed", "5"])).stdout)
        let lines = first.stdout.split(separator: "\n")
        let objects = lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        #expect(lines.count > 10)
        #expect(objects.count == lines.count)
        let kinds = Set(objects.compactMap { $0["kind"] as? String })
        #expect(kinds.isSuperset(of: ["registration", "facilityOpened", "consentGranted", "consentRevoked", "guaranteeIssued"]))
        #expect(first.stdout.contains("\"@"))
    }
}
