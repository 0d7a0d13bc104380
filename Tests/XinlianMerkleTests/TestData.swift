import Foundation
import Testing
import XinlianCrypto

/// Loads `<repo>/../shared/testdata/<name>`, located from this file's path.
enum TestData {
    static func json(_ name: String, filePath: String = #filePath) throws -> [String: Any] {
        let repo = URL(fileURLWithPath: filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let url = repo.deletingLastPathComponent().appendingPathComponent("shared/testdata/\(name)")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            Issue.record("missing test vectors at \(url.path): clone the shared/ directory beside the repo")
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
