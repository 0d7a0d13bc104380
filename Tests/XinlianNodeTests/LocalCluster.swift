import Foundation
import Logging
import Synchronization
import Testing
import XinlianConsensus
import XinlianCore
import XinlianCrypto
import XinlianNetwork
import XinlianNode

/// An in-process network for engines: ordered delivery per receiver, links that can be cut and healed,
/// and a record of every disconnect a node asked for (with its reason).
final class LocalHub: Sendable {
    struct State {
        var inboxes: [ValidatorID: AsyncStream<NetworkEvent>.Continuation] = [:]
        var engines: [ValidatorID: NodeEngine] = [:]
        /// Pairs (smaller id first) that are currently connected.
        var links: Set<[ValidatorID]> = []
        var cut: Set<[ValidatorID]> = []
        var drops: [(by: ValidatorID, peer: ValidatorID, reason: String)] = []
        /// Messages observed from each sender, for hostile-peer tests that replay or forge them.
        var tap: [(from: ValidatorID, message: WireMessage)] = []
        /// Percentage of consensus messages lost in transit (a seeded generator decides which).
        var lossPercent: UInt64 = 0
        var random = SplitMix(seed: 1)
        var lost = 0
    }

    /// A small seeded generator (SplitMix64), so that which messages are lost does not depend on the system's.
    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Loses `percent` of consensus messages from now on (seeded with `seed`).
    func lose(percent: UInt64, seed: UInt64) {
        state.withLock {
            $0.lossPercent = percent
            $0.random = SplitMix(seed: seed)
        }
    }

    var lostCount: Int { state.withLock { $0.lost } }

    let state = Mutex(State())
    let pumpTasks = Mutex<[Task<Void, Never>]>([])

    static func pair(_ a: ValidatorID, _ b: ValidatorID) -> [ValidatorID] { a < b ? [a, b] : [b, a] }

    func link(for id: ValidatorID) -> HubLink { HubLink(hub: self, local: id) }

    /// Registers `engine`, starts its pump, and connects it to every registered engine not cut off from it.
    func attach(_ engine: NodeEngine) {
        let id = engine.validatorID
        let (stream, continuation) = AsyncStream.makeStream(of: NetworkEvent.self)
        let pump = PeerEventPump(engine: engine, link: link(for: id))
        pumpTasks.withLock { $0.append(Task { await pump.run(stream) }) }
        let others = state.withLock { state in
            state.inboxes[id] = continuation
            state.engines[id] = engine
            return state.engines.keys.filter { $0 != id }
        }
        for other in others { connect(id, other) }
    }

    /// Removes `id` as if its process died: its peers see a disconnect, its inbox closes.
    func detach(_ id: ValidatorID) {
        let peers = state.withLock { state in
            let peers = state.links.filter { $0.contains(id) }.compactMap { $0.first { $0 != id } }
            state.links = state.links.filter { !$0.contains(id) }
            state.inboxes[id]?.finish()
            state.inboxes[id] = nil
            state.engines[id] = nil
            return peers
        }
        for peer in peers { deliver(.disconnected(id, reason: "process gone"), to: peer) }
    }

    func connect(_ a: ValidatorID, _ b: ValidatorID) {
        let engines: (NodeEngine, NodeEngine)? = state.withLock { state in
            let pair = Self.pair(a, b)
            guard !state.cut.contains(pair), !state.links.contains(pair), let ea = state.engines[a], let eb = state.engines[b]
            else { return nil }
            state.links.insert(pair)
            return (ea, eb)
        }
        guard let (ea, eb) = engines else { return }
        deliver(.connected(b, hello(eb)), to: a)
        deliver(.connected(a, hello(ea)), to: b)
    }

    func hello(_ engine: NodeEngine) -> PeerHello {
        let tip = engine.tip.withLock { $0 }
        return PeerHello(protocolVersion: 1, chainID: engine.consortium.chainID, genesisHash: engine.consortium.genesisHash,
                         validator: engine.validatorID, height: tip.height, lastBlockHash: tip.lastBlockHash)
    }

    func sever(_ a: ValidatorID, _ b: ValidatorID, reason: String) {
        let was = state.withLock { $0.links.remove(Self.pair(a, b)) != nil }
        guard was else { return }
        deliver(.disconnected(b, reason: reason), to: a)
        deliver(.disconnected(a, reason: reason), to: b)
    }

    func cut(_ a: ValidatorID, _ b: ValidatorID) {
        state.withLock { _ = $0.cut.insert(Self.pair(a, b)) }
        sever(a, b, reason: "cut")
    }

    func heal(_ a: ValidatorID, _ b: ValidatorID) {
        state.withLock { _ = $0.cut.remove(Self.pair(a, b)) }
        connect(a, b)
    }

    func deliver(_ event: NetworkEvent, to id: ValidatorID) {
        let inbox = state.withLock { $0.inboxes[id] }
        inbox?.yield(event)
    }

    func send(_ message: WireMessage, from: ValidatorID, to: ValidatorID, tap: Bool = true) {
        let connected = state.withLock { state in
            if tap { state.tap.append((from, message)) }
            if case .consensus = message, state.lossPercent > 0, state.random.next() % 100 < state.lossPercent {
                state.lost += 1
                return false
            }
            return state.links.contains(Self.pair(from, to))
        }
        if connected { deliver(.message(from, message), to: to) }
    }

    /// Messages `from` sent or broadcast so far.
    func sent(by from: ValidatorID) -> [WireMessage] {
        state.withLock { $0.tap.filter { $0.from == from }.map(\.message) }
    }

