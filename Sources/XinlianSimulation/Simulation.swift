import XinlianConsensus
import XinlianCore
import XinlianCredit
import XinlianCrypto

/// Why a configuration cannot be simulated.
public struct SimulationError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// A deterministic cluster simulation (TigerBeetle VOPR style): N validators, each the node's own ``Replica`` (core,
/// journal, signer guard, peer gate, gossip, sync, block building and validation) over in-memory ports
/// (`SimPorts.swift`), a simulated network and clocks, all driven by one seed. Hostile validators run an honest
/// replica whose output their shell rewrites with the real keys (`Hostile.swift`).
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

/// One simulated validator: durable parts (journal, signer guard, chain) survive a crash; the replica does not.
struct SimNode {
    let index: Int
    let id: ValidatorID
    let behaviour: ByzantineBehaviour?
    let journal: SimJournal
    let signer: SimSigner
    let ledger: SimLedger
    let clock: SimClock
    var replica: Replica?
    var incarnation: UInt64 = 0
    /// Consensus messages of its own this node sent (a `replayer` sends those of decided heights again).
    var sent: [ConsensusMessage] = []

    var isHonest: Bool { behaviour == nil }
    var isUp: Bool { replica != nil }
}

/// Everything one run mutates.
struct World {
    /// Events processed before the run is declared stuck (a bug in the simulator or the replica).
    static let eventLimit = 3_000_000
    /// Trace lines kept for a failure report.
    static let traceTailLimit = 80
    /// Period of each node's status tick (the transport's periodic status frame).
    static let tickIntervalMs: UInt64 = 300
    /// How often the workload's client submits a transaction to an honest node.
    static let submitIntervalMs: UInt64 = 200
    /// A dropped connection is re-established after this long.
    static let reconnectMs: UInt64 = 1_000
    /// Time between fault injections while faults are active.
    static let chaosIntervalMs: ClosedRange<UInt64> = 200...1_500
    /// How long a crashed node stays down (unless the faults end first).
    static let downtimeMs: ClosedRange<UInt64> = 300...3_000
    /// Evidence kept in the result (all of it is counted).
    static let evidenceKeptLimit = 256
    /// Extra votes a `voteFlooder` sends with each of its votes.
    static let floodVotesPerStep = 8
    /// Own messages a `replayer` keeps to send again.
    static let replayKeptLimit = 32
    /// How far beyond its chain a `lyingSync` validator claims to be.
    static let inflatedHeights: UInt64 = 50

    enum Event {
        case deliver(from: Int, to: Int, WireMessage)
        case timer(node: Int, incarnation: UInt64, ReplicaTimer)
        case tick(node: Int, incarnation: UInt64)
        case submit
        case reconnect(Int, Int)
        case chaos
        case healPartition
        case restart(node: Int)
        case heal
    }

    let configuration: SimulationConfig
    let setup: SimulatedConsortium
    let verifier = CachingVerifier()
    let rules: PeerGate.Rules
    var random: SplitMix64
    var queue = EventQueue<Event>()
    var nowMs: UInt64 = 0
    var nodes: [SimNode]
    var partition: [Int]?
    var healed = false
    var targetHeight: UInt64
    var submitted: UInt64 = 0
    var committedHashes: [UInt64: Hash32] = [:]
    var verifiedRecords: Set<CommittedBlock> = []
    var violations: [Violation] = []
    var evidence: [Equivocation] = []
    var eventCount = 0
    var trace = TraceLog()
    var hostileSent = 0
    var refusedByHonest = 0
    var personalDataRepaired = 0

