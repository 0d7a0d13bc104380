import XinlianConsensus
import XinlianCore
import XinlianCrypto

/// Why a configuration cannot be simulated.
public struct SimulationError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// A deterministic cluster simulation (TigerBeetle VOPR style): N validators, each a real ``ConsensusCore`` and a
/// shell that signs through a double-sign guard, over a simulated network and clock driven by one seed.
///
/// Invariants checked continuously: agreement (no two honest nodes commit different blocks at one height),
/// validity (every committed block passes `BlockVerifier.checkStructure`, certificate included), no evidence
/// against an honest validator; and at the end, progress after the faults heal.
public struct Simulation: Sendable {
    public let configuration: SimulationConfig

    public init(configuration: SimulationConfig) throws(SimulationError) {
        let count = configuration.validators
        guard count >= 1, count <= 64 else { throw SimulationError(description: "validators must be 1...64") }
        guard configuration.byzantine.count < count else {
            throw SimulationError(description: "at least one validator must be honest")
        }
        if let powers = configuration.powers, powers.count != count {
            throw SimulationError(description: "powers must name one power per validator")
        }
        self.configuration = configuration
    }

    /// Runs to completion (every honest node reached its target height) or to the first violation.
    public func run() throws(SimulationError) -> SimulationResult {
        var world = try World(configuration)
        world.run()
        return world.result()
    }
}

/// Everything one run mutates.
struct World {
    /// Events processed before the run is declared stuck (a bug in the simulator or the core).
    static let eventLimit = 3_000_000
    /// Trace lines kept for a failure report.
    static let traceTailLimit = 80
    /// Period of each node's status + gossip tick.
    static let tickIntervalMs: UInt64 = 300
    /// A sync request without an answer is retried after this long.
    static let syncRetryMs: UInt64 = 1_000
    /// Committed blocks per sync response.
    static let syncBatchLimit = 16
    /// Time between fault injections while faults are active.
    static let chaosIntervalMs: ClosedRange<UInt64> = 200...1_500
    /// How long a crashed node stays down (unless the faults end first).
    static let downtimeMs: ClosedRange<UInt64> = 300...3_000
    /// Evidence kept in the result (all of it is counted).
    static let evidenceKeptLimit = 256
    /// Extra votes a `voteFlooder` sends with each of its votes.
    static let floodVotesPerStep = 8
    /// Messages of decided heights a `replayer` keeps to send again.
    static let replayKeptLimit = 32
    /// How far beyond its chain a `lyingSync` validator claims to be.
    static let inflatedHeights: UInt64 = 50

    enum Event {
        case deliver(from: Int, to: Int, NetworkMessage)
        case timeout(node: Int, incarnation: UInt64, Timeout)
        case tick(node: Int, incarnation: UInt64)
        case chaos
        case healPartition
        case restart(node: Int)
        case heal
    }

    let configuration: SimulationConfig
    let setup: SimulatedConsortium
    let verifier = CachingVerifier()
    var random: SplitMix64
    var queue = EventQueue<Event>()
    var nowMs: UInt64 = 0
    var nodes: [SimNode]
    var partition: [Int]?
    var healed = false
    var targetHeight: UInt64
    var committedHashes: [UInt64: Hash32] = [:]
    var verifiedRecords: Set<CommittedBlock> = []
    var violations: [Violation] = []
    var evidence: [Equivocation] = []
    var eventCount = 0
    var trace = TraceLog()
    var hostileSent = 0
    var refusedByHonest = 0

    init(_ configuration: SimulationConfig) throws(SimulationError) {
        self.configuration = configuration
        let powers = configuration.powers ?? Array(repeating: 10, count: configuration.validators)
        do { setup = try SimulatedConsortium(powers: powers) } catch {
            throw SimulationError(description: "cannot build the consortium: \(error)")
        }
        random = SplitMix64(seed: configuration.seed)
        let firstByzantine = configuration.validators - configuration.byzantine.count
        let members = setup.validators.members
        nodes = setup.keys.enumerated().map { index, key in
            SimNode(index: index, id: members[index].id, key: key,
                    behaviour: index >= firstByzantine ? configuration.byzantine[index - firstByzantine] : nil)
        }
        targetHeight = configuration.heights
        trace.keepsAll = configuration.recordsFullTrace
    }

    var honest: [Int] { nodes.indices.filter { nodes[$0].isHonest } }

    mutating func run() {
        for index in nodes.indices where nodes[index].behaviour != .silent { restart(index) }
        queue.push(.heal, at: configuration.faults.faultyPeriodMs)
        if configuration.faults.faultyPeriodMs > 0 { queue.push(.chaos, at: random.inRange(Self.chaosIntervalMs)) }
        while violations.isEmpty, !isDone, let (timeMs, event) = queue.pop() {
            nowMs = timeMs
            eventCount += 1
            if healed, nowMs > configuration.faults.faultyPeriodMs + configuration.progressBoundMs {
                return fail("progress", "honest heights \(honest.map { nodes[$0].chain.count }) short of \(targetHeight)")
            }
            guard eventCount < Self.eventLimit else { return fail("progress", "event limit reached") }
            handle(event)
        }
    }