    func broadcast(_ message: WireMessage, from: ValidatorID) {
        let peers = state.withLock { state in
            state.tap.append((from, message))
            return state.links.filter { $0.contains(from) }.compactMap { $0.first { $0 != from } }.sorted()
        }
        for peer in peers { send(message, from: from, to: peer, tap: false) }
    }

    var drops: [(by: ValidatorID, peer: ValidatorID, reason: String)] { state.withLock { $0.drops } }

    func stop() {
        state.withLock { state in
            for inbox in state.inboxes.values { inbox.finish() }
            state.inboxes = [:]
        }
        for task in pumpTasks.withLock({ $0 }) { task.cancel() }
    }
}

struct HubLink: PeerLink {
    let hub: LocalHub
    let local: ValidatorID

    func broadcast(_ message: WireMessage) { hub.broadcast(message, from: local) }
    func send(_ message: WireMessage, to peer: ValidatorID) { hub.send(message, from: local, to: peer) }
    func disconnect(_ peer: ValidatorID, reason: String) {
        hub.state.withLock { $0.drops.append((local, peer, reason)) }
        hub.sever(local, peer, reason: reason)
    }
}

/// N validators with keys in temporary directories, and a member institution to sign transactions.
struct LocalConsortium {
    let directory: String
    let consortium: Consortium
    let validatorKeys: [SigningKey]
    let institutionKey: SigningKey
    static let timeouts = TimeoutConfig(proposeMs: 400, proposeDeltaMs: 100, prevoteMs: 200, prevoteDeltaMs: 100,
                                        precommitMs: 200, precommitDeltaMs: 100)

    init(validators count: Int, parameters: ConsensusParameters = .defaults) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-bft-\(UUID().uuidString)").path
        let suite = CryptoSuite.ed25519SHA256
        validatorKeys = (0..<count).map { _ in suite.generateSigningKey() }
        institutionKey = suite.generateSigningKey()
        consortium = try Consortium(Genesis(
            chainId: "xinlian-bft-test", cryptoSuite: .ed25519SHA256, genesisTimeMs: 1_764_000_000_000,
            parameters: parameters,
            institutions: [InstitutionRecord(id: "bank-a", name: "Bank A", roles: [.member],
                                             publicKey: institutionKey.publicKey.bytes.hexString)],
            validators: try validatorKeys.enumerated().map { index, key in
                ValidatorRecord(id: try Name("node\(index)"), institution: "bank-a", publicKey: key.publicKey.bytes.hexString,
                                power: 10, p2pAddress: "127.0.0.1:1", apiAddress: "127.0.0.1:2")
            }))
    }

    func id(_ index: Int) -> ValidatorID { consortium.validators.members[index].id }

    /// Opens node `index`'s engine on its data directory and starts consensus over `hub`.
    func start(_ index: Int, hub: LocalHub) async throws -> NodeEngine {
        var logger = Logger(label: "node\(index)")
        logger.logLevel = .warning
        let engine = try NodeEngine(consortium: consortium, validatorID: id(index), validatorKey: validatorKeys[index],
                                    dataDirectory: "\(directory)/node\(index)", metrics: NodeMetrics(), logger: logger)
        try await engine.startConsensus(link: hub.link(for: id(index)), timeouts: Self.timeouts)
        hub.attach(engine)
        return engine
    }

    func transactions(_ range: Range<Int>) throws -> [Transaction] {
        try range.map { n in
            let body = TransactionBody(chainID: consortium.chainID, kind: .facilityOpened, reporter: "bank-a",
                                       subject: try USCC.withCheckCharacter(String(format: "91310000%09d", n % 11)),
                                       timeMs: 1_764_000_000_000, nonce: UInt64(n),
                                       payload: try Payload.canonicalize(.object([
                                           "facilityId": .string("F-\(n)"), "type": .string("loan"),
                                           "amount": .object(["minor": .integer(Int64(n + 1) * 100_000), "currency": .string("CNY")]),
                                           "openedOn": .string("2025-01-10"), "maturesOn": .string("2027-01-10"),
                                           "security": .string("unsecured"), "classification": .string("normal"),
                                       ])))
            return try Transaction.sign(body, with: institutionKey)
        }
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

struct TimedOut: Error, CustomStringConvertible {
    let description: String
}

/// Runs `body`, failing with `TimedOut` if it takes longer than `seconds`.
func within<T: Sendable>(_ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw TimedOut(description: "timed out after \(seconds) s waiting for \(what)")
        }
        return value
    }
}

/// Waits until every engine reaches `height` and then checks they hold the same block there.
func expectAgreement(_ engines: [NodeEngine], atLeast height: UInt64, seconds: Double = 20) async throws {
    for engine in engines {
        try await within(seconds, "\(engine.validatorID) to reach height \(height)") { await engine.waitUntilHeight(height) }
    }
    var hashes: Set<Hash32> = []
    for engine in engines {
        hashes.insert(try await engine.record(at: height).block.header.hash(engine.consortium.suite))
    }
    #expect(hashes.count == 1, "nodes disagree at height \(height)")
}

/// Waits until every transaction is committed on every engine (each wait bounded by `seconds`).
func expectCommitted(_ transactions: [Transaction], on engines: [NodeEngine], seconds: Double) async throws {
    for engine in engines {
        for transaction in transactions {
            let id = transaction.id(engine.consortium.suite)
            try await within(seconds, "\(engine.validatorID) to commit \(id)") {
                while true {
                    try Task.checkCancellation()
                    // The height before the check: a commit between the check and the wait then ends the wait at
                    // once (reading it after could wait for a block an idle cluster never makes).
                    let height = await engine.height
                    if case .committed = await engine.stateOf(id) { return }
                    await engine.waitUntilHeight(height + 1)
                }
            }
        }
    }
}