    init(_ configuration: SimulationConfig) throws(SimulationError) {
        self.configuration = configuration
        let powers = configuration.powers ?? Array(repeating: 10, count: configuration.validators)
        do { setup = try SimulatedConsortium(powers: powers) } catch {
            throw SimulationError(description: "cannot build the consortium: \(error)")
        }
        rules = PeerGate.Rules(chainID: SimulatedConsortium.chainID, validators: setup.validators,
                               parameters: setup.consortium.genesis.parameters)
        var generator = SplitMix64(seed: configuration.seed)
        let firstByzantine = configuration.validators - configuration.byzantine.count
        let members = setup.validators.members
        let verified = VerifiedRecords()
        let skew = configuration.faults.clockSkewMaxMs
        var built: [SimNode] = []
        for (index, key) in setup.keys.enumerated() {
            let offset = skew == 0 ? 0 : Int64(generator.below(2 * skew + 1)) - Int64(skew)
            let clock = SimClock(skewMs: offset)
            built.append(SimNode(index: index, id: members[index].id,
                           behaviour: index >= firstByzantine ? configuration.byzantine[index - firstByzantine] : nil,
                           journal: SimJournal(), signer: SimSigner(key: key),
                           ledger: SimLedger(consortium: setup.consortium, verified: verified, clock: clock), clock: clock))
        }
        nodes = built
        random = generator
        targetHeight = configuration.heights
        trace.keepsAll = configuration.recordsFullTrace
    }

    var honest: [Int] { nodes.indices.filter { nodes[$0].isHonest } }

    mutating func run() {
        for index in nodes.indices where nodes[index].behaviour != .silent { restart(index) }
        queue.push(.submit, at: 1)
        queue.push(.heal, at: configuration.faults.faultyPeriodMs)
        if configuration.faults.faultyPeriodMs > 0 { queue.push(.chaos, at: random.inRange(Self.chaosIntervalMs)) }
        while violations.isEmpty, !isDone, let (timeMs, event) = queue.pop() {
            nowMs = timeMs
            eventCount += 1
            if healed, nowMs > configuration.faults.faultyPeriodMs + configuration.progressBoundMs {
                return fail("progress", "honest heights \(honest.map { nodes[$0].ledger.height }) short of \(targetHeight), or lacking personal data of \(honest.map { nodes[$0].ledger.lacking.count }) transaction(s)")
            }
            guard eventCount < Self.eventLimit else { return fail("progress", "event limit reached") }
            handle(event)
        }
    }

    /// Every honest node reached the target height and holds the personal data of everything it committed
    /// (fetched from peers when a block came without it): otherwise the run fails on progress.
    var isDone: Bool {
        healed && honest.allSatisfy { nodes[$0].ledger.height >= targetHeight && nodes[$0].ledger.lacking.isEmpty }
    }

