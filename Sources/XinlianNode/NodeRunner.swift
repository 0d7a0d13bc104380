import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Synchronization
import Logging
import Metrics
import ServiceLifecycle
import UnixSignals
import NIOPosix
import Prometheus
import XinlianCore
import XinlianCrypto
import XinlianNetwork
import XinlianStorage

/// Everything a node's home directory holds, loaded and checked.
public struct NodeHome: Sendable {
    public let home: String
    public let config: NodeConfig
    public let consortium: Consortium
    public let validatorKey: SigningKey

    public init(home: String) throws {
        self.home = home
        config = try NodeConfig.load(home: home)
        consortium = try Consortium(try Genesis.load(path: NodeConfig.resolve(config.genesisFile, home: home)))
        validatorKey = try KeyFile.load(path: NodeConfig.resolve(config.validatorKeyFile, home: home)).signingKey()
    }

    public var dataDirectory: String { NodeConfig.resolve(config.dataDirectory, home: home) }
}

/// Runs the node daemon until SIGTERM or SIGINT: the HTTP API, the replica and (with several validators) the peer
/// network and the operator API, under one swift-service-lifecycle `ServiceGroup`.
public enum NodeRunner {
    /// `plainHTTP` serves the API without TLS whatever the configuration says (`xinlian start --plain-http`).
    public static func run(home: String, logger: Logger, plainHTTP: Bool = false) async throws {
        let node = try NodeHome(home: home)
        let metrics = NodeMetrics()
        // One node per process: libraries that report through swift-metrics' global system (the peer
        // network's `xinlian_p2p_*`) land in the node's registry and on its /metrics.
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics.registry))
        let keyPath = NodeConfig.resolve(node.config.personalDataKeyFile, home: home)
        let personalKey = try PersonalDataKey.loadOrCreate(path: keyPath, dataDirectory: node.dataDirectory)
        if personalKey.created {
            logger.notice("created the key that encrypts personal data at rest; back it up apart from the data directory",
                          metadata: ["path": "\(keyPath)"])
        }
        let engine = try NodeEngine(
            consortium: node.consortium, validatorID: node.config.validator, validatorKey: node.validatorKey,
            dataDirectory: node.dataDirectory, personalDataKey: personalKey.key,
            mempool: Mempool(transactionLimit: node.config.mempoolTransactionLimit, bytesLimit: node.config.mempoolBytesLimit,
                             expiryMs: node.config.limits.mempoolExpirySeconds &* 1_000),
            metrics: metrics, logger: logger)
        let address = try HostPort(node.config.apiListen)
        let api = API(engine: engine, bodyLimitBytes: node.config.apiBodyLimitBytes,
                      batchLimit: node.config.apiBatchLimit, limits: node.config.limits,
                      publicMetrics: node.config.apiPublicMetrics)
        let identity = try TLSIdentity.load(
            keyPEMPath: NodeConfig.resolve(node.config.tlsKeyFile, home: home),
            certificatePEMPath: NodeConfig.resolve(node.config.tlsCertificateFile, home: home))
        let http = HTTPServerBuilder.http1(configuration: .init(idleTimeout: .seconds(Int64(node.config.limits.idleTimeoutSeconds))))
        let plain = plainHTTP || node.config.apiPlainHTTP
        let app = Application(router: api.router(),
                              server: plain ? http : try .tls(http, tlsConfiguration: identity.apiServerConfiguration()),
                              configuration: .init(address: .hostname(address.host, port: address.port), serverName: "xinlian",
                                                   availableConnectionsDelegate: MaximumAvailableConnections(node.config.limits.maxConnections)),
                              logger: logger)
        let status = await engine.status()
        logger.info("node starting", metadata: [
            "validator": "\(node.config.validator)", "chain": "\(status.chainId)", "height": "\(status.height)",
            "api": "\(plain ? "http" : "https")://\(node.config.apiListen)",
        ])
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: app)]
        var peerControl: any PeerControl = NoPeerControl()
        if node.consortium.validators.members.count == 1 {
            // A consortium of one: the same replica, with nobody to talk to; its heights decide at once.
            try await engine.startConsensus(link: NoPeers(), timeouts: node.config.consensusTimeouts.config)
        } else {
            let network = try PeerNetwork(
                consortium: node.consortium, local: node.config.validator, listen: node.config.p2pListen, identity: identity,
                config: node.config.network, group: MultiThreadedEventLoopGroup.singleton, logger: logger,
                localStatus: { [engine] in engine.tip.withLock { $0 } })
            try await engine.startConsensus(link: network, timeouts: node.config.consensusTimeouts.config,
                                            maxFrameBytes: node.config.network.maxFrameBytes)
            services.append(.init(service: PeerService(network: network, pump: PeerEventPump(engine: engine, link: network))))
            peerControl = network
        }
        if let adminListen = node.config.adminListen {
            let address = try HostPort(adminListen)
            let admin = Application(
                router: AdminAPI(engine: engine, peers: peerControl).router(cutState: CutRegistry()),
                configuration: .init(address: .hostname(address.host, port: address.port), serverName: "xinlian-admin"),
                logger: logger)
            services.append(.init(service: admin))
            logger.info("operator API listening", metadata: ["admin": "http://\(adminListen)"])
        }
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            await engine.shutdown()
            throw error
        }
        let height = await engine.height
        await engine.shutdown()
        logger.info("node stopped", metadata: ["height": "\(height)"])
    }
}

/// Runs the peer network for the node: starts it, carries its events into the engine, and shuts it down
/// (closing every connection) on graceful shutdown.
struct PeerService: Service {
    let network: PeerNetwork
    let pump: PeerEventPump

    func run() async throws {
        try await network.start()
        await withGracefulShutdownHandler {
            await pump.run(network.events)
        } onGracefulShutdown: { [network] in
            Task { await network.shutdown() }
        }
        await network.shutdown()
    }
}

extension PeerNetwork: PeerLink, PeerControl {}