    var isDone: Bool {
        healed && honest.allSatisfy { UInt64(nodes[$0].chain.count) >= targetHeight }
    }

    mutating func handle(_ event: Event) {
        switch event {
        case .deliver(let from, let to, let message):
            deliver(message, from: from, to: to)
        case .timeout(let index, let incarnation, let timeout):
            guard nodes[index].incarnation == incarnation, nodes[index].isUp else { return }
            record("n\(index) \(timeout)")
            drive(index, .timeout(timeout))
        case .tick(let index, let incarnation):
            guard nodes[index].incarnation == incarnation, nodes[index].isUp else { return }
            tick(index)
            queue.push(.tick(node: index, incarnation: incarnation), at: nowMs + Self.tickIntervalMs)
        case .chaos:
            chaos()
        case .healPartition:
            record("partition healed")
            partition = nil
        case .restart(let index):
            restart(index)
        case .heal:
            heal()
        }
    }

    /// Ends the faulty period: the network becomes synchronous and every crashed honest node restarts.
    mutating func heal() {
        healed = true
        partition = nil
        let highest = honest.map { UInt64(nodes[$0].chain.count) }.max() ?? 0
        targetHeight = max(configuration.heights, highest + configuration.progressHeights)
        record("healed; target height \(targetHeight)")
        for index in honest where !nodes[index].isUp { restart(index) }
    }

    /// (Re)starts a node from its durable state: a fresh core at the height after its chain.
    mutating func restart(_ index: Int) {
        guard !nodes[index].isUp else { return }
        nodes[index].incarnation += 1
        nodes[index].syncRequestedAtMs = nil
        record("n\(index) start at height \(nodes[index].chain.count + 1)")
        queue.push(.tick(node: index, incarnation: nodes[index].incarnation), at: nowMs + random.inRange(1...Self.tickIntervalMs))
        startCore(index)
    }

    /// A fresh core at the height after the node's chain, fed the votes it already signed there.
    mutating func startCore(_ index: Int) {
        let configuration = ConsensusConfiguration(chainID: SimulatedConsortium.chainID, suite: setup.suite,
                                                   localValidator: nodes[index].id, timeouts: configuration.timeouts)
        nodes[index].core = ConsensusCore(configuration: configuration, verifier: verifier)
        nodes[index].gate = PeerGate(chainID: SimulatedConsortium.chainID, validators: setup.validators,
                                     parameters: setup.consortium.genesis.parameters)
        drive(index, startEvent(index))
        let height = UInt64(nodes[index].chain.count + 1)
        for vote in nodes[index].ownVotes where vote.vote.height == height { drive(index, .signed(.vote(vote))) }
    }

    func startEvent(_ index: Int) -> ConsensusEvent {
        let chain = nodes[index].chain
        return .start(height: UInt64(chain.count + 1), validators: setup.validators,
                      previousBlockHash: chain.last?.block.header.hash(setup.suite) ?? setup.consortium.genesisHash)
    }

    mutating func fail(_ invariant: String, _ message: String) {
        violations.append(Violation(invariant: invariant, message: message, timeMs: nowMs))
        record("VIOLATION \(invariant): \(message)")
    }

    mutating func record(_ line: String) {
        trace.append("t=\(nowMs) \(line)")
    }

    func result() -> SimulationResult {
        SimulationResult(seed: configuration.seed, violations: violations, chains: nodes.map(\.chain), honest: honest,
                         evidence: evidence, eventCount: eventCount, endTimeMs: nowMs, traceDigest: trace.digest,
                         traceTail: trace.tail, fullTrace: trace.all, hostileMessages: hostileSent,
                         refusedByHonest: refusedByHonest)
    }
}

/// The run's trace: an FNV-1a 64 digest of every line, the last lines, and optionally all of them.
struct TraceLog {
    static let offsetBasis: UInt64 = 0xCBF2_9CE4_8422_2325
    static let prime: UInt64 = 0x0000_0100_0000_01B3

    var digest = offsetBasis
    var tail: [String] = []
    var all: [String] = []
    var keepsAll = false

    mutating func append(_ line: String) {
        for byte in line.utf8 { digest = (digest ^ UInt64(byte)) &* Self.prime }
        digest = (digest ^ 0x0A) &* Self.prime
        if tail.count >= World.traceTailLimit { tail.removeFirst() }
        tail.append(line)
        if keepsAll { all.append(line) }
    }
}
