import ArgumentParser
import NIOCore
import Foundation
import XinlianCore
import XinlianCrypto
import XinlianNode

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign and submit transactions as an institution.",
        discussion: Help.paragraphs(
            "Input is one {\"kind\", \"subject\", \"payload\"} object, a JSON array of them, or JSON Lines; - reads "
                + "standard input. The CLI fills in the reporter (the key's institution), the time and a nonce, and signs.",
            "Every kind an institution may submit is accepted: \(Submit.submittableKinds). queryRecord is written by "
                + "`xinlian report`, governance is not submittable. docs/credit-model.md describes each kind's payload.",
            "Optional \"timeMs\" and \"nonce\" are kept; a reference field may say \"@N\" for the id of the input's "
                + "transaction N (from 0), e.g. a facilityUpdated whose \"opening\" is \"@0\".",
            Help.example("""
                echo '{"kind":"facilityOpened","subject":"91310000MA1FL8TQ36","payload":{
                  "facilityId":"LN-2026-001","type":"loan",
                  "amount":{"minor":50000000,"currency":"CNY"},
                  "openedOn":"2026-01-10","maturesOn":"2027-01-10",
                  "security":"unsecured","classification":"normal"}}' |
                  xinlian submit --node http://127.0.0.1:8600 \\
                    --key .cluster/institutions/bank-a.key --wait -
                """)))

    /// The kinds `submit` accepts, for its help.
    static var submittableKinds: String {
        TransactionKind.allCases.filter { $0 != .queryRecord && $0 != .governance }.map(\.rawValue).joined(separator: ", ")
    }

    @Option(help: "Node API URL.") var node: String = "http://127.0.0.1:8600"
    @Option(help: "Institution key file.") var key: String
    @Flag(help: "Wait until every transaction is committed.") var wait = false
    @Option(help: "Seconds to wait with --wait.") var timeout: Int = 60
    @Argument(help: "Input file, or - for standard input.") var input: String = "-"

    func run() async throws {
        try await reportingErrors {
            let keyFile = try KeyFile.load(path: key)
            let signingKey = try keyFile.signingKey()
            let client = NodeClient(node)
            let status = try await client.get("/v1/status", as: NodeStatus.self)
            let data = input == "-" ? FileHandle.standardInput.readDataToEndOfFile()
                : try Data(contentsOf: URL(fileURLWithPath: input))
            let suiteID: CryptoSuiteID
            do { suiteID = try CryptoSuiteID(parsing: status.cryptoSuite) } catch {
                throw CLIError("the node at \(node) runs a crypto suite this CLI does not know: \(error)")
            }
            let transactions = try TransactionInput.signAll(TransactionInput.parse(data), chainID: try Name(status.chainId),
                                                            keyFile: keyFile, key: signingKey, suite: CryptoSuite(suiteID),
                                                            nowMs: nowMs())
            let response = try await client.post(
                "/v1/transactions",
                json: SubmitRequest(transactions),
                as: SubmitResponse.self)
            for item in response.results { print("\(item.id) \(item.status)") }
            if wait {
                // Only the reporter (or an auditor or regulator) may read its transactions back.
                let signer = RequestSigner(chainID: try Name(status.chainId), institution: keyFile.owner, key: signingKey)
                try await waitForCommit(response.results.map(\.id), client: client, signer: signer)
            }
        }
    }

    private func waitForCommit(_ ids: [String], client: NodeClient, signer: RequestSigner) async throws {
        let deadline = ContinuousClock.now + .seconds(timeout)
        for id in ids {
            while true {
                let status = try await client.get("/v1/transactions/\(id)", as: TransactionStatusResponse.self, signedBy: signer)
                if status.status == "committed" {
                    print("\(id) committed at height \(status.height ?? 0)")
                    break
                }
                if status.status == "rejected" {
                    throw CLIError("\(id) rejected: \(status.error?.code ?? "") \(status.error?.message ?? "")")
                }
                guard ContinuousClock.now < deadline else { throw CLIError("timed out waiting for \(id)") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a node's status.",
        discussion: Help.paragraphs(
            "Prints the chain id, height, last block hash, validator and mempool size as JSON; --short prints one line.",
            Help.example("xinlian status --node http://127.0.0.1:8600 --short")))

    @Option(help: "Node API URL.") var node: String = "http://127.0.0.1:8600"
    @Flag(help: "One line: validator URL height hash.") var short = false

    func run() async throws {
        try await reportingErrors {
            let status = try await NodeClient(node).get("/v1/status", as: NodeStatus.self, timeout: .seconds(2))
            if short {
                print("\(status.validator) \(node) \(status.height) \(status.lastBlockHash)")
            } else {
                try printJSON(status)
            }
        }
    }
}
