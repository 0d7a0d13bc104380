import Foundation
import Testing
import XinlianCore
import XinlianCrypto
import XinlianStorage

/// Issue 9: the block log, the index and everything else under a node's data directory are its user's alone.
@Suite("Data directory permissions")
struct FileProtectionTests {
    static func mode(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test func aNewLedgerIsOwnerOnly() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-modes-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fixture = try LedgerFixture(suite: .ed25519SHA256)
        let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
        try fixture.grow(store, blocks: 2)
        store.close()
        #expect(try Self.mode(directory) == 0o700)
        let entries = try #require(FileManager.default.subpathsOfDirectory(atPath: directory) as [String]?)
        #expect(entries.contains { $0.hasPrefix("blocks/segment-") }, "\(entries)")
        #expect(entries.contains("index.sqlite"))
        for entry in entries {
            let path = directory + "/" + entry
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            #expect(try Self.mode(path) == (isDirectory.boolValue ? 0o700 : 0o600), "\(entry)")
        }
    }

    /// Data written by an older version (world-readable) is tightened when the node opens it.
    @Test func anOlderWorldReadableLedgerIsTightenedOnOpen() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-modes-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fixture = try LedgerFixture(suite: .ed25519SHA256)
        var store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
        try fixture.grow(store, blocks: 1)
        store.close()
        let files = FileManager.default
        for entry in try files.subpathsOfDirectory(atPath: directory) {
            var isDirectory: ObjCBool = false
            _ = files.fileExists(atPath: directory + "/" + entry, isDirectory: &isDirectory)
            try files.setAttributes([.posixPermissions: isDirectory.boolValue ? 0o755 : 0o644], ofItemAtPath: directory + "/" + entry)
        }
        try files.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory)
        store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
        store.close()
        #expect(try Self.mode(directory) == 0o700)
        #expect(try Self.mode(directory + "/index.sqlite") == 0o600)
        #expect(try Self.mode(LedgerStore.blocksDirectory(directory)) == 0o700)
    }
}
