import Foundation
import XinlianConsensus
import XinlianCore
import XinlianNetwork

/// A node's configuration file, `<home>/config.json`. Relative paths are relative to the home directory.
public struct NodeConfig: Codable, Sendable, Equatable {
    public static let fileName = "config.json"

    /// This node's validator id in genesis.
    public var validator: ValidatorID
    public var genesisFile: String
    public var dataDirectory: String
    public var validatorKeyFile: String
    /// `host:port` the HTTP API listens on.
    public var apiListen: String
    /// `host:port` for peer-to-peer TCP (used once consensus among several nodes lands).
    public var p2pListen: String
    public var mempoolTransactionLimit: Int
    public var mempoolBytesLimit: Int
    /// Largest HTTP request body accepted.
    public var apiBodyLimitBytes: Int
    /// Transactions accepted in one submit request.
    public var apiBatchLimit: Int
    /// `trace`, `debug`, `info`, `notice`, `warning`, `error`, `critical`.
    public var logLevel: String
    /// This node's TLS key and self-signed certificate (PEM) for peer connections; genesis pins the key's hash.
    public var tlsKeyFile: String
    public var tlsCertificateFile: String
    /// The key that encrypts personal data at rest (`docs/security.md`): 32 random bytes, hex; created (`0600`)
    /// on first start when absent. Keep it, and its backup, apart from the data directory's.
    public var personalDataKeyFile: String
    /// `127.0.0.1:port` for the operator API (peer links cut and healed by test harnesses); loopback only.
    /// Absent: no operator API.
    public var adminListen: String?
    /// Round timeouts of consensus.
    public var consensusTimeouts: ConsensusTimeouts
    /// Peer-to-peer limits (`docs/protocol.md`); missing keys take their defaults.
    public var network: NetworkConfig
    /// Per-institution rates, connection limits and the mempool's expiry (`docs/operations.md`).
    public var limits: APILimits
    /// Serve the API over plain HTTP instead of TLS (with the node's TLS identity). Off unless set explicitly.
    public var apiPlainHTTP: Bool
    /// Serve `/metrics` on the API to anyone who can reach it (the default, for Prometheus). When false the API
    /// answers `/metrics` with `404`, and the operator API (`adminListen`, loopback only) serves it instead.
    public var apiPublicMetrics: Bool

    public init(validator: ValidatorID, apiListen: String, p2pListen: String) {
        self.validator = validator
        self.genesisFile = "genesis.json"
        self.dataDirectory = "data"
        self.validatorKeyFile = "validator.key"
        self.apiListen = apiListen
        self.p2pListen = p2pListen
        self.mempoolTransactionLimit = Mempool.defaultTransactionLimit
        self.mempoolBytesLimit = Mempool.defaultBytesLimit
        self.apiBodyLimitBytes = 8 * 1024 * 1024
        self.apiBatchLimit = 5_000
        self.logLevel = "info"
        self.tlsKeyFile = "tls.key"
        self.tlsCertificateFile = "tls.crt"
        self.personalDataKeyFile = "personal.key"
        self.adminListen = nil
        self.consensusTimeouts = ConsensusTimeouts()
        self.network = NetworkConfig()
        self.limits = APILimits()
        self.apiPlainHTTP = false
        self.apiPublicMetrics = true
    }

    private enum CodingKeys: String, CodingKey {
        case validator, genesisFile, dataDirectory, validatorKeyFile, apiListen, p2pListen, mempoolTransactionLimit,
             mempoolBytesLimit, apiBodyLimitBytes, apiBatchLimit, logLevel, tlsKeyFile, tlsCertificateFile,
             personalDataKeyFile, adminListen, consensusTimeouts, network, limits, apiPlainHTTP, apiPublicMetrics
    }

    /// Keys added after the first release are optional, so older config files still load.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        validator = try container.decode(ValidatorID.self, forKey: .validator)
        genesisFile = try container.decode(String.self, forKey: .genesisFile)
        dataDirectory = try container.decode(String.self, forKey: .dataDirectory)
        validatorKeyFile = try container.decode(String.self, forKey: .validatorKeyFile)
        apiListen = try container.decode(String.self, forKey: .apiListen)
        p2pListen = try container.decode(String.self, forKey: .p2pListen)
        mempoolTransactionLimit = try container.decode(Int.self, forKey: .mempoolTransactionLimit)
        mempoolBytesLimit = try container.decode(Int.self, forKey: .mempoolBytesLimit)
        apiBodyLimitBytes = try container.decode(Int.self, forKey: .apiBodyLimitBytes)
        apiBatchLimit = try container.decode(Int.self, forKey: .apiBatchLimit)
        logLevel = try container.decode(String.self, forKey: .logLevel)
        tlsKeyFile = try container.decodeIfPresent(String.self, forKey: .tlsKeyFile) ?? "tls.key"
        tlsCertificateFile = try container.decodeIfPresent(String.self, forKey: .tlsCertificateFile) ?? "tls.crt"
        personalDataKeyFile = try container.decodeIfPresent(String.self, forKey: .personalDataKeyFile) ?? "personal.key"
        adminListen = try container.decodeIfPresent(String.self, forKey: .adminListen)
        consensusTimeouts = try container.decodeIfPresent(ConsensusTimeouts.self, forKey: .consensusTimeouts)
            ?? ConsensusTimeouts()
        network = try container.decodeIfPresent(NetworkConfig.self, forKey: .network) ?? NetworkConfig()
        limits = try container.decodeIfPresent(APILimits.self, forKey: .limits) ?? APILimits()
        apiPlainHTTP = try container.decodeIfPresent(Bool.self, forKey: .apiPlainHTTP) ?? false
        apiPublicMetrics = try container.decodeIfPresent(Bool.self, forKey: .apiPublicMetrics) ?? true
        if let adminListen {
            let address = try HostPort(adminListen)
            guard ["127.0.0.1", "localhost", "::1", "[::1]"].contains(address.host) else {
                throw VerificationError(code: "invalid_config", message: "adminListen must be a loopback address, not \(adminListen)")
            }
        }
    }

    public static func load(home: String) throws -> NodeConfig {
        let data = try Data(contentsOf: URL(fileURLWithPath: home + "/" + fileName))
        return try JSONDecoder().decode(NodeConfig.self, from: data)
    }

    public func write(home: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(self).write(to: URL(fileURLWithPath: home + "/" + Self.fileName))
    }

    /// `path` made absolute against `home`.
    public static func resolve(_ path: String, home: String) -> String {
        path.hasPrefix("/") ? path : home + "/" + path
    }
}

