import ArgumentParser
import Foundation
import Testing
@testable import xinlian

/// Every command of the CLI, subcommands included.
func allCommands(_ root: any ParsableCommand.Type = Xinlian.self) -> [any ParsableCommand.Type] {
    [root] + root.configuration.subcommands.flatMap { allCommands($0) }
}

@Suite("--help texts")
struct HelpTextTests {
    static let commands = allCommands()

    @Test func everySubcommandIsVisited() {
        #expect(Self.commands.count >= 19)
    }

    /// ArgumentParser wraps each line to the terminal's width, so a hand-wrapped paragraph breaks mid-line: every
    /// paragraph of a discussion is one line, except examples, whose lines after the title are indented.
    @Test(arguments: commands.map { ObjectIdentifier($0) })
    func discussionIsUnwrappedParagraphs(_ id: ObjectIdentifier) throws {
        let command = try #require(Self.commands.first { ObjectIdentifier($0) == id })
        let name = command._commandName
        let configuration = command.configuration
        #expect(!configuration.abstract.contains("\n"), "\(name): the abstract is one line")
        let paragraphs = configuration.discussion.components(separatedBy: "\n\n")
        for paragraph in paragraphs {
            let lines = paragraph.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(!lines.contains { $0.isEmpty }, "\(name): paragraphs are separated by exactly one blank line")
            guard lines.count > 1 else { continue }
            #expect(lines[0].hasSuffix(":"), "\(name): a paragraph of several lines is an example with a title: \(lines[0])")
            for line in lines.dropFirst() {
                #expect(line.hasPrefix("  "), "\(name): example lines are indented: \(line)")
                #expect(line.count <= 78, "\(name): an example line ArgumentParser would wrap at 80 columns: \(line)")
            }
        }
        #expect(paragraphs.contains { $0.hasPrefix("Example") }, "\(name): --help has an example")
    }

    /// The rendered help at 80 columns: no prose line is cut short by a hard newline, i.e. a prose line followed by
    /// more prose is one that the next word would not have fitted on (ArgumentParser's own wrapping; a few columns of
    /// slack, as it wraps a word that ends exactly at the width).
    @Test(arguments: commands.map { ObjectIdentifier($0) })
    func renderedHelpReadsAsParagraphs(_ id: ObjectIdentifier) throws {
        let command = try #require(Self.commands.first { ObjectIdentifier($0) == id })
        let help = Xinlian.helpMessage(for: command, columns: 80)
        let overview = help.components(separatedBy: "\nUSAGE:")[0].split(separator: "\n", omittingEmptySubsequences: false)
        for (line, next) in zip(overview, overview.dropFirst()) where !line.isEmpty && !line.hasPrefix(" ") {
            let continues = !next.isEmpty && !next.hasPrefix(" ")
            let fullWidth = line.count + 1 + (next.split(separator: " ").first?.count ?? 0) > 80 - 4
            #expect(!continues || fullWidth, "\(command._commandName): a line broken short of the width:\n\(line)\n\(next)")
        }
    }
}
