import XinlianCore
import XinlianCrypto

/// A replica's requests for the personal data of committed blocks that its ledger lacks (a sync peer left it out,
/// or the block was decided here on a certificate without its proposal): what was asked of whom, and when to ask
/// next. See ``Replica/requestPersonalData(force:)``.
struct PersonalRepair {
    /// The request waiting for its reply: one at a time.
    var outstanding: (peer: ValidatorID, fromHeight: UInt64, count: UInt32)?
    /// The serial of the one `personalRepair` timer that counts (older ones are stale when they fire).
    var serial: UInt64 = 0
    /// The peer asked last, and whether its reply gave some: then it is asked again, otherwise the next peer.
    var lastPeer: ValidatorID?
    var lastPeerHelped = false
    /// A peer that connected and was not asked since the last progress: it is asked next, without waiting.
    var nextPeer: ValidatorID?
    var askedSinceProgress: Set<ValidatorID> = []
    /// No request before this time (monotonic in the node: the replica's clock), and the wait after the next
    /// failure, doubling from ``Replica/personalRepairMs`` to ``Replica/personalRepairMaxMs``.
    var notBeforeMs: UInt64 = 0
    var delayMs: UInt64 = Replica.personalRepairMs
    /// Requests start at the lowest lacking height at or above this, wrapping to the lowest: a height nobody can
    /// give does not keep the ones above it from being asked for.
    var cursor: UInt64 = 0
    /// Peers that gave nothing for the heights at the cursor; after as many as are connected, the cursor moves on.
    var failuresAtCursor = 0
}

extension Replica {
    /// How long a request for lacking personal data may go unanswered, and the first wait after a peer gave none.
    public static let personalRepairMs: UInt64 = 5_000
    /// The longest wait between requests for personal data that no peer gave.
    public static let personalRepairMaxMs: UInt64 = 300_000

    /// Asks one connected peer for committed blocks whose personal data this ledger lacks: an ordinary sync request
    /// for heights it holds, whose reply carries the peer's personal data beside the blocks. A ledger that lacks
    /// nothing asks nothing and sets no timer. Before `notBeforeMs` only the repair timer (`force`) asks.
    mutating func requestPersonalData(force: Bool = false) {
        guard started, halted == nil, repair.outstanding == nil, force || clock.nowMs >= repair.notBeforeMs else { return }
        var heights = ledger.heightsLackingPersonalData(from: repair.cursor, limit: WireLimits.syncBlocksPerRequest)
        if heights.isEmpty, repair.cursor > 0 {
            repair.cursor = 0
            repair.failuresAtCursor = 0
            heights = ledger.heightsLackingPersonalData(from: 0, limit: WireLimits.syncBlocksPerRequest)
        }
        guard let first = heights.first else { return }
        repair.serial += 1
        guard let peer = nextPersonalDataPeer() else {
            repair.notBeforeMs = clock.nowMs &+ Self.personalRepairMs
            effects.append(.schedule(.personalRepair(serial: repair.serial), afterMs: Self.personalRepairMs))
            return
        }
        // The run of consecutive heights from the first (a reply carries every block asked for, lacking or not).
        var count: UInt32 = 1
        while Int(count) < heights.count, heights[Int(count)] == first &+ UInt64(count) { count += 1 }
        repair.outstanding = (peer, first, count)
        repair.askedSinceProgress.insert(peer)
        note(.personalDataRequested(peer: peer, fromHeight: first, count: count))
        effects.append(.send(.syncRequest(fromHeight: first, count: count), to: peer))
        effects.append(.schedule(.personalRepair(serial: repair.serial), afterMs: Self.personalRepairMs))
    }

    /// A newly connected peer not asked since the last progress; else the last peer if it helped; else the next
    /// connected peer after the last one, in id order.
    private mutating func nextPersonalDataPeer() -> ValidatorID? {
        if let next = repair.nextPeer {
            repair.nextPeer = nil
            if connected.contains(next) { return next }
        }
        if repair.lastPeerHelped, let last = repair.lastPeer, connected.contains(last) { return last }
        let peers = connected.sorted()
        return peers.first(where: { $0 > (repair.lastPeer ?? $0) }) ?? peers.first
    }

    /// Keeps what a peer's reply carries of the personal data this ledger lacks. A reply that gave some is followed
    /// at once by the next request (to the same peer); one that gave none counts as a failure (it may have erased
    /// it, never had it, or be withholding it: none of that is provable, so nobody is blamed).
    mutating func applyPersonalData(_ blocks: [CommittedBlock], fromHeight: UInt64, from peer: ValidatorID) {
        guard let asked = repair.outstanding else { return }
        repair.outstanding = nil
        var kept = 0
        for (offset, record) in blocks.prefix(Int(asked.count)).enumerated() {
            let height = fromHeight &+ UInt64(offset)
            guard height <= ledger.height, record.block.header.height == height else { break }
            kept += ledger.fillPersonalData(from: record)
        }
        note(.personalDataReceived(peer: peer, kept: kept))
        repair.lastPeer = peer
        repair.lastPeerHelped = kept > 0
        guard kept > 0 else { return personalRepairFailed(window: asked) }
        repair.delayMs = Self.personalRepairMs
        repair.notBeforeMs = 0
        repair.failuresAtCursor = 0
        repair.askedSinceProgress = []
        requestPersonalData()
    }

    /// The outstanding request will not be answered (its timer fired, or its peer disconnected).
    mutating func personalRepairUnanswered() {
        guard let asked = repair.outstanding else { return }
        repair.outstanding = nil
        note(.personalDataUnanswered(peer: asked.peer))
        repair.lastPeer = asked.peer
        repair.lastPeerHelped = false
        personalRepairFailed(window: asked)
    }

    /// A peer gave nothing for `window`: after every connected peer has, later requests start above it; the next
    /// request waits twice as long as the last (up to ``personalRepairMaxMs``).
    private mutating func personalRepairFailed(window: (peer: ValidatorID, fromHeight: UInt64, count: UInt32)) {
        repair.failuresAtCursor += 1
        if repair.failuresAtCursor >= max(1, connected.count) {
            repair.cursor = window.fromHeight &+ UInt64(window.count)
            repair.failuresAtCursor = 0
        }
        repair.serial += 1
        repair.notBeforeMs = clock.nowMs &+ repair.delayMs
        effects.append(.schedule(.personalRepair(serial: repair.serial), afterMs: repair.delayMs))
        repair.delayMs = min(repair.delayMs &* 2, Self.personalRepairMaxMs)
    }

    /// A peer connected: one not asked since the last progress is asked next, without waiting out the back-off
    /// (a peer reconnecting in a loop gets this once, not once per connection).
    mutating func personalRepairConnected(_ peer: ValidatorID) {
        if repair.outstanding == nil, !repair.askedSinceProgress.contains(peer) {
            repair.nextPeer = peer
            repair.notBeforeMs = 0
        }
        requestPersonalData()
    }
}
