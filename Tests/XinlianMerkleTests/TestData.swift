import Foundation
import Testing
import XinlianCrypto

/// Loads `Tests/Fixtures/<name>` of this repository, located from this file's path (see `Tests/Fixtures/README.md`).
enum TestData {
    static func json(_ name: String, filePath: String = #filePath) throws -> [String: Any] {
        let url = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures").appendingPathComponent(name)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            Issue.record("missing test vectors at \(url.path): they are part of the repository (Tests/Fixtures/)")
            throw MissingTestData(path: url.path)
        }
        let object = try JSONSerialization.jsonObject(with: data)
        return try #require(object as? [String: Any], "\(name) is not a JSON object")
    }

    struct MissingTestData: Error {
        let path: String
    }
}

func bytes(_ hex: String) throws -> [UInt8] {
    try #require([UInt8](hex: hex), "bad hex in test data: \(hex)")
}
