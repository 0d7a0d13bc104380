import NIOCore
import XinlianConsensus
import NIOPosix
import NIOSSL
import Synchronization

/// A FIFO that async readers wait on with a timeout. Used by ``RawPeer`` and by tests.
final class TimedQueue<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var finished = false
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Element?, Never>)] = []
        var finishWaiters: [(id: UInt64, continuation: CheckedContinuation<Bool, Never>)] = []
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    init() {}

    func push(_ item: Element) {
        let waiter = state.withLock { state -> CheckedContinuation<Element?, Never>? in
            guard !state.finished else { return nil }
            if !state.waiters.isEmpty { return state.waiters.removeFirst().continuation }
            state.items.append(item)
            return nil
        }
        waiter?.resume(returning: item)
    }

    func finish() {
        let (waiters, finishWaiters) = state.withLock { state in
            state.finished = true
            defer { state.waiters = []; state.finishWaiters = [] }
            return (state.waiters, state.finishWaiters)
        }
        for waiter in waiters { waiter.continuation.resume(returning: nil) }
        for waiter in finishWaiters { waiter.continuation.resume(returning: true) }
    }

    var isFinished: Bool { state.withLock { $0.finished } }

    /// The next item; nil when finished and drained, or after `timeout`.
    func next(timeout: Duration) async -> Element? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Element?, Never>) in
            let outcome = state.withLock { state -> (ready: Bool, item: Element?, id: UInt64) in
                if !state.items.isEmpty { return (true, state.items.removeFirst(), 0) }
                if state.finished { return (true, nil, 0) }
                state.nextID += 1
                state.waiters.append((state.nextID, continuation))
                return (false, nil, state.nextID)
            }
            if outcome.ready { return continuation.resume(returning: outcome.item) }
            Task { [self] in
                try? await Task.sleep(for: timeout)
                let expired = state.withLock { state -> CheckedContinuation<Element?, Never>? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == outcome.id }) else { return nil }
                    return state.waiters.remove(at: index).continuation
                }
                expired?.resume(returning: nil)
            }
        }
    }

    /// True once finished; false if `timeout` passes first.
    func waitForFinish(timeout: Duration) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let id = state.withLock { state -> UInt64? in
                if state.finished { return nil }
                state.nextID += 1
                state.finishWaiters.append((state.nextID, continuation))
                return state.nextID
            }
            guard let id else { return continuation.resume(returning: true) }
            Task { [self] in
                try? await Task.sleep(for: timeout)
                let expired = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                    guard let index = state.finishWaiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.finishWaiters.remove(at: index).continuation
                }
                expired?.resume(returning: false)
            }
        }
    }
}

/// A scriptable peer for tests and diagnostics: connects over TLS 1.3 presenting `identity` (it does not
/// check the server's certificate), sends raw bytes or messages, and receives decoded frames. Use it to
/// play hostile peers: unknown keys, wrong hellos, oversized or malformed frames, forged votes or sync replies.
public final class RawPeer: Sendable {
    private let channel: any Channel
    private let shared: RawPeerShared

    private init(channel: any Channel, shared: RawPeerShared) {
        self.channel = channel
        self.shared = shared
    }

    /// Connects to `address` ("host:port"). Frames larger than `maxFrameBytes` from the other side close the
    /// connection.
    public static func connect(to address: String, identity: TLSIdentity, group: any EventLoopGroup,
                               maxFrameBytes: Int = NetworkConfig.defaultMaxFrameBytes,
                               connectTimeoutMs: Int = 5000) async throws -> RawPeer {
        let target = try PeerAddress(address)
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv13
        configuration.certificateChain = [.certificate(try identity.sslCertificate())]
        configuration.privateKey = .privateKey(try identity.sslPrivateKey())
        configuration.certificateVerification = .none
        let context = try NIOSSLContext(configuration: configuration)
        let shared = RawPeerShared()
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(Int64(connectTimeoutMs)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                    try pipeline.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrameBytes)))
                    try pipeline.addHandler(RawPeerHandler(shared: shared))
                }
            }
            .connect(host: target.host, port: target.port).get()
        channel.closeFuture.whenComplete { _ in shared.inbox.finish() }
        return RawPeer(channel: channel, shared: shared)
    }

    /// Writes `bytes` into the TLS stream as they are (no framing added).
    public func sendRaw(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    /// Writes one framed message.
    public func send(_ message: WireMessage) async throws {
        try await sendRaw(WireCodec.frame(message))
    }

    /// The next frame received, in order; nil once the connection is closed and drained, or after `timeout`.
    public func receive(timeout: Duration = .seconds(5)) async -> WireMessage? {
        await shared.inbox.next(timeout: timeout)
    }

    /// The next frame for which `predicate` holds, skipping others (e.g. status frames).
    public func receive(timeout: Duration = .seconds(5),
                        where predicate: @Sendable (WireMessage) -> Bool) async -> WireMessage? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero, let message = await shared.inbox.next(timeout: left) else { return nil }
            if predicate(message) { return message }
        }
    }

    /// Stops reading from the socket (to play a slow peer); ``resumeReading()`` undoes it.
    public func pauseReading() async throws {
        try await channel.setOption(ChannelOptions.autoRead, value: false).get()
    }

    public func resumeReading() async throws {
        try await channel.setOption(ChannelOptions.autoRead, value: true).get()
    }

    /// True once the connection is closed (by either side); false if `timeout` passes first.
    public func waitForClose(timeout: Duration = .seconds(5)) async -> Bool {
        await shared.inbox.waitForFinish(timeout: timeout)
    }

    public var isClosed: Bool { shared.inbox.isFinished }

    /// A frame from the other side that did not decode, if any (the connection was closed then).
    public var receiveError: WireError? { shared.failure.withLock { $0 } }

    public func close() async {
        try? await channel.close()
    }
}

private final class RawPeerShared: Sendable {
    let inbox = TimedQueue<WireMessage>()
    let failure = Mutex<WireError?>(nil)

    func record(_ error: WireError) { failure.withLock { if $0 == nil { $0 = error } } }
}

private final class RawPeerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let shared: RawPeerShared

    init(shared: RawPeerShared) { self.shared = shared }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            shared.inbox.push(try WireCodec.decode(Array(unwrapInboundIn(data).readableBytesView)))
        } catch {
            shared.record(error)
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let wire = error as? WireError { shared.record(wire) }
        context.close(promise: nil)
    }
}
