import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import XinlianNetwork
import XinlianConsensus
import XinlianCore
import XinlianCrypto

/// A consortium of `count` validators (`v0`, `v1`, ...) on 127.0.0.1, each with a fresh TLS identity
/// and a free port picked by binding port 0 first.
struct NetFixture {
    static let chainID: ChainID = "xinlian-net-test"
    let ids: [ValidatorID]
    let identities: [ValidatorID: TLSIdentity]
    let ports: [ValidatorID: Int]
    let consortium: Consortium

    init(count: Int, chainID: ChainID = Self.chainID, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton)
        async throws {
        let suite = CryptoSuite.ed25519SHA256
        func key(_ n: Int) throws -> SigningKey {
            try suite.signingKey(privateKey: [UInt8](repeating: 0, count: 31) + [UInt8(n)])
        }
        var ids: [ValidatorID] = []
        var identities: [ValidatorID: TLSIdentity] = [:]
        var ports: [ValidatorID: Int] = [:]
        var records: [ValidatorRecord] = []
        for index in 0..<count {
            let id = try Name("v\(index)")
            let identity = try TLSIdentity.generate(commonName: id.value)
            let port = try await Self.freePort(group: group)
            ids.append(id)
            identities[id] = identity
            ports[id] = port
            records.append(ValidatorRecord(id: id, institution: "bank-a", publicKey: try key(index + 1).publicKey.bytes.hexString,
                                           power: 10, p2pAddress: "127.0.0.1:\(port)", apiAddress: "127.0.0.1:1",
                                           tlsKeySHA256: identity.publicKeySHA256))
        }
        let genesis = Genesis(chainId: chainID, cryptoSuite: .ed25519SHA256, genesisTimeMs: 1_764_000_000_000,
                              parameters: .defaults,
                              institutions: [InstitutionRecord(id: "bank-a", name: "Bank A", roles: [.member],
                                                               publicKey: try key(100).publicKey.bytes.hexString)],
                              validators: records)
        consortium = try Consortium(genesis)
        self.ids = ids
        self.identities = identities
        self.ports = ports
    }

    /// A free port below Linux's ephemeral range (32768 and up): a port from bind(0) is ephemeral, and an
    /// outgoing connection of a test running alongside can take it before a restarted node binds it again. Ports
    /// come from this target's own band (the node and integration tests, run in the same process, have theirs) and
    /// are handed out once each per run, so two tests never race for one.
    static func freePort(group: any EventLoopGroup) async throws -> Int {
        for _ in 0..<200 {
            let port = portBand.lowerBound + nextPort.wrappingAdd(1, ordering: .relaxed).oldValue % portBand.count
            if let channel = try? await ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .bind(host: "127.0.0.1", port: port).get() {
                try await channel.close()
                return port
            }
        }
        throw NetworkError("no free port found")
    }

    static let portBand = 20_000..<23_000
    static let nextPort = Atomic<Int>(Int.random(in: 0..<3_000))

    func address(_ id: ValidatorID) -> String { "127.0.0.1:\(ports[id] ?? 0)" }

    static var fastConfig: NetworkConfig {
        var config = NetworkConfig()
        config.reconnectMinMs = 20
        config.reconnectMaxMs = 200
        // Generous: the full test suite loads both cores, and a refusal must be for its own reason, not a timeout.
        config.handshakeTimeoutMs = 10_000
        config.statusIntervalMs = 100
        config.maxFrameBytes = 1024 * 1024
        return config
    }

    /// A started network for `id`, with its events recorded (from the start, or once
    /// ``TestNode/startConsuming()`` is called when `consuming` is false).
    func node(_ id: ValidatorID, config: NetworkConfig = Self.fastConfig, height: UInt64 = 7,
              consuming: Bool = true) async throws -> TestNode {
        let identity = try #require(identities[id])
        let logs = LogStore()
        var logger = Logger(label: "p2p.\(id)") { _ in CapturingLogHandler(store: logs) }
        logger.logLevel = .debug
        let network = try PeerNetwork(consortium: consortium, local: id, listen: address(id), identity: identity,
                                      config: config, group: MultiThreadedEventLoopGroup.singleton, logger: logger,
                                      localStatus: { PeerStatus(height: height, lastBlockHash: .zero) })
        let node = TestNode(id: id, network: network, logs: logs)
        if consuming { node.startConsuming() }
        try await network.start()
        return node
    }
}