    mutating func handle(_ event: Event) {
        switch event {
        case .deliver(let from, let to, let message):
            deliver(message, from: from, to: to)
        case .timer(let index, let incarnation, let timer):
            guard nodes[index].incarnation == incarnation else { return }
            if case .consensus(let timeout) = timer { record("n\(index) \(timeout)") }
            step(index) { $0.fire(timer) }
        case .tick(let index, let incarnation):
            guard nodes[index].incarnation == incarnation, nodes[index].isUp else { return }
            tick(index)
            queue.push(.tick(node: index, incarnation: incarnation), at: nowMs + Self.tickIntervalMs)
        case .submit:
            submit()
            queue.push(.submit, at: nowMs + Self.submitIntervalMs)
        case .reconnect(let a, let b):
            connect(a, b)
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
        let highest = honest.map { nodes[$0].ledger.height }.max() ?? 0
        targetHeight = max(configuration.heights, highest + configuration.progressHeights)
        record("healed; target height \(targetHeight)")
        for index in honest where !nodes[index].isUp { restart(index) }
    }

    /// (Re)starts a node from its durable state: a new replica over the same journal, signer guard and chain, which
    /// replays the journal's records as the node does on start; then it connects to every running peer.
    mutating func restart(_ index: Int) {
        guard !nodes[index].isUp else { return }
        nodes[index].incarnation += 1
        let node = nodes[index]
        node.clock.worldMs = nowMs
        record("n\(index) start at height \(node.ledger.height + 1), journal \(node.journal.records.count), signed \(node.signer.position)")
        var replica = Replica(consortium: setup.consortium, validator: node.id, timeouts: configuration.timeouts,
                              journal: node.journal, signer: node.signer, ledger: node.ledger, clock: node.clock,
                              verifier: verifier)
        do { try replica.start(journalRecords: node.journal.records) } catch {
            return fail("restart", "n\(index) cannot replay its journal: \(error)")
        }
        let effects = replica.takeEffects()
        nodes[index].replica = replica
        queue.push(.tick(node: index, incarnation: nodes[index].incarnation), at: nowMs + random.inRange(1...Self.tickIntervalMs))
        perform(effects, node: index)
        checkHalt(index)
        for peer in nodes.indices where peer != index { connect(index, peer) }
    }

    /// Runs `body` on a running node's replica with its clock set, then carries out the effects.
    mutating func step(_ index: Int, _ body: (inout Replica) -> Void) {
        guard var replica = nodes[index].replica else { return }
        nodes[index].clock.worldMs = nowMs
        body(&replica)
        let effects = replica.takeEffects()
        nodes[index].replica = replica
        if nodes[index].signer.crashedInside {
            // The process died inside this step: nothing it would have done afterwards happens.
            crash(index)
            nodes[index].signer.restarted()
            queue.push(.restart(node: index), at: nowMs + random.inRange(Self.downtimeMs))
            return
        }
        perform(effects, node: index)
        checkHalt(index)
    }

    /// A replica that halted because its journal write was made to fail is restarted later, as an operator would
    /// after freeing disk space; any other halt of an honest node is a violation.
    mutating func checkHalt(_ index: Int) {
        guard let reason = nodes[index].replica?.halted else { return }
        guard reason.contains(SimJournal.InjectedFailure().description) || !nodes[index].isHonest else {
            return fail("halt", "n\(index) halted: \(reason)")
        }
        record("n\(index) halted (\(reason)); restarting")
        crash(index)
        queue.push(.restart(node: index), at: nowMs + random.inRange(Self.downtimeMs))
    }

    /// Both ends learn of a connection (each tells the other its height), when both are running.
    mutating func connect(_ a: Int, _ b: Int) {
        guard a != b, nodes[a].isUp, nodes[b].isUp else { return }
        let heightA = nodes[a].ledger.height, heightB = nodes[b].ledger.height
        let idA = nodes[a].id, idB = nodes[b].id
        if nodes[a].replica?.connected.contains(idB) != true { step(a) { $0.connected(idB, height: heightB) } }
        if nodes[b].replica?.connected.contains(idA) != true { step(b) { $0.connected(idA, height: heightA) } }
    }

    /// A connection dropped (a refusal, or a crash): both ends learn of it; it is re-established later.
    mutating func disconnect(_ a: Int, _ b: Int) {
        let idA = nodes[a].id, idB = nodes[b].id
        step(a) { $0.disconnected(idB) }
        step(b) { $0.disconnected(idA) }
        queue.push(.reconnect(a, b), at: nowMs + Self.reconnectMs)
    }

    /// The workload: a member institution submits one transaction through an honest node's API.
    mutating func submit() {
        let running = honest.filter { nodes[$0].isUp }
        guard !running.isEmpty else { return }
        let index = running[Int(random.below(UInt64(running.count)))]
        submitted += 1
        guard let transaction = try? setup.transaction(submitted, timeMs: SimulatedConsortium.genesisTimeMs + nowMs) else {
            return fail("workload", "cannot sign transaction \(submitted)")
        }
        nodes[index].clock.worldMs = nowMs
        guard nodes[index].ledger.admit(transaction, origin: .api) else { return }
        step(index) { $0.transactionsAdmitted([transaction], relay: true) }
    }

    mutating func fail(_ invariant: String, _ message: String) {
        violations.append(Violation(invariant: invariant, message: message, timeMs: nowMs))
        record("VIOLATION \(invariant): \(message)")
    }

    mutating func record(_ line: String) {
        trace.append("t=\(nowMs) \(line)")
    }

    func result() -> SimulationResult {
        SimulationResult(seed: configuration.seed, violations: violations, chains: nodes.map(\.ledger.chain),
                         honest: honest, evidence: evidence, eventCount: eventCount, endTimeMs: nowMs,
                         traceDigest: trace.digest, traceTail: trace.tail, fullTrace: trace.all,
                         hostileMessages: hostileSent, refusedByHonest: refusedByHonest,
                         personalDataRepaired: personalDataRepaired)
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
