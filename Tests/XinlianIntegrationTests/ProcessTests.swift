import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
import XinlianCore
import XinlianNode

/// Runs the real `xinlian` binary as separate processes on loopback: the one built beside the test bundle by the
/// same build (`swift build --build-tests`, as `scripts/test` runs it), never whatever `.build/debug/xinlian` holds.
struct CLI {
    /// Where `xinlian` was found, or why it was not.
    static let located: Result<String, MissingBinary> = {
        let directory = productsDirectory()
        let path = directory.appendingPathComponent("xinlian").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            return .failure(MissingBinary(description: """
                no xinlian executable beside the test bundle in \(directory.path): build it with the tests \
                (`swift build --build-tests`, which scripts/test runs) before `swift test --skip-build`
                """))
        }
        return .success(path)
    }()

    /// The path of the `xinlian` executable of this build; throws, naming the directory, when it is missing.
    static var binary: String {
        get throws { try located.get() }
    }

    struct MissingBinary: Error, CustomStringConvertible {
        let description: String
    }

    /// The build's products directory (`.build/<triple>/<configuration>/`): the directory that holds the
    /// `.xctest` bundle running these tests. On Linux the bundle is the test executable itself; on macOS it is
    /// a directory loaded by a runner, so it is looked for among the loaded bundles first.
    static func productsDirectory() -> URL {
        if let bundle = Bundle.allBundles.first(where: { $0.bundleURL.pathExtension == "xctest" }) {
            return bundle.bundleURL.deletingLastPathComponent()
        }
        let executable = Bundle.main.executableURL
            ?? URL(fileURLWithPath: CommandLine.arguments[0], relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        var url = executable.standardizedFileURL
        // Walk up out of a bundle (`….xctest/Contents/MacOS/…`) to the directory that holds it.
        var candidate = url
        while candidate.pathComponents.count > 1 {
            if candidate.pathExtension == "xctest" { return candidate.deletingLastPathComponent() }
            candidate = candidate.deletingLastPathComponent()
        }
        url.deleteLastPathComponent()
        return url
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
        var lastLine: String { stdout.split(separator: "\n").last.map(String.init) ?? "" }
    }

    /// Runs to completion; output goes through files so a large output cannot block the child.
    static func run(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> Output {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("out"), err = directory.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        let input = Pipe()
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        return Output(status: process.terminationStatus,
                      stdout: String(decoding: try Data(contentsOf: out), as: UTF8.self),
                      stderr: String(decoding: try Data(contentsOf: err), as: UTF8.self))
    }

    static func start(home: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary)
        process.arguments = ["start", "--home", home]
        let log = home + "/node.log"
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }
}

/// A port that is free right now, below Linux's ephemeral range (32768 and up): the node restarted on it
/// must be able to bind it again, and an outgoing connection elsewhere could hold an ephemeral one.
func freePort() throws -> Int { try freePortRun(1) }

/// Polls `condition` until it holds or `seconds` pass: waiting on an observable state, not a fixed sleep.
func eventually(_ seconds: Double, _ condition: () throws -> Bool) throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(50_000)
    }
    return try condition()
}