/// A network under test, its event history and its log lines.
final class TestNode: Sendable {
    let id: ValidatorID
    let network: PeerNetwork
    let log = EventLog()
    let logs: LogStore
    private let consumer = Mutex<Task<Void, Never>?>(nil)

    init(id: ValidatorID, network: PeerNetwork, logs: LogStore) {
        self.id = id
        self.network = network
        self.logs = logs
    }

    /// Starts taking the network's events into ``log`` (once).
    func startConsuming() {
        let (network, log) = (network, log)
        consumer.withLock { task in
            guard task == nil else { return }
            task = Task {
                for await event in network.events { log.append(event) }
            }
        }
    }

    func shutdown() async {
        await network.shutdown()
        await consumer.withLock { $0 }?.value
    }
}

/// Plain TCP connections that never send a byte (not even a TLS ClientHello), from a chosen loopback source
/// address: the pre-authentication flood of issue 8, attack 7.
final class SilentTCPFlood: Sendable {
    let channels: [any Channel]
    private let counter: CloseCounter

    private final class CloseCounter: Sendable {
        let count = Atomic<Int>(0)
    }

    private init(channels: [any Channel], counter: CloseCounter) {
        self.channels = channels
        self.counter = counter
    }

    /// Opens `count` connections to `127.0.0.1:port` from `source` (any 127.x.y.z address on Linux).
    static func open(count: Int, toPort port: Int, from source: String,
                     group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> SilentTCPFlood {
        let counter = CloseCounter()
        var channels: [any Channel] = []
        let local = try SocketAddress(ipAddress: source, port: 0)
        for _ in 0..<count {
            let channel = try await ClientBootstrap(group: group)
                .bind(to: local)
                .connect(host: "127.0.0.1", port: port).get()
            channel.closeFuture.whenComplete { _ in counter.count.add(1, ordering: .relaxed) }
            channels.append(channel)
        }
        return SilentTCPFlood(channels: channels, counter: counter)
    }

    /// Connections closed so far (by the node: the flood never closes one itself before ``close()``).
    var closed: Int { counter.count.load(ordering: .relaxed) }

    /// True once at least `count` connections are closed; false after `timeout`.
    func waitUntilClosed(atLeast count: Int, timeout: Duration = .seconds(5)) async -> Bool {
        await poll(timeout: timeout) { self.closed >= count }
    }

    func close() async {
        for channel in channels { try? await channel.close() }
    }
}

/// Polls `condition` every 10 ms until it holds (true) or `timeout` passes (false): for conditions that have no
/// event to wait on, such as counters.
func poll(timeout: Duration = .seconds(5), _ condition: @Sendable () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if condition() { return true }
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: .milliseconds(10))
    }
}

/// Every event seen, with waiters on predicates over the history.
final class EventLog: Sendable {
    typealias Predicate = @Sendable ([NetworkEvent]) -> Bool

    private struct State {
        var events: [NetworkEvent] = []
        var waiters: [(id: Int, predicate: Predicate, continuation: CheckedContinuation<Bool, Never>)] = []
        var nextID = 0
    }

    private let state = Mutex(State())

    var events: [NetworkEvent] { state.withLock { $0.events } }
    var count: Int { state.withLock { $0.events.count } }

