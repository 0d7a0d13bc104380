import NIOCore
import Synchronization
import XinlianConsensus
import XinlianCore

/// One TCP+TLS connection to a peer, from accept or dial until close. Shared between the channel's
/// event loop and callers of ``PeerNetwork``; everything mutable is behind a lock or atomic.
final class PeerConnection: Sendable {
    enum Direction: Sendable, Equatable {
        case inbound
        /// Dialed by us to `peer`; `token` identifies the dial attempt.
        case outbound(peer: ValidatorID, token: UInt64)
    }

    struct Reason: Sendable, Equatable {
        /// Low-cardinality code (metric label).
        var code: String
        var detail: String

        var text: String { detail.isEmpty ? code : "\(code): \(detail)" }
    }

    private struct State {
        var pinned: ValidatorID?
        var hello: PeerHello?
        var reason: Reason?
    }

    let channel: any Channel
    let direction: Direction
    /// The remote IP address (inbound: the key of the per-address handshake limit).
    let remoteHost: String
    /// Bytes handed to the channel and not yet written to the socket.
    let queued = Atomic<Int>(0)
    /// When bytes last arrived (`NIODeadline.uptimeNanoseconds`).
    let lastHeard = Atomic<UInt64>(NIODeadline.now().uptimeNanoseconds)
    /// True while reading is paused because the peer's inbound budget is full: silence is then ours, not the peer's.
    let budgetPaused = Atomic<Bool>(false)
    private let state = Mutex(State())

    init(channel: any Channel, direction: Direction) {
        self.channel = channel
        self.direction = direction
        remoteHost = channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// Wakes this connection's handler (on its event loop, never inline) when its peer's budget has room again.
    var budgetWaiter: InboundQueue.Waiter {
        let channel = channel
        return InboundQueue.Waiter(id: id) {
            channel.eventLoop.execute {
                channel.pipeline.syncOperations.fireUserInboundEventTriggered(InboundBudgetAvailable())
            }
        }
    }

    var id: ObjectIdentifier { ObjectIdentifier(self) }

    /// The validator this connection must be with: the dialed one, or (inbound) the pinned one.
    var expected: ValidatorID? {
        if case .outbound(let peer, _) = direction { return peer }
        return pinned
    }

    var isInbound: Bool { direction == .inbound }

    var pinned: ValidatorID? { state.withLock { $0.pinned } }

    func pin(_ validator: ValidatorID) { state.withLock { $0.pinned = validator } }

    /// The validator whose hello was accepted, once it was.
    var peer: ValidatorID? { state.withLock { $0.hello?.validator } }

    func accept(_ hello: PeerHello) { state.withLock { $0.hello = hello } }

    /// Records why the connection ends; the first reason wins.
    func setReason(_ code: String, _ detail: String) {
        state.withLock { if $0.reason == nil { $0.reason = Reason(code: code, detail: detail) } }
    }

    func heard() { lastHeard.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed) }

    /// Milliseconds since bytes last arrived.
    var silentMs: UInt64 {
        let now = NIODeadline.now().uptimeNanoseconds, last = lastHeard.load(ordering: .relaxed)
        return now > last ? (now - last) / 1_000_000 : 0
    }

    /// True once a close was requested (by us); frames still in flight from it are ignored.
    var isClosing: Bool { state.withLock { $0.reason != nil } }

    var reason: Reason { state.withLock { $0.reason } ?? Reason(code: "closed", detail: "connection closed") }

    func close(_ code: String, _ detail: String = "") {
        setReason(code, detail)
        channel.close(mode: .all, promise: nil)
    }

    /// Queues a framed buffer without waiting. Returns false (and closes the connection as a slow peer)
    /// when the bytes already queued plus this buffer exceed `limit`.
    @discardableResult
    func enqueue(_ buffer: ByteBuffer, limit: Int) -> Bool {
        let count = buffer.readableBytes
        let queuedNow = queued.add(count, ordering: .relaxed).newValue
        guard queuedNow <= limit else {
            queued.subtract(count, ordering: .relaxed)
            close("slow_peer", "slow peer: \(queuedNow - count) bytes queued, limit \(limit)")
            return false
        }
        channel.writeAndFlush(buffer).whenComplete { _ in
            self.queued.subtract(count, ordering: .relaxed)
        }
        return true
    }
}