func fetchJSON(_ url: String) async throws -> [String: Any] {
    let (data, _) = try await URLSession.shared.data(from: try #require(URL(string: url)))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

/// A read of `path` signed with the institution key in `keyFile` (`X-Xinlian-Request`).
func fetchSignedJSON(_ base: String, _ path: String, keyFile: String) async throws -> [String: Any] {
    let status = try await fetchJSON(base + "/v1/status")
    let chainID = try Name(try #require(status["chainId"] as? String))
    let file = try KeyFile.load(path: keyFile)
    let signed = try SignedRequest.sign(chainID: chainID, institution: file.owner,
                                        timeMs: UInt64(Date().timeIntervalSince1970 * 1000), method: "GET", target: path,
                                        key: try file.signingKey())
    var request = URLRequest(url: try #require(URL(string: base + path)))
    request.setValue(signed.headerValue, forHTTPHeaderField: SignedRequest.headerName)
    let (data, _) = try await URLSession.shared.data(for: request)
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

@Suite("Real node processes on loopback", .serialized)
struct ProcessTests {
    /// Start a node, load it, SIGKILL it during load, restart: every block it reported committed is still
    /// there; stop it with SIGTERM (exit 0); the data and an export audit to the same line; one flipped
    /// byte in the export fails the audit.
    @Test func killDuringLoadRestartAndAudit() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-it-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let port = try freePort()
        let url = "http://127.0.0.1:\(port)"
        let testnet = try CLI.run(["testnet", "--validators", "1", "--output", root, "--api-port", String(port), "--plain-http",
                                   "--admin-port", String(try freePort())])
        try #require(testnet.status == 0, "\(testnet.stderr)")
        let home = root + "/node0"
        var node = try CLI.start(home: home)
        defer { if node.isRunning { kill(node.processIdentifier, SIGKILL) } }
        #expect(try eventually(30) { try CLI.run(["status", "--node", url]).status == 0 })

        let sampleArguments = ["--institutions", root + "/institutions", "--genesis", root + "/genesis.json"]
        let first = try CLI.run(["load", "--node", url, "--count", "300", "--seed", "1"] + sampleArguments)
        try #require(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("committed 300 transactions"))
        // At an offered rate, with names for scripts (scripts/bench): every figure present, as plain numbers.
        let paced = try CLI.run(["load", "--node", url, "--count", "100", "--seed", "3", "--rate", "500", "--format", "names"]
                                + sampleArguments)
        try #require(paced.status == 0, "\(paced.stderr)")
        let figures = Dictionary(paced.stdout.split(separator: "\n").compactMap { line -> (String, Double)? in
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let value = Double(parts[1]) else { return nil }
            return (parts[0], value)
        }, uniquingKeysWith: { $1 })
        #expect(figures["committed"] == 100, "\(paced.stdout)")
        for name in ["committed_per_s", "offered_per_s", "latency_p50_ms", "latency_p99_ms"] {
            #expect(figures[name] != nil, "\(name) missing from \(paced.stdout)")
        }

        // Load again in the background and kill the node while blocks are being committed.
        let background = Process()
        background.executableURL = URL(fileURLWithPath: try CLI.binary)
        background.arguments = ["load", "--node", url, "--count", "3000", "--batch", "50", "--seed", "2", "--timeout", "20"]
            + sampleArguments
        background.standardOutput = FileHandle.nullDevice
        background.standardError = FileHandle.nullDevice
        let before = try await fetchJSON(url + "/v1/status")
        let heightBefore = try #require(before["height"] as? Int)
        try background.run()
        var reported = heightBefore
        #expect(try eventually(30) {
            let line = try CLI.run(["status", "--node", url, "--short"]).stdout.split(separator: " ")
            reported = line.count > 2 ? Int(line[2]) ?? 0 : 0
            return reported >= heightBefore + 3
        })
        let auditorKey = root + "/institutions/auditor.key"
        let reportedHeader = try await fetchSignedJSON(url, "/v1/headers/\(reported)", keyFile: auditorKey)
        kill(node.processIdentifier, SIGKILL)
        node.waitUntilExit()
        background.waitUntilExit()

        node = try CLI.start(home: home)
        #expect(try eventually(30) { try CLI.run(["status", "--node", url]).status == 0 })
        let after = try await fetchJSON(url + "/v1/status")
        #expect(try #require(after["height"] as? Int) >= reported)
        let sameHeader = try await fetchSignedJSON(url, "/v1/headers/\(reported)", keyFile: auditorKey)
        #expect((sameHeader["header"] as? [String: Any])?["hash"] as? String
                == (reportedHeader["header"] as? [String: Any])?["hash"] as? String)

        // The restarted node still commits.
        let submitted = try CLI.run(["submit", "--node", url, "--key", root + "/institutions/registry.key", "--wait", "-"],
                                    stdin: #"{"kind":"registration","subject":"91310000MA1FL8TQ36","payload":{"name":"After restart","legalForm":"limitedLiabilityCompany","legalRepresentative":"Li Na","registeredCapital":{"minor":100000000,"currency":"CNY"},"establishedOn":"2015-03-02","registrationAuthority":"Shanghai AMR","address":"2 Nanjing Road, Shanghai","industry":"C1530"}}"#)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        #expect(submitted.stdout.contains("committed at height"))

        // An inclusion proof fetched from the node checks offline against genesis; a doctored one does not.
        let genesis = root + "/genesis.json"
        let block = try await fetchSignedJSON(url, "/v1/blocks/2", keyFile: auditorKey)
        let transactionID = try #require((block["transactions"] as? [[String: Any]])?.last?["id"] as? String)
        let proofFile = root + "/proof.json"
        let prove = try CLI.run(["audit", "prove", transactionID, "--node", url, "--key", auditorKey, "--output", proofFile])
        #expect(prove.status == 0, "\(prove.stderr)")
        let check = try CLI.run(["audit", "check-proof", proofFile, "--genesis", genesis])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.contains(transactionID))
        var proof = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: proofFile))) as? [String: Any])
        proof["leafIndex"] = ((proof["leafIndex"] as? Int) ?? 0) + 1
        try JSONSerialization.data(withJSONObject: proof).write(to: URL(fileURLWithPath: proofFile))
        let doctored = try CLI.run(["audit", "check-proof", proofFile, "--genesis", genesis])
        #expect(doctored.status != 0)
        #expect(doctored.stderr.contains("bad_proof"), "\(doctored.stderr)")

        // Graceful stop, then the offline audit of the data and of an export.
        let finalStatus = try await fetchJSON(url + "/v1/status")
        kill(node.processIdentifier, SIGTERM)
        node.waitUntilExit()
        #expect(node.terminationStatus == 0)
        let audit = try CLI.run(["audit", "verify", "--genesis", genesis, "--data", home + "/data"])
        #expect(audit.status == 0, "\(audit.stderr)")
        let expected = "height \(finalStatus["height"] as? Int ?? -1) head \(finalStatus["lastBlockHash"] as? String ?? "")"
        #expect(audit.lastLine == expected)

        let export = root + "/chain.xlx"
        #expect(try CLI.run(["export", "--data", home + "/data", "--output", export]).status == 0)
        let exported = try CLI.run(["audit", "verify", "--genesis", genesis, "--export", export])
        #expect(exported.status == 0, "\(exported.stderr)")
        #expect(exported.lastLine == expected)

        var bytes = try Data(contentsOf: URL(fileURLWithPath: export))
        for offset in [3, bytes.count / 2, bytes.count - 10] {
            bytes[offset] ^= 0x40
            try bytes.write(to: URL(fileURLWithPath: export))
            let tampered = try CLI.run(["audit", "verify", "--genesis", genesis, "--export", export])
            #expect(tampered.status != 0, "flip at \(offset) went unnoticed")
            #expect(tampered.stderr.contains("byte"), "\(tampered.stderr)")
            bytes[offset] ^= 0x40
        }
    }

    @Test func cliFailuresAreOneLineAndNonZero() throws {
        let missing = try CLI.run(["audit", "verify", "--genesis", "/nonexistent/genesis.json", "--data", "/nonexistent"])
        #expect(missing.status != 0)
        #expect(missing.stderr.split(separator: "\n").count == 1)
        let unreachable = try CLI.run(["status", "--node", "http://127.0.0.1:\(try freePort())"])
        #expect(unreachable.status != 0)
        #expect(unreachable.stderr.hasPrefix("error:"))
    }
}