    func append(_ event: NetworkEvent) {
        let ready = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.events.append(event)
            let events = state.events
            let (done, waiting) = (state.waiters.filter { $0.predicate(events) }, state.waiters.filter { !$0.predicate(events) })
            state.waiters = waiting
            return done.map(\.continuation)
        }
        for continuation in ready { continuation.resume(returning: true) }
    }

    /// True as soon as `predicate` holds over the history; false after `timeout`.
    func wait(timeout: Duration = .seconds(5), _ predicate: @escaping Predicate) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let id = state.withLock { state -> Int? in
                if predicate(state.events) { return nil }
                state.nextID += 1
                state.waiters.append((state.nextID, predicate, continuation))
                return state.nextID
            }
            guard let id else { return continuation.resume(returning: true) }
            Task {
                try? await Task.sleep(for: timeout)
                let expired = self.state.withLock { state -> CheckedContinuation<Bool, Never>? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.waiters.remove(at: index).continuation
                }
                expired?.resume(returning: false)
            }
        }
    }

    /// Waits until `peer` connected after history position `after`.
    func connected(_ peer: ValidatorID, after: Int = 0, timeout: Duration = .seconds(5)) async -> Bool {
        await wait(timeout: timeout) { events in
            events.dropFirst(after).contains { if case .connected(peer, _) = $0 { true } else { false } }
        }
    }

    func disconnected(_ peer: ValidatorID, after: Int = 0, timeout: Duration = .seconds(5)) async -> Bool {
        await wait(timeout: timeout) { events in
            events.dropFirst(after).contains { if case .disconnected(peer, _) = $0 { true } else { false } }
        }
    }

    func disconnectReasons(_ peer: ValidatorID) -> [String] {
        events.compactMap { if case .disconnected(peer, let reason) = $0 { reason } else { nil } }
    }

    func received(_ peer: ValidatorID, after: Int = 0, timeout: Duration = .seconds(5),
                  _ match: @escaping @Sendable (WireMessage) -> Bool) async -> Bool {
        await wait(timeout: timeout) { events in
            events.dropFirst(after).contains { if case .message(peer, let message) = $0 { match(message) } else { false } }
        }
    }
}

final class LogStore: Sendable {
    typealias Line = (level: Logger.Level, message: String, metadata: Logger.Metadata)

    private struct State {
        var lines: [Line] = []
        var waiters: [(id: Int, text: String, continuation: CheckedContinuation<Bool, Never>)] = []
        var nextID = 0
    }

    private let state = Mutex(State())

    private static func render(_ line: Line) -> String { "\(line.message) \(line.metadata)" }

    func append(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata) {
        let ready = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            let line = (level, message, metadata)
            state.lines.append(line)
            guard level >= .warning else { return [] }
            let text = Self.render(line)
            let done = state.waiters.filter { text.contains($0.text) }
            state.waiters.removeAll { text.contains($0.text) }
            return done.map(\.continuation)
        }
        for continuation in ready { continuation.resume(returning: true) }
    }

    var all: [String] { state.withLock { $0.lines.map { "\($0.level) \(Self.render($0))" } } }

    /// Lines at warning or above whose message or metadata mention `text`.
    func warnings(containing text: String) -> [String] {
        state.withLock { $0.lines.filter { $0.level >= .warning }.map(Self.render).filter { $0.contains(text) } }
    }

    /// True as soon as a line at warning or above mentions `text`; false after `timeout`.
    func waitForWarning(containing text: String, timeout: Duration = .seconds(5)) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let id = state.withLock { state -> Int? in
                if state.lines.contains(where: { $0.level >= .warning && Self.render($0).contains(text) }) { return nil }
                state.nextID += 1
                state.waiters.append((state.nextID, text, continuation))
                return state.nextID
            }
            guard let id else { return continuation.resume(returning: true) }
            Task {
                try? await Task.sleep(for: timeout)
                let expired = self.state.withLock { state -> CheckedContinuation<Bool, Never>? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.waiters.remove(at: index).continuation
                }
                expired?.resume(returning: false)
            }
        }
    }
}

struct CapturingLogHandler: LogHandler {
    let store: LogStore
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        store.append(event.level, "\(event.message)", metadata.merging(event.metadata ?? [:]) { $1 })
    }
}
