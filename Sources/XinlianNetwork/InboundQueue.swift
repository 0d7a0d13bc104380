import Metrics
import Synchronization
import XinlianCore

/// A first-in first-out buffer that hands out and forgets its elements (a taken element is not kept alive by the
/// array behind it).
struct FIFO<Element> {
    private var items: [Element?] = []
    private var head = 0

    /// Taken slots at the front tolerated before the array is compacted.
    private static var compactionThreshold: Int { 1024 }

    var isEmpty: Bool { head == items.count }
    var count: Int { items.count - head }

    mutating func append(_ element: Element) { items.append(element) }

    mutating func popFirst() -> Element? {
        guard head < items.count else { return nil }
        let element = items[head]
        items[head] = nil
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: items.count <= Self.compactionThreshold)
            head = 0
        } else if head >= Self.compactionThreshold, head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return element
    }
}

/// The network's events waiting for the node's single consumer (``PeerNetwork/events``). Each peer has its own FIFO
/// and its own budget of bytes and events; the consumer takes one event per peer in turn (round-robin across peers
/// with something waiting), so events stay in order per peer and one peer's backlog delays another's next event by
/// at most one event per peer.
///
/// An event that does not fit its peer's budget is not queued: ``offer(_:from:bytes:after:waiter:)`` answers
/// ``Admission/blocked`` and calls the waiter's `wake` once the consumer has taken enough of that peer's events
/// (the peer's usage is at most half of both limits and the event fits), so the connection can stop reading from its
/// socket meanwhile. Budgets are released when the consumer takes an event, not when it has processed it.
final class InboundQueue: Sendable {
    /// What a peer has waiting: frame bytes and events counted against its budget.
    struct Usage: Sendable, Equatable {
        var bytes = 0
        var events = 0
    }

    enum Admission: Sendable, Equatable {
        case queued
        /// Over the peer's budget: nothing was queued; the waiter will be woken.
        case blocked
        /// ``finish()`` was called: nothing was queued.
        case finished
    }

    /// Who to wake when a blocked event would fit.
    struct Waiter: Sendable {
        var id: ObjectIdentifier
        var wake: @Sendable () -> Void
    }

    private struct Entry {
        var event: NetworkEvent
        var bytes: Int
        var counted: Bool
    }

    private struct Blocked {
        var peer: ValidatorID
        var bytes: Int
        var wake: @Sendable () -> Void
    }

    private struct State {
        var queues: [ValidatorID: FIFO<Entry>] = [:]
        /// Peers with something queued, in the order they get their next turn; each at most once.
        var turns = FIFO<ValidatorID>()
        var usage: [ValidatorID: Usage] = [:]
        var peakBytes: [ValidatorID: Int] = [:]
        var totalBytes = 0
        var peakTotalBytes = 0
        var blocked: [ObjectIdentifier: Blocked] = [:]
        var takers: [(id: UInt64, continuation: CheckedContinuation<NetworkEvent?, Never>)] = []
        var nextTaker: UInt64 = 0
        var finished = false
    }

    let bytesLimit: Int
    let eventsLimit: Int
    private let metrics: NetworkMetrics
    private let state = Mutex(State())

    init(bytesLimit: Int, eventsLimit: Int, metrics: NetworkMetrics) {
        self.bytesLimit = bytesLimit
        self.eventsLimit = eventsLimit
        self.metrics = metrics
    }

    /// Queues `event` of `peer`, counted as `bytes` and one event against the peer's budget, after `preceding`
    /// (queued uncounted, and only together with `event`). When `event` does not fit, nothing is queued and
    /// `waiter` is woken once it would; a later offer or ``cancel(_:)`` with the same waiter id replaces it.
    func offer(_ event: NetworkEvent, from peer: ValidatorID, bytes: Int, after preceding: NetworkEvent? = nil,
               waiter: Waiter) -> Admission {
        let (admission, handOffs) = state.withLock { state -> (Admission, HandOffs) in
            guard !state.finished else { return (.finished, HandOffs()) }
            guard fits(bytes, state.usage[peer, default: Usage()]) else {
                state.blocked[waiter.id] = Blocked(peer: peer, bytes: bytes, wake: waiter.wake)
                return (.blocked, HandOffs())
            }
            state.blocked.removeValue(forKey: waiter.id)
            if let preceding { enqueue(Entry(event: preceding, bytes: 0, counted: false), peer, &state) }
            enqueue(Entry(event: event, bytes: bytes, counted: true), peer, &state)
            return (.queued, handOff(&state))
        }
        handOffs.run()
        return admission
    }

    /// Queues an event that no budget limits (a peer's `disconnected`: at most one per `connected`).
    func push(_ event: NetworkEvent, from peer: ValidatorID) {
        let handOffs = state.withLock { state -> HandOffs in
            guard !state.finished else { return HandOffs() }
            enqueue(Entry(event: event, bytes: 0, counted: false), peer, &state)
            return handOff(&state)
        }
        handOffs.run()
    }

