import ArgumentParser
import Foundation
import XinlianCore

@main
struct Xinlian: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xinlian",
        abstract: "Xinlian (信链): a consortium ledger of enterprise credit attestations.",
        discussion: Help.paragraphs(
            "Every command has --help with an example. Failures print one line on standard error and exit non-zero.",
            Help.example("""
                Start a local consortium of four validators (or: scripts/cluster up):
                  xinlian testnet --validators 4 --output .cluster
                  xinlian start --home .cluster/node0    # and node1, node2, node3
                Submit an attestation:
                  xinlian submit --node http://127.0.0.1:8600 \\
                    --key .cluster/institutions/bank-a.key tx.json --wait
                Audit a node's data:
                  xinlian audit verify --genesis .cluster/genesis.json \\
                    --data .cluster/node0/data
                """, title: "Examples")),
        subcommands: [
            Testnet.self, Init.self, Keygen.self, Start.self, Submit.self, Status.self, Export.self, Audit.self,
            Reindex.self, Load.self, Bench.self, BenchReport.self, BenchScale.self, BenchProbe.self, Report.self, Enterprises.self, Sample.self, Peers.self,
        ])
}

/// Help texts as ArgumentParser wants them. ArgumentParser wraps every line of a text to the terminal's width, so a
/// paragraph is one line, never wrapped by hand (a hand-wrapped one is wrapped twice and breaks mid-sentence), and
/// paragraphs are separated by a blank line. Examples are lines indented by two spaces, which ArgumentParser keeps;
/// keep them within 76 columns, continuing long commands on the next line with `\`.
enum Help {
    static func paragraphs(_ paragraphs: String...) -> String {
        paragraphs.joined(separator: "\n\n")
    }

    /// `title:` then `lines` (a multi-line string), each indented by two spaces.
    static func example(_ lines: String, title: String = "Example") -> String {
        "\(title):\n" + lines.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
    }
}

/// A failure the CLI reports as one line on standard error, exiting non-zero.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    /// The exchange failed in transport (no connection, a connection closed mid-exchange), not on the node's answer:
    /// an idempotent request may be sent again.
    let transient: Bool
    /// The node's stable error code (`docs/openapi.yaml`), when the node answered with one.
    let code: String?
    init(_ description: String, transient: Bool = false, code: String? = nil) {
        self.description = description
        self.transient = transient
        self.code = code
    }
}

extension AsyncParsableCommand {
    /// Runs `body`, turning any error into one clear line and exit code 1.
    func reportingErrors(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ExitCode {
            throw error
        } catch let error as CleanExit {
            throw error
        } catch let error as Swift.DecodingError {
            FileHandle.standardError.write(Data("error: \(JSONFile.describe(error))\n".utf8))
            throw ExitCode.failure
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

func printJSON(_ value: some Encodable) throws {
    print(try jsonText(value))
}

/// `value` as pretty-printed JSON with sorted keys.
func jsonText(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
