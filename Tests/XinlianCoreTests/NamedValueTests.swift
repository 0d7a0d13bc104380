import Foundation
import Testing
import XinlianCore
import XinlianCrypto

/// A value outside a closed set is refused with every accepted value, taken from `allCases`.
@Suite("Unknown values name the accepted ones")
struct NamedValueTests {
    @Test func unknownSuite() throws {
        let error = #expect(throws: UnknownValueError.self) { try CryptoSuiteID(parsing: "sm2") }
        #expect(error?.description == "unknown suite \"sm2\"; expected one of: ed25519-sha256, sm2-sm3")
        #expect(try CryptoSuiteID(parsing: "sm2-sm3") == .sm2SM3)
    }

    @Test func unknownRole() {
        let error = #expect(throws: UnknownValueError.self) { try InstitutionRole(parsing: "lender") }
        #expect(error?.description == "unknown role \"lender\"; expected one of: member, registry, bureau, regulator, auditor")
    }

    @Test func unknownKind() {
        let error = #expect(throws: UnknownValueError.self) { try TransactionKind(parsing: "loan") }
        #expect(error?.accepted == TransactionKind.allCases.map(\.rawValue))
        #expect(error?.description.hasPrefix("unknown kind \"loan\"; expected one of: registration, operatingStatus, ") == true)
    }

    @Test func unknownKindInJSON() throws {
        let error = try #require(throws: Swift.DecodingError.self) {
            try JSONDecoder().decode([TransactionKind].self, from: Data(#"["facilityOpened", "loan"]"#.utf8))
        }
        let message = JSONFile.describe(error)
        #expect(message.hasPrefix("[1]: unknown kind \"loan\"; expected one of: registration, "), "\(message)")
        #expect(message.hasSuffix(", governance, erasureOrder"), "\(message)")
    }

    @Test func unknownRoleInAGenesisFileNamesTheFileAndTheField() throws {
        let genesis = try TestConsortium(suite: .ed25519SHA256).consortium.genesis
        let text = String(decoding: try genesis.jsonData(), as: UTF8.self)
        #expect(text.contains("\"member\""))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("genesis-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(text.replacingOccurrences(of: "\"member\"", with: "\"lender\"").utf8).write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: JSONFileError.self) { try Genesis.load(path: path) }
        #expect(error.description == "\(path): institutions[0].roles[0]: unknown role \"lender\"; "
            + "expected one of: member, registry, bureau, regulator, auditor")
    }

    @Test func unknownSuiteInAGenesisFile() throws {
        let genesis = try TestConsortium(suite: .ed25519SHA256).consortium.genesis
        var object = try #require(try JSONSerialization.jsonObject(with: genesis.jsonData()) as? [String: Any])
        object["cryptoSuite"] = "sm2"
        let error = try #require(throws: Swift.DecodingError.self) {
            try JSONDecoder().decode(Genesis.self, from: JSONSerialization.data(withJSONObject: object))
        }
        #expect(JSONFile.describe(error) == "cryptoSuite: unknown suite \"sm2\"; expected one of: ed25519-sha256, sm2-sm3")
    }

    @Test func validatorOfAnUnknownInstitutionListsTheInstitutions() throws {
        var genesis = try TestConsortium(suite: .ed25519SHA256).consortium.genesis
        genesis.validators[0].institution = "bank-z"
        let error = try #require(throws: VerificationError.self) { try Consortium(genesis) }
        #expect(error.message.hasSuffix("names unknown institution bank-z; genesis lists: bank-a, registry, regulator"),
                "\(error.message)")
    }

    @Test func unknownKindCodeInBinaryNamesTheRange() throws {
        let body = TransactionBody(chainID: "c", kind: .registration, reporter: "r", subject: try USCC("91440300TFHKYQRREP"),
                                   timeMs: 1, nonce: 2, payload: [])
        var other = body
        other.kind = .operatingStatus
        var bytes = body.canonicalBytes
        let kindAt = try #require(zip(bytes, other.canonicalBytes).enumerated().first { $0.element.0 != $0.element.1 }?.offset)
        bytes[kindAt] = 99
        let error = try #require(throws: XinlianCore.DecodingError.self) { try TransactionBody(canonicalBytes: bytes, limit: 1024) }
        #expect(error.code == "invalid_tag")
        #expect(error.reason == "unknown kind 99; expected a code from 1 to \(TransactionKind.allCases.count)")
    }

    @Test func unknownVoteKindCodeInBinaryListsTheCodes() throws {
        var bytes = Vote(chainID: "c", kind: .prevote, height: 3, round: 1, blockHash: nil, validator: "v").canonicalBytes
        let other = Vote(chainID: "c", kind: .precommit, height: 3, round: 1, blockHash: nil, validator: "v").canonicalBytes
        let kindAt = try #require(zip(bytes, other).enumerated().first { $0.element.0 != $0.element.1 }?.offset)
        bytes[kindAt] = 7
        let error = try #require(throws: XinlianCore.DecodingError.self) { try Vote(canonicalBytes: bytes, limit: 1024) }
        #expect(error.reason == "unknown vote kind 7; expected one of: 1 (prevote), 2 (precommit)")
    }
}