/// What one institution, and all callers together, may ask of a node's API. Every key is optional in `node.json`.
public struct APILimits: Codable, Sendable, Equatable {
    /// Transactions per second one institution may have admitted (sustained), and the burst above it.
    public var submissionsPerSecond: Double = 5_000
    public var submissionBurst: Double = 20_000
    /// Signed reads and report queries per second one institution may make, and the burst.
    public var readsPerSecond: Double = 100
    public var readBurst: Double = 1_000
    /// Failed authentications per second one client address (IPv4 address or IPv6 /64) may cause, and the burst;
    /// past them the address is refused before any more of its signatures are checked.
    public var failedAuthenticationsPerSecond: Double = 10
    public var failedAuthenticationBurst: Double = 100
    /// Addresses of reverse proxies (TLS terminators, load balancers) in front of the API. A request whose socket
    /// comes from one is budgeted by the client the proxy names in `X-Forwarded-For` (the rightmost entry that is
    /// not itself a trusted proxy); from anyone else that header is ignored, so it cannot be used to evade.
    public var trustedProxies: [String] = []
    /// Open HTTP connections at once, all callers together; past it, new connections wait.
    public var maxConnections: Int = 1_024
    /// Seconds an idle HTTP connection is kept open.
    public var idleTimeoutSeconds: Int = 60
    /// Seconds a transaction may wait in the mempool before it is dropped (`expired`); 0 keeps it for ever.
    public var mempoolExpirySeconds: UInt64 = Mempool.defaultExpiryMs / 1_000

    public init() {}

    private enum CodingKeys: String, CodingKey {
        case submissionsPerSecond, submissionBurst, readsPerSecond, readBurst, failedAuthenticationsPerSecond,
             failedAuthenticationBurst, trustedProxies, maxConnections, idleTimeoutSeconds, mempoolExpirySeconds
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = APILimits()
        submissionsPerSecond = try container.decodeIfPresent(Double.self, forKey: .submissionsPerSecond) ?? defaults.submissionsPerSecond
        submissionBurst = try container.decodeIfPresent(Double.self, forKey: .submissionBurst) ?? defaults.submissionBurst
        readsPerSecond = try container.decodeIfPresent(Double.self, forKey: .readsPerSecond) ?? defaults.readsPerSecond
        readBurst = try container.decodeIfPresent(Double.self, forKey: .readBurst) ?? defaults.readBurst
        failedAuthenticationsPerSecond = try container.decodeIfPresent(Double.self, forKey: .failedAuthenticationsPerSecond)
            ?? defaults.failedAuthenticationsPerSecond
        failedAuthenticationBurst = try container.decodeIfPresent(Double.self, forKey: .failedAuthenticationBurst)
            ?? defaults.failedAuthenticationBurst
        trustedProxies = try container.decodeIfPresent([String].self, forKey: .trustedProxies) ?? defaults.trustedProxies
        for proxy in trustedProxies where ClientAddress(literal: proxy).ipLiteral == nil {
            throw VerificationError(code: "invalid_config", message: "limits.trustedProxies: \(proxy) is not an IP address")
        }
        maxConnections = try container.decodeIfPresent(Int.self, forKey: .maxConnections) ?? defaults.maxConnections
        idleTimeoutSeconds = try container.decodeIfPresent(Int.self, forKey: .idleTimeoutSeconds) ?? defaults.idleTimeoutSeconds
        mempoolExpirySeconds = try container.decodeIfPresent(UInt64.self, forKey: .mempoolExpirySeconds) ?? defaults.mempoolExpirySeconds
    }
}

/// Consensus round timeouts in milliseconds: each step's timeout is `base + round * delta`.
public struct ConsensusTimeouts: Codable, Sendable, Equatable {
    public var proposeMs: UInt64 = TimeoutConfig.standard.proposeMs
    public var proposeDeltaMs: UInt64 = TimeoutConfig.standard.proposeDeltaMs
    public var prevoteMs: UInt64 = TimeoutConfig.standard.prevoteMs
    public var prevoteDeltaMs: UInt64 = TimeoutConfig.standard.prevoteDeltaMs
    public var precommitMs: UInt64 = TimeoutConfig.standard.precommitMs
    public var precommitDeltaMs: UInt64 = TimeoutConfig.standard.precommitDeltaMs

    public init() {}

    public var config: TimeoutConfig {
        TimeoutConfig(proposeMs: proposeMs, proposeDeltaMs: proposeDeltaMs, prevoteMs: prevoteMs,
                      prevoteDeltaMs: prevoteDeltaMs, precommitMs: precommitMs, precommitDeltaMs: precommitDeltaMs)
    }
}

/// `host:port` split, with a clear error.
public struct HostPort: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init(_ text: String) throws(VerificationError) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65_535).contains(port) else {
            throw VerificationError(code: "invalid_address", message: "\"\(text)\" is not host:port")
        }
        self.host = String(text[..<colon])
        self.port = port
    }
}
