import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals
import XinlianCore
import XinlianCrypto

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

/// Runs the node daemon until SIGTERM or SIGINT: the HTTP API and the block producer,
/// under one swift-service-lifecycle `ServiceGroup`.
public enum NodeRunner {
    public static func run(home: String, logger: Logger) async throws {
        let node = try NodeHome(home: home)
        let metrics = NodeMetrics()
        let engine = try NodeEngine(
            consortium: node.consortium, validatorID: node.config.validator, validatorKey: node.validatorKey,
            dataDirectory: node.dataDirectory,
            mempool: Mempool(transactionLimit: node.config.mempoolTransactionLimit, bytesLimit: node.config.mempoolBytesLimit),
            metrics: metrics, logger: logger)
        let address = try HostPort(node.config.apiListen)
        let api = API(engine: engine, bodyLimitBytes: node.config.apiBodyLimitBytes,
                      batchLimit: node.config.apiBatchLimit)
        let app = Application(router: api.router(),
                              configuration: .init(address: .hostname(address.host, port: address.port), serverName: "xinlian"),
                              logger: logger)
        let status = await engine.status()
        logger.info("node starting", metadata: [
            "validator": "\(node.config.validator)", "chain": "\(status.chainId)", "height": "\(status.height)",
            "api": "http://\(node.config.apiListen)",
        ])
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: app)]
        if node.consortium.validators.members.count == 1 {
            services.append(.init(service: BlockProducer(engine: engine)))
        } else {
            logger.warning("genesis names several validators: blocks need BFT consensus among them, which this build does not run yet")
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
