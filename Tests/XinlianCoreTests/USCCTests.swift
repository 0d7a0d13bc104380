import Foundation
import Testing
import XinlianCore

@Suite("USCC (GB 32100-2015)")
struct USCCTests {
    static let vectors: (valid: [String], invalid: [(String, String)]) = {
        guard let root = try? TestData.json("uscc.json") as? [String: Any],
              let valid = root["valid"] as? [String],
              let invalid = root["invalid"] as? [[String: String]] else {
            return ([], [])
        }
        return (valid, invalid.map { ($0["code"] ?? "", $0["why"] ?? "") })
    }()

    @Test func vectorsArePresent() {
        #expect(Self.vectors.valid.count >= 40, "Tests/Fixtures/uscc.json must be readable")
        #expect(Self.vectors.invalid.count >= 10)
    }

    @Test(arguments: vectors.valid)
    func acceptsValidCode(_ code: String) throws {
        #expect(try USCC(code).code == code)
    }

    @Test(arguments: vectors.invalid.map(\.0))
    func rejectsInvalidCode(_ code: String) {
        #expect(throws: IdentifierError.self) { try USCC(code) }
    }

    @Test func everyWrongCheckCharacterIsRejected() throws {
        let valid = try #require(Self.vectors.valid.first)
        let prefix = String(valid.prefix(17))
        var accepted: [String] = []
        for scalar in USCC.alphabet {
            let candidate = prefix + String(UnicodeScalar(scalar))
            if (try? USCC(candidate)) != nil { accepted.append(candidate) }
        }
        #expect(accepted == [valid])
    }

    @Test func completesPrefixWithCheckCharacter() throws {
        for code in Self.vectors.valid {
            #expect(try USCC.withCheckCharacter(String(code.prefix(17))).code == code)
        }
    }

    @Test func jsonRoundTripValidates() throws {
        let decoded = try JSONDecoder().decode([USCC].self, from: Data(#"["91440300TFHKYQRREP"]"#.utf8))
        #expect(decoded.first?.code == "91440300TFHKYQRREP")
        #expect(throws: (any Error).self) { try JSONDecoder().decode([USCC].self, from: Data(#"["91440300TFHKYQRREA"]"#.utf8)) }
    }
}
