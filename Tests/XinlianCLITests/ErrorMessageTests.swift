import ArgumentParser
import Foundation
import Testing
import XinlianCore
import XinlianCredit
import XinlianCrypto
@testable import xinlian

/// A refused value names every accepted one.
@Suite("Errors name the accepted values")
struct ErrorMessageTests {
    /// The message `command` prints for `arguments`, which must fail to parse.
    func refusal(_ command: any ParsableCommand.Type, _ arguments: [String]) -> String {
        do {
            _ = try command.parseAsRoot(arguments)
        } catch {
            return command.message(for: error)
        }
        Issue.record("\(arguments) parsed")
        return ""
    }

    @Test func unknownPurposeListsThePurposes() {
        let message = refusal(Report.self, ["91330106MA27XY123U", "--key", "bank-a.key", "--purpose", "creditApproval"])
        #expect(message.contains("creditApproval"), "\(message)")
        for purpose in QueryPurpose.allCases { #expect(message.contains(purpose.rawValue), "\(message)") }
    }

    @Test func unknownSuiteListsTheSuites() {
        for (command, arguments) in [(Testnet.self as any ParsableCommand.Type, ["--output", "x"]),
                                     (Init.self, ["--home", "x", "--validator", "v"]),
                                     (Keygen.self, ["--owner", "o", "--output", "x"]),
                                     (Bench.self, [])] {
            let message = refusal(command, arguments + ["--suite", "sm2"])
            #expect(message.contains("'sm2'"), "\(message)")
            for suite in CryptoSuiteID.allCases { #expect(message.contains(suite.rawValue), "\(message)") }
        }
    }

    @Test func unknownRoleListsTheRoles() {
        let message = refusal(Keygen.self, ["--owner", "bank-c", "--output", "x", "--role", "lender"])
        #expect(message.contains("lender"), "\(message)")
        for role in InstitutionRole.allCases { #expect(message.contains(role.rawValue), "\(message)") }
    }

    @Test func unknownFormatListsTheFormats() {
        let message = refusal(Report.self, ["91330106MA27XY123U", "--key", "k", "--purpose", "audit", "--format", "csv"])
        for format in ReportFormat.allCases { #expect(message.contains(format.rawValue), "\(message)") }
    }

    @Test(arguments: [
        #"{"kind":"loan","subject":"91310000MA1FL8TQ36","payload":{}}"#,  // one object
        "{\"kind\":\"loan\",\n \"subject\":\"91310000MA1FL8TQ36\",\n \"payload\":{}}",  // one object over lines
        #"[{"kind":"loan","subject":"91310000MA1FL8TQ36","payload":{}}]"#,  // an array
        "{\"kind\":\"registration\",\"payload\":{}}\n{\"kind\":\"loan\",\"payload\":{}}\n",  // JSON Lines
    ])
    func unknownKindInSubmitInputListsTheKinds(_ input: String) {
        do {
            _ = try TransactionInput.parse(Data(input.utf8))
            Issue.record("kind loan accepted")
        } catch {
            let message = "\(error)"
            #expect(message.contains("unknown kind \"loan\""), "\(message)")
            for kind in TransactionKind.allCases { #expect(message.contains(kind.rawValue), "\(message)") }
            #expect(!message.contains("CodingKeys"), "the message names the field, not Swift's decoding context: \(message)")
        }
    }

    @Test func jsonLinesRefusalNamesTheLine() {
        let input = "{\"kind\":\"registration\",\"payload\":{}}\n\n{\"kind\":\"loan\",\"payload\":{}}\n"
        #expect(throws: CLIError.self) { try TransactionInput.parse(Data(input.utf8)) }
        do { _ = try TransactionInput.parse(Data(input.utf8)) } catch {
            #expect("\(error)".hasPrefix("line 3: "), "\(error)")
        }
    }
}