    /// Forgets a blocked waiter (its connection closed).
    func cancel(_ id: ObjectIdentifier) {
        state.withLock { _ = $0.blocked.removeValue(forKey: id) }
    }

    /// Ends the stream once what is queued has been taken; offers and pushes are ignored from now on.
    func finish() {
        let takers = state.withLock { state -> [CheckedContinuation<NetworkEvent?, Never>] in
            state.finished = true
            // Takers wait only while nothing is queued.
            defer { state.takers = [] }
            return state.takers.map(\.continuation)
        }
        for taker in takers { taker.resume(returning: nil) }
    }

    /// The next event (one per peer in turn), waiting for one; nil once finished and drained, or when the calling
    /// task is cancelled.
    func next() async -> NetworkEvent? {
        let id = state.withLock { state -> UInt64 in
            state.nextTaker += 1
            return state.nextTaker
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<NetworkEvent?, Never>) in
                let (ready, event, wakes) = state.withLock { state -> (Bool, NetworkEvent?, [@Sendable () -> Void]) in
                    if let (event, wakes) = take(&state) { return (true, event, wakes) }
                    if state.finished || Task.isCancelled { return (true, nil, []) }
                    state.takers.append((id, continuation))
                    return (false, nil, [])
                }
                for wake in wakes { wake() }
                if ready { continuation.resume(returning: event) }
            }
        } onCancel: {
            let taker = state.withLock { state -> CheckedContinuation<NetworkEvent?, Never>? in
                guard let index = state.takers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.takers.remove(at: index).continuation
            }
            taker?.resume(returning: nil)
        }
    }

    /// What each peer has waiting now.
    var usage: [ValidatorID: Usage] { state.withLock { $0.usage.filter { $0.value != Usage() } } }

    /// The most bytes each peer ever had waiting, and the most all peers had together.
    var peaks: (perPeer: [ValidatorID: Int], total: Int) { state.withLock { ($0.peakBytes, $0.peakTotalBytes) } }

    // MARK: Inside the lock

    private func fits(_ bytes: Int, _ usage: Usage) -> Bool {
        usage.bytes <= bytesLimit - bytes && usage.events < eventsLimit
    }

    /// Events handed straight to waiting takers, and connections to wake; run outside the lock.
    private struct HandOffs {
        var deliveries: [(CheckedContinuation<NetworkEvent?, Never>, NetworkEvent)] = []
        var wakes: [@Sendable () -> Void] = []

        func run() {
            for wake in wakes { wake() }
            for (taker, event) in deliveries { taker.resume(returning: event) }
        }
    }

    private func enqueue(_ entry: Entry, _ peer: ValidatorID, _ state: inout State) {
        if state.queues[peer, default: FIFO()].isEmpty { state.turns.append(peer) }
        state.queues[peer, default: FIFO()].append(entry)
        guard entry.counted else { return }
        var usage = state.usage[peer, default: Usage()]
        usage.bytes += entry.bytes
        usage.events += 1
        state.usage[peer] = usage
        state.totalBytes += entry.bytes
        state.peakBytes[peer] = max(state.peakBytes[peer, default: 0], usage.bytes)
        state.peakTotalBytes = max(state.peakTotalBytes, state.totalBytes)
        metrics.inboundBufferedBytes.record(state.totalBytes)
    }

    /// Gives waiting takers what is queued.
    private func handOff(_ state: inout State) -> HandOffs {
        var handOffs = HandOffs()
        while !state.takers.isEmpty, let (event, wakes) = take(&state) {
            handOffs.deliveries.append((state.takers.removeFirst().continuation, event))
            handOffs.wakes += wakes
        }
        return handOffs
    }

    /// Takes the next event in turn and releases its budget; also returns the wakes of connections whose blocked
    /// event now fits (to call outside the lock). nil when nothing is queued.
    private func take(_ state: inout State) -> (NetworkEvent, [@Sendable () -> Void])? {
        guard let peer = state.turns.popFirst(), var queue = state.queues.removeValue(forKey: peer),
              let entry = queue.popFirst() else { return nil }
        if !queue.isEmpty { state.turns.append(peer) }
        state.queues[peer] = queue
        guard entry.counted else { return (entry.event, []) }
        var usage = state.usage[peer, default: Usage()]
        usage.bytes -= entry.bytes
        usage.events -= 1
        state.usage[peer] = usage
        state.totalBytes -= entry.bytes
        metrics.inboundBufferedBytes.record(state.totalBytes)
        // Hysteresis: a blocked connection resumes once its peer is down to half of both limits, not at every
        // event taken.
        guard usage.bytes <= bytesLimit / 2, usage.events <= eventsLimit / 2 else { return (entry.event, []) }
        let ready = state.blocked.filter { $0.value.peer == peer && fits($0.value.bytes, usage) }
        for id in ready.keys { state.blocked.removeValue(forKey: id) }
        return (entry.event, ready.values.map(\.wake))
    }
}
