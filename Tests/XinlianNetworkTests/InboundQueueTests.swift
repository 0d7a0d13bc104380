import Synchronization
import Testing
@testable import XinlianNetwork
import XinlianConsensus
import XinlianCore
import XinlianCrypto

/// The per-peer budgets and turn-taking of the events waiting for the node, without sockets.
@Suite struct InboundQueueTests {
    final class Wakes: Sendable {
        let count = Atomic<Int>(0)
    }

    final class Token: Sendable {}

    func status(_ height: UInt64) -> WireMessage { .status(PeerStatus(height: height, lastBlockHash: .zero)) }

    func waiter(_ token: Token, _ wakes: Wakes) -> InboundQueue.Waiter {
        InboundQueue.Waiter(id: ObjectIdentifier(token)) { wakes.count.add(1, ordering: .relaxed) }
    }

    func height(_ event: NetworkEvent?) -> UInt64? {
        if case .message(_, .status(let status)) = event { status.height } else { nil }
    }

    @Test func peersTakeTurnsAndKeepTheirOrder() async {
        let queue = InboundQueue(bytesLimit: 1000, eventsLimit: 100, metrics: NetworkMetrics())
        let (token, wakes) = (Token(), Wakes())
        for height: UInt64 in 1...5 { #expect(queue.offer(.message("v0", status(height)), from: "v0", bytes: 10, waiter: waiter(token, wakes)) == .queued) }
        for height: UInt64 in 101...102 { #expect(queue.offer(.message("v2", status(height)), from: "v2", bytes: 10, waiter: waiter(token, wakes)) == .queued) }
        var heights: [UInt64] = []
        for _ in 0..<7 { heights.append(height(await queue.next()) ?? 0) }
        #expect(heights == [1, 101, 2, 102, 3, 4, 5])
        #expect(queue.usage.isEmpty)
    }

    @Test func aPeerOverItsBudgetIsBlockedAndWokenWhenTaken() async {
        let queue = InboundQueue(bytesLimit: 100, eventsLimit: 4, metrics: NetworkMetrics())
        let (token, wakes) = (Token(), Wakes())
        for height: UInt64 in 1...3 { #expect(queue.offer(.message("v0", status(height)), from: "v0", bytes: 30, waiter: waiter(token, wakes)) == .queued) }
        // 90 + 30 bytes would exceed 100: not queued.
        #expect(queue.offer(.message("v0", status(4)), from: "v0", bytes: 30, waiter: waiter(token, wakes)) == .blocked)
        // Another peer has its own budget.
        #expect(queue.offer(.message("v2", status(100)), from: "v2", bytes: 100, waiter: waiter(Token(), wakes)) == .queued)
        #expect(queue.usage["v0"] == InboundQueue.Usage(bytes: 90, events: 3))
        #expect(height(await queue.next()) == 1)
        // 60 bytes left: over half the budget, no wake yet (hysteresis).
        #expect(wakes.count.load(ordering: .relaxed) == 0)
        #expect(height(await queue.next()) == 100)
        #expect(height(await queue.next()) == 2)
        // 30 bytes: at most half, and 30 more fit.
        #expect(wakes.count.load(ordering: .relaxed) == 1)
        #expect(queue.offer(.message("v0", status(4)), from: "v0", bytes: 30, waiter: waiter(token, wakes)) == .queued)
        // The count bound too.
        for height: UInt64 in 5...6 { #expect(queue.offer(.message("v0", status(height)), from: "v0", bytes: 1, waiter: waiter(token, wakes)) == .queued) }
        #expect(queue.offer(.message("v0", status(7)), from: "v0", bytes: 1, waiter: waiter(token, wakes)) == .blocked)
        let peaks = queue.peaks
        #expect(peaks.perPeer["v0"] == 90)
        #expect(peaks.total == 190)
    }

    @Test func disconnectedIsNeverBlockedAndFinishDrainsFirst() async {
        let queue = InboundQueue(bytesLimit: 10, eventsLimit: 1, metrics: NetworkMetrics())
        let (token, wakes) = (Token(), Wakes())
        #expect(queue.offer(.message("v0", status(1)), from: "v0", bytes: 10, waiter: waiter(token, wakes)) == .queued)
        queue.push(.disconnected("v0", reason: "closed"), from: "v0")
        queue.finish()
        #expect(queue.offer(.message("v2", status(2)), from: "v2", bytes: 1, waiter: waiter(token, wakes)) == .finished)
        #expect(height(await queue.next()) == 1)
        guard case .disconnected("v0", _) = await queue.next() else { Issue.record("expected disconnected"); return }
        #expect(await queue.next() == nil)
    }

    @Test func aWaitingTakerGetsTheNextEventAndCancellationEndsIt() async {
        let queue = InboundQueue(bytesLimit: 100, eventsLimit: 10, metrics: NetworkMetrics())
        let taker = Task { await queue.next() }
        // Offered while the taker may or may not be waiting yet: either way it gets the event.
        #expect(queue.offer(.message("v0", status(9)), from: "v0", bytes: 1, waiter: waiter(Token(), Wakes())) == .queued)
        #expect(height(await taker.value) == 9)
        #expect(queue.usage.isEmpty)
        let cancelled = Task { await queue.next() }
        cancelled.cancel()
        #expect(await cancelled.value == nil)
    }
}
