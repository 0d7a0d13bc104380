import ArgumentParser
import Foundation
import Logging
import XinlianCore
import XinlianCrypto
import XinlianNetwork
import XinlianNode
import XinlianStorage

struct Testnet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write keys, configs and one genesis for an N-validator local consortium.",
        discussion: Help.paragraphs(
            "Writes DIR/genesis.json, node homes DIR/node0 ... DIR/node{N-1} (config.json, validator.key, data/), and "
                + "sample institution keys under DIR/institutions/ (bank-a, bank-b, registry, regulator, bureau, auditor).",
            "Start each node with `xinlian start --home DIR/nodeI`; scripts/cluster up does all of it.",
            Help.example("xinlian testnet --validators 4 --output .cluster")))

    @Option(help: "Number of validators.") var validators: Int = 4
    @Option(help: "Output directory (must not already hold a genesis).") var output: String
    @Option(help: "Crypto suite.") var suite: CryptoSuiteID = .ed25519SHA256
    @Option(help: "Chain id.") var chainId: String = "xinlian-local"
    @Option(help: "First API port; node i listens on port + i.") var apiPort: Int = 8600
    @Option(help: "First peer-to-peer port; node i listens on port + i.") var p2pPort: Int = 26600
    @Option(help: "First loopback operator-API port; node i listens on port + i.") var adminPort: Int = 8700
    @Option(help: "Empty heartbeat block interval in milliseconds (0: none).") var heartbeatMs: UInt64 = 0
    @Flag(help: "Configure the nodes to serve their API over plain HTTP instead of TLS.") var plainHTTP = false

    func run() async throws {
        try await reportingErrors {
            guard (1...100).contains(validators) else { throw CLIError("--validators must be between 1 and 100") }
            let plan = TestnetPlan(validators: validators, suite: suite, chainID: try Name(chainId),
                                   apiPort: apiPort, p2pPort: p2pPort, adminPort: adminPort, heartbeatMs: heartbeatMs,
                                   plainHTTP: plainHTTP)
            try plan.write(to: output)
            print("wrote \(output)/genesis.json, \(validators) node home(s) and \(TestnetPlan.sampleInstitutions.count) institution keys")
            for index in 0..<validators {
                print("node\(index)  \(output)/node\(index)  \(plainHTTP ? "http" : "https")://127.0.0.1:\(apiPort + index)")
            }
        }
    }
}

/// What `xinlian testnet` generates.
struct TestnetPlan {
    static let sampleInstitutions: [(String, String, [InstitutionRole])] = [
        ("bank-a", "Sample Bank A", [.member]),
        ("bank-b", "Sample Bank B", [.member]),
        ("registry", "Sample Registry Authority", [.registry]),
        ("regulator", "Sample Regulator", [.regulator]),
        ("bureau", "Sample Credit Bureau", [.bureau]),
        ("auditor", "Sample Audit Firm", [.auditor]),
    ]

    let validators: Int
    let suite: CryptoSuiteID
    let chainID: ChainID
    let apiPort: Int
    let p2pPort: Int
    let adminPort: Int
    let heartbeatMs: UInt64
    var plainHTTP = false

    func write(to output: String) throws {
        let manager = FileManager.default
        guard !manager.fileExists(atPath: output + "/genesis.json") else {
            throw CLIError("\(output)/genesis.json already exists; remove \(output) first")
        }
        try manager.createDirectory(atPath: output + "/institutions", withIntermediateDirectories: true)
        let cryptoSuite = CryptoSuite(suite)
        var institutions: [InstitutionRecord] = []
        for (id, name, roles) in Self.sampleInstitutions {
            let key = cryptoSuite.generateSigningKey()
            try KeyFile(owner: try Name(id), key: key).write(path: "\(output)/institutions/\(id).key")
            institutions.append(InstitutionRecord(id: try Name(id), name: name, roles: roles,
                                                  publicKey: key.publicKey.bytes.hexString))
        }
        var records: [ValidatorRecord] = []
        for index in 0..<validators {
            let home = "\(output)/node\(index)"
            try manager.createDirectory(atPath: home + "/data", withIntermediateDirectories: true)
            let id = try Name("node\(index)")
            let key = cryptoSuite.generateSigningKey()
            try KeyFile(owner: id, key: key).write(path: home + "/validator.key")
            var config = NodeConfig(validator: id, apiListen: "127.0.0.1:\(apiPort + index)",
                                    p2pListen: "127.0.0.1:\(p2pPort + index)")
            config.adminListen = "127.0.0.1:\(adminPort + index)"
            config.apiPlainHTTP = plainHTTP
            try config.write(home: home)
            let tls = try TLSIdentity.generate(commonName: id.value)
            try tls.write(keyPEMPath: home + "/" + config.tlsKeyFile, certificatePEMPath: home + "/" + config.tlsCertificateFile)
            let operatorID = institutions[index % 2].id
            records.append(ValidatorRecord(id: id, institution: operatorID, publicKey: key.publicKey.bytes.hexString, power: 10,
                                           p2pAddress: config.p2pListen, apiAddress: config.apiListen,
                                           tlsKeySHA256: tls.publicKeySHA256))
        }
        var parameters = ConsensusParameters.defaults
        parameters.heartbeatIntervalMs = heartbeatMs
        let genesis = Genesis(chainId: chainID, cryptoSuite: suite, genesisTimeMs: UInt64(Date().timeIntervalSince1970 * 1000),
                              parameters: parameters, institutions: institutions, validators: records)
        _ = try Consortium(genesis)
        let data = try genesis.jsonData()
        try data.write(to: URL(fileURLWithPath: output + "/genesis.json"))
        for index in 0..<validators {
            try data.write(to: URL(fileURLWithPath: "\(output)/node\(index)/genesis.json"))
        }
    }
}

struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create one node's home: its validator key, TLS key and certificate, and config.",
        discussion: Help.paragraphs(
            "Prints the validator entry to add to the consortium's genesis; put the agreed genesis.json in the home "
                + "before `xinlian start`.",
            Help.example("xinlian init --home /var/lib/xinlian --validator bank-a-node --suite sm2-sm3")))

    @Option(help: "Node home directory.") var home: String
    @Option(help: "This node's validator id.") var validator: String
    @Option(help: "The member institution that runs this node.") var institution: String = "your-institution"
    @Option(help: "Crypto suite of the consortium.") var suite: CryptoSuiteID = .ed25519SHA256
    @Option(help: "API listen address.") var api: String = "127.0.0.1:8600"
    @Option(help: "Peer-to-peer listen address.") var p2p: String = "127.0.0.1:26600"

    func run() async throws {
        try await reportingErrors {
            let id = try Name(validator)
            let manager = FileManager.default
            guard !manager.fileExists(atPath: home + "/" + NodeConfig.fileName) else {
                throw CLIError("\(home) is already initialised")
            }
            try manager.createDirectory(atPath: home + "/data", withIntermediateDirectories: true)
            let key = CryptoSuite(suite).generateSigningKey()
            try KeyFile(owner: id, key: key).write(path: home + "/validator.key")
            let config = NodeConfig(validator: id, apiListen: api, p2pListen: p2p)
            try config.write(home: home)
            let tls = try TLSIdentity.generate(commonName: id.value)
            try tls.write(keyPEMPath: home + "/" + config.tlsKeyFile, certificatePEMPath: home + "/" + config.tlsCertificateFile)
            try printJSON(ValidatorRecord(id: id, institution: try Name(institution), publicKey: key.publicKey.bytes.hexString,
                                          power: 10, p2pAddress: p2p, apiAddress: api, tlsKeySHA256: tls.publicKeySHA256))
        }
    }
}

struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the node daemon until SIGTERM or SIGINT.",
        discussion: Help.paragraphs(
            "Reads HOME/config.json and the genesis file and keys it names, as `xinlian init` or `xinlian testnet` wrote "
                + "them; logs go to standard error.",
            Help.example("xinlian start --home .cluster/node0")))

    @Option(help: "Node home directory.") var home: String
    @Flag(help: "Serve the API over plain HTTP instead of TLS (only on a trusted network).") var plainHTTP = false

    func run() async throws {
        try await reportingErrors {
            let config = try NodeConfig.load(home: home)
            let level = Logger.Level(rawValue: config.logLevel) ?? .info
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            var logger = Logger(label: "xinlian")
            logger.logLevel = level
            try await NodeRunner.run(home: home, logger: logger, plainHTTP: plainHTTP)
        }
    }
}

struct Keygen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create an institution's signing key file and print its genesis entry.",
        discussion: Help.paragraphs(
            "Add the printed entry to the genesis file's institutions; keep the key file private (it is written with mode 0600).",
            Help.example("""
                xinlian keygen --owner bank-c --suite sm2-sm3 --role member \\
                  --output bank-c.key
                """)))

    @Option(help: "Institution id.") var owner: String
    @Option(help: "Crypto suite of the consortium.") var suite: CryptoSuiteID = .ed25519SHA256
    @Option(help: "Role for the printed genesis entry (repeatable).") var role: [InstitutionRole] = [.member]
    @Option(help: "Key file to write (must not exist).") var output: String

    func run() async throws {
        try await reportingErrors {
            guard !FileManager.default.fileExists(atPath: output) else { throw CLIError("\(output) already exists") }
            let id = try Name(owner)
            let key = CryptoSuite(suite).generateSigningKey()
            try KeyFile(owner: id, key: key).write(path: output)
            try printJSON(InstitutionRecord(id: id, name: owner, roles: role, publicKey: key.publicKey.bytes.hexString))
        }
    }
}

struct Reindex: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rebuild a stopped node's SQLite index from its block log.",
        discussion: Help.paragraphs(
            "The block log is the record; the index is derived from it, so rebuilding loses nothing.",
            Help.example("xinlian reindex --home .cluster/node0")))

    @Option(help: "Node home directory.") var home: String

    func run() async throws {
        try await reportingErrors {
            let node = try NodeHome(home: home)
            let height = try LedgerStore.reindex(dataDirectory: node.dataDirectory, consortium: node.consortium)
            print("reindexed \(height) blocks")
        }
    }
}
