import ArgumentParser
import Foundation

@main
struct Xinlian: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xinlian",
        abstract: "Xinlian (信链): a consortium ledger of enterprise credit attestations.",
        discussion: """
            Start a local consortium:   xinlian testnet --validators 4 --output .cluster, then xinlian start --home .cluster/nodeI for each I (or: scripts/cluster up)
            Submit an attestation:      xinlian submit --node http://127.0.0.1:8600 --key .cluster/institutions/bank-a.key tx.json --wait
            Audit a node's data:        xinlian audit verify --genesis .cluster/genesis.json --data .cluster/node0/data
            """,
        subcommands: [
            Testnet.self, Init.self, Keygen.self, Start.self, Submit.self, Status.self, Export.self, Audit.self,
            Reindex.self, Load.self, Bench.self, BenchReport.self, Report.self, Enterprises.self, Sample.self, Peers.self,
        ])
}

/// A failure the CLI reports as one line on standard error, exiting non-zero.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
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
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
