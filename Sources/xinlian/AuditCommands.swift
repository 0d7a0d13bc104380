import ArgumentParser
import Foundation
import XinlianAudit
import XinlianCore
import XinlianCrypto
import XinlianNode
import XinlianStorage

/// Genesis given explicitly, or the node home's `genesis.json` beside its `data/`.
func loadConsortium(genesis: String?, data: String?) throws -> Consortium {
    let path = genesis ?? ((data ?? ".") as NSString).deletingLastPathComponent + "/genesis.json"
    guard FileManager.default.fileExists(atPath: path) else { throw CLIError("genesis file \(path) not found; pass --genesis") }
    return try Consortium(try Genesis.load(path: path))
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a node's whole chain into one portable file that `audit verify --export` reads.",
        discussion: Help.paragraphs(
            "Reads the block log without changing it. Prints the last height and head hash, the line `audit verify` "
                + "ends with.",
            "The personal data the node still holds for those blocks (natural persons' fields, erasable) goes beside "
                + "it in FILE.personal.json (mode 0600), unless --without-personal-data; erased data is never exported. "
                + "The node keeps it encrypted: the export needs the node's personal data key (personal.key beside the "
                + "data directory by default).",
            Help.example("xinlian export --data .cluster/node0/data --output chain.xlx")))

    @Option(help: "A node's data directory (read only).") var data: String
    @Option(help: "Output file.") var output: String
    @Option(help: "Genesis file (default: genesis.json beside the data directory).") var genesis: String?
    @Flag(help: "Write no personal data (an integrity-only export, for auditors who need no names).")
    var withoutPersonalData = false
    @Option(help: ArgumentHelp("The node's personal data key (default: personal.key beside the data directory).",
                               valueName: "file"))
    var personalDataKey: String?

    func run() async throws {
        try await reportingErrors {
            let consortium = try loadConsortium(genesis: genesis, data: data)
            let summary = try ExportFile.write(dataDirectory: data, consortium: consortium, to: output)
            print("exported \(summary.recordCount) blocks to \(output)")
            let companion = PersonalExport.path(for: output)
            if withoutPersonalData {
                if FileManager.default.fileExists(atPath: companion) { try FileManager.default.removeItem(atPath: companion) }
            } else {
                let keyPath = personalDataKey ?? PersonalDataKey.defaultPath(forDataDirectory: data)
                guard FileManager.default.fileExists(atPath: keyPath) else {
                    throw CLIError("no personal data key at \(keyPath): name the node's key with --personal-data-key, "
                                   + "or write an integrity-only export with --without-personal-data")
                }
                let count = try PersonalExport.write(dataDirectory: data, consortium: consortium,
                                                     key: try PersonalDataKey.load(path: keyPath),
                                                     throughHeight: summary.lastHeight, to: companion)
                print("exported the personal data of \(count) statements to \(companion)")
            }
            print("height \(summary.lastHeight) head \(summary.head.hex)")
        }
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Offline verification of the chain and of inclusion proofs.",
        discussion: Help.paragraphs(
            "Nothing is trusted but the genesis file: `verify` checks a node's data or an export, `prove` fetches a "
                + "transaction's inclusion proof from a node, `check-proof` checks it offline.",
            Help.example("""
                xinlian audit verify --genesis .cluster/genesis.json \\
                  --data .cluster/node0/data
                xinlian audit prove <transaction id> --node http://127.0.0.1:8600 \\
                  --output proof.json
                xinlian audit check-proof proof.json --genesis .cluster/genesis.json
                """, title: "Examples")),
        subcommands: [Verify.self, Prove.self, CheckProof.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify every block from genesis: checksums, hash links, Merkle and state roots, signatures, certificates.",
            discussion: Help.paragraphs(
                "Exits 0 and ends with `height H head HASH` when intact; otherwise exits 1 naming the first bad height, "
                    + "file and byte offset. Never modifies the data.",
                "With --export, the personal data exported beside it (FILE.personal.json, when present) is checked too: "
                    + "each entry against the commitment its statement signed, and none the chain had erased.",
                Help.example("""
                    xinlian audit verify --genesis .cluster/genesis.json \\
                      --data .cluster/node0/data
                    xinlian audit verify --genesis .cluster/genesis.json --export chain.xlx
                    """, title: "Examples")))

        @Option(help: "The consortium's genesis file.") var genesis: String
        @Option(help: "A node's data directory.") var data: String?
        @Option(help: "An export file.") var export: String?
        @Flag(help: "Skip recomputing state roots (faster; less memory on very large ledgers).") var skipStateRoots = false

        func run() async throws {
            try await reportingErrors {
                guard (data == nil) != (export == nil) else { throw CLIError("give exactly one of --data or --export") }
                let consortium = try loadConsortium(genesis: genesis, data: nil)
                let options = AuditOptions(checkStateRoots: !skipStateRoots)
                let report: AuditReport
                var personal: Int?
                if let data {
                    report = try AuditVerifier.verify(dataDirectory: data, consortium: consortium, options: options)
                } else {
                    let export = export ?? ""
                    report = try AuditVerifier.verify(exportFile: export, consortium: consortium, options: options)
                    // Its personal data, when it was exported with it: every entry against its signed commitment.
                    let companion = PersonalExport.path(for: export)
                    if FileManager.default.fileExists(atPath: companion) {
                        personal = try PersonalExport.verify(companion, exportFile: export, consortium: consortium)
                    }
                }
                if let personal {
                    print("verified the personal data of \(personal) statements against their commitments")
                }
                print("verified \(report.blocks) blocks and \(report.transactions) transactions of chain \(consortium.chainID)")
                print("height \(report.height) head \(report.head.hex)")
            }
        }
    }

    struct Prove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch a committed transaction's inclusion proof from a node and write it as a file.",
            discussion: Help.paragraphs(
                "The transaction id is the one `xinlian submit` prints (64 hex digits). The read is signed with --key: "
                    + "any member may have the proof; it carries the transaction itself only for the transaction's "
                    + "reporter, an auditor, a regulator or an institution that runs a validator.",
                Help.example("xinlian audit prove <transaction id> --node https://127.0.0.1:8600 \\\n"
                    + "  --key .cluster/institutions/auditor.key --output proof.json")))

        @Argument(help: "Transaction id (hex).") var id: String
        @Option(help: "Node API URL.") var node: String = "http://127.0.0.1:8600"
        @Option(help: "Institution key file that signs the read.") var key: String
        @Option(help: "Output file (default: standard output).") var output: String?

        func run() async throws {
            try await reportingErrors {
                let client = NodeClient(node)
                let signer = try await RequestSigner.load(key, client: client)
                let proof = try await client.get("/v1/transactions/\(id)/proof", as: InclusionProof.self, signedBy: signer)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                let data = try encoder.encode(proof)
                if let output {
                    try data.write(to: URL(fileURLWithPath: output))
                    print("wrote proof of \(id) at height \(proof.height) to \(output)"
                          + (proof.transaction == nil ? " (without the transaction: check it with --transaction FILE)" : ""))
                } else {
                    print(String(decoding: data, as: UTF8.self))
                }
            }
        }
    }

    struct CheckProof: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an inclusion proof offline against genesis.",
            discussion: Help.paragraphs(
                "Checks the transaction's Merkle path to its block's transactions root, and the block's commit certificate "
                    + "against the genesis validators.",
                "A member gets the proof of another institution's statement without the statement itself; give the "
                    + "transaction you were shown (a copy from the enterprise, say) with --transaction to tie the two.",
                Help.example("xinlian audit check-proof proof.json --genesis .cluster/genesis.json"),
                Help.example("xinlian audit check-proof proof.json --genesis .cluster/genesis.json \\\n"
                    + "  --transaction loan.tx", title: "A proof without the transaction")))

        @Argument(help: "Proof file from `audit prove`.") var file: String
        @Option(help: "The consortium's genesis file.") var genesis: String
        @Option(help: ArgumentHelp(
            "The transaction you hold (its canonical bytes, raw or base64), to tie a proof without the payload to it.",
            valueName: "file")) var transaction: String?

        func run() async throws {
            try await reportingErrors {
                let consortium = try loadConsortium(genesis: genesis, data: nil)
                let proof = try JSONDecoder().decode(InclusionProof.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
                let held = try transaction.map(Self.readTransaction)
                let verified = try proof.verify(consortium: consortium, holding: held)
                let place = "block \(verified.header.height) (\(verified.blockHash.hex)), final by certificate"
                if let transaction = verified.transaction, let id = verified.transactionID {
                    print("verified: transaction \(id.hex) by \(transaction.body.reporter) is in \(place)")
                } else {
                    print("verified: leaf \(verified.leafHash.hex) is in \(place); the proof carries no transaction, "
                          + "so give the one you hold with --transaction FILE to tie it to the leaf")
                }
            }
        }

        /// A transaction file: its canonical bytes, or their base64 (as `POST /v1/transactions` takes them).
        static func readTransaction(_ path: String) throws -> Transaction {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let bytes = Data(base64Encoded: text).map(Array.init) ?? Array(data)
            do { return try Transaction(canonicalBytes: bytes, limit: Limits.transactionBytes) } catch {
                throw CLIError("\(path) holds no transaction: \(error)")
            }
        }
    }
}
