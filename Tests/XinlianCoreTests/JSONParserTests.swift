import Foundation
import Testing
import XinlianCore

/// Issue 10: the payload reader that replaced `JSONDecoder` on the hot path accepts what that reader accepted of
/// payload JSON, gives the same values, and refuses everything it refused (and fractions, exponents and repeated
/// keys, which no canonical payload holds).
@Suite("Strict JSON reader")
struct JSONParserTests {
    static func foundation(_ text: String) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    @Test(arguments: [
        #"{}"#, #"[]"#, #"{"a":1}"#, #" { "a" : [ 1 , -2 , 0 , true , false , null ] } "#,
        #"{"name":"西湖茶业","n":9007199254740992,"m":-9007199254740992}"#,
        #"{"e":"\"\\\/\b\f\n\r\t\u0041\u00e9\u4e2d\ud83d\ude00"}"#,
        #"{"nested":{"deeper":{"list":[{"x":"y"},[],{}]}}}"#, #""just a string""#, "12", "-0", "null",
        "\t{\"k\":\"v\"}\r\n",
    ])
    func acceptsWhatFoundationAcceptsWithTheSameValue(text: String) throws {
        let expected = try #require(Self.foundation(text), "the fixture must be JSON Foundation reads")
        let parsed = try JSONParser.parse(Array(text.utf8))
        #expect(parsed == expected)
        // Byte for byte, not by String equality (canonical equivalence would hide a difference in bytes).
        #expect(parsed.canonicalText == expected.canonicalText)
    }

    @Test(arguments: [
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]", "tru", "nul", "-", "01", "+1", "0x10",
        "\"unterminated", "\"bad \\x escape\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"tab\there\"",
        "9007199254740993", "-9007199254740993", "99999999999999999999999", "{} {}", "[1] x",
        "1.5", "1e3", "1E3", "1.0", "{\"a\":1,\"a\":2}",
        "-01", "-a", "\"\\ud800\\u0041\"", "\"\\ud800", "\"\\u00", "\u{FEFF}{}",
        // Non-ASCII member names: composed and decomposed é are one key to Swift, two to a byte comparison.
        "{\"\u{E9}\":1,\"e\u{301}\":2}", "{\"\u{E9}\":1}",
    ])
    func refuses(text: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Array(text.utf8)) }
    }

    @Test func refusesInvalidUTF8AndDeepNesting() {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }  // a surrogate in UTF-8
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xC0, 0xAF, 0x22]) }  // overlong UTF-8
        let deep = String(repeating: "[", count: JSONParser.nestingLimit + 1) + String(repeating: "]", count: JSONParser.nestingLimit + 1)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Array(deep.utf8)) }
        let fine = String(repeating: "[", count: JSONParser.nestingLimit) + String(repeating: "]", count: JSONParser.nestingLimit)
        #expect((try? JSONParser.parse(Array(fine.utf8))) != nil)
        // Hostile depth far past the limit fails cleanly, without exhausting the stack.
        let hostile = Array(String(repeating: "[", count: 1_000_000).utf8)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(hostile) }
    }

    /// Canonical payloads read back to themselves: the canonicality check is unchanged.
    @Test func canonicalTextRoundTrips() throws {
        let value: JSONValue = .object(["b": .array([.integer(1), .string("é\n\"")]), "a": .object(["z": .null, "y": .bool(true)])])
        let text = value.canonicalText
        #expect(try JSONParser.parse(text) == value)
        #expect(Payload.isCanonical(text))
        #expect(!Payload.isCanonical(Array(" {\"a\":1}".utf8)))
    }
}
