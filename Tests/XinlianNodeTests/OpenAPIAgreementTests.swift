import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import XinlianCrypto
import XinlianNode

/// `docs/openapi.yaml` and the server agree: the same routes, and every error code the node's sources raise is
/// documented. Line-based reading of the document (no YAML dependency): paths are the two-space-indented keys under
/// `paths:`, methods the four-space-indented keys under them.
@Suite("OpenAPI document agrees with the server")
struct OpenAPIAgreementTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]

    static func document() throws -> String {
        try String(contentsOf: root.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
    }

    /// "METHOD /path" for every operation in the document.
    static func documentedOperations(_ text: String) -> Set<String> {
        var operations = Set<String>()
        var inPaths = false
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" "), !line.isEmpty {
                inPaths = line == "paths:"
                path = nil
                continue
            }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), !line.hasPrefix("   "), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let key = line.trimmingCharacters(in: .whitespaces).dropLast()
                if Self.methods.contains(String(key)) { operations.insert("\(key.uppercased()) \(path)") }
            }
        }
        return operations
    }

    /// String literals captured by `pattern` (one group) in the files of `directory`.
    static func codes(in directory: String, matching pattern: String) throws -> Set<String> {
        let folder = root.appendingPathComponent(directory)
        let expression = try NSRegularExpression(pattern: pattern)
        var found = Set<String>()
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasSuffix(".swift") {
            let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            for match in expression.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                if let range = Range(match.range(at: 1), in: text) { found.insert(String(text[range])) }
            }
        }
        return found
    }

    @Test func routesAndDocumentAgree() async throws {
        let node = try TestNode(suite: .ed25519SHA256)
        defer { node.remove() }
        let engine = try node.engine()
        let served = Set(API(engine: engine).router().routes.map { "\($0.method.rawValue) \($0.path.description)" })
            .filter { !$0.hasPrefix("HEAD ") }
        let documented = Self.documentedOperations(try Self.document())
        #expect(served.count >= 8)
        #expect(served.subtracting(documented).isEmpty, "served but not documented: \(served.subtracting(documented).sorted())")
        #expect(documented.subtracting(served).isEmpty, "documented but not served: \(documented.subtracting(served).sorted())")
        await engine.shutdown()
    }

    /// The document the node serves anonymously is docs/openapi.yaml, byte for byte (`scripts/sync-openapi`).
    @Test func theServedDocumentIsTheDocument() async throws {
        let node = try TestNode(suite: .ed25519SHA256)
        defer { node.remove() }
        let engine = try node.engine()
        let response = try await Application(router: API(engine: engine).router()).test(.router) { client in
            try await client.execute(uri: "/v1/openapi.yaml", method: .get)
        }
        #expect(response.status == .ok)
        #expect(response.headers[.contentType] == "application/yaml")
        #expect(String(buffer: response.body) == (try Self.document()), "docs/openapi.yaml changed: run scripts/sync-openapi")
        await engine.shutdown()
    }

    @Test func everyErrorCodeIsDocumented() throws {
        let text = try Self.document()
        let raised = try Self.codes(in: "Sources/XinlianNode", matching: #"APIError\(\s*\.[A-Za-z]+,\s*"([a-z_]+)""#)
            .union(try Self.codes(in: "Sources/XinlianCredit", matching: #"QueryRefusal\("([a-z_]+)""#))
            .union(try Self.codes(in: "Sources/XinlianCredit", matching: #"ReportVerificationError\(\s*"([a-z_]+)""#))
        #expect(raised.count > 20)
        let missing = raised.filter { !text.contains("`\($0)`") && !text.contains("code: \($0)") }
        #expect(missing.isEmpty, "raised but not in docs/openapi.yaml: \(missing.sorted())")
    }
}
