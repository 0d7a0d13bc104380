import Metrics
import NIOCore
import XinlianConsensus
import NIOSSL
import NIOTLS

/// Splits the TLS plaintext into frames: a 4-byte big-endian length, then that many bytes (type + body).
/// A declared length over `maxFrameBytes` (or zero) is an error before any of the frame is buffered.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    let maxFrameBytes: Int

    /// The next whole frame (type + body) at the front of `buffer`, consumed from it; nil if it is not all there yet.
    static func split(_ buffer: inout ByteBuffer, maxFrameBytes: Int) throws(WireError) -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard length > 0 else { throw WireError(code: "empty_frame", message: "frame length 0") }
        guard Int(length) <= maxFrameBytes else {
            throw WireError(code: "frame_too_large", message: "declared frame of \(length) bytes exceeds \(maxFrameBytes)")
        }
        guard buffer.readableBytes >= WireLimits.lengthPrefixBytes + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: WireLimits.lengthPrefixBytes)
        return buffer.readSlice(length: Int(length))
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try Self.split(&buffer, maxFrameBytes: maxFrameBytes) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer,
                             seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// A token bucket over the raw inbound bytes of one connection (placed before TLS): `bytesPerSecond`
/// with one second of burst. When the bucket is empty the connection stops reading: every `read` request
/// (from auto-read or any handler) is held back until the bucket has refilled, so the peer's TCP window
/// closes instead of its bytes piling up here.
final class InboundRateLimiter: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let rate: Double
    private var tokens: Double
    private var last: NIODeadline
    private var readHeld = false
    private var resume: Scheduled<Void>?
    private let metrics: NetworkMetrics
    private let connection: PeerConnection?

    init(bytesPerSecond: Int, metrics: NetworkMetrics, connection: PeerConnection? = nil) {
        rate = Double(max(1, bytesPerSecond))
        tokens = rate
        last = .now()
        self.metrics = metrics
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let count = unwrapInboundIn(data).readableBytes
        connection?.heard()
        metrics.bytesIn.increment(by: Int64(count))
        refill()
        tokens -= Double(count)
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        refill()
        guard tokens < 0 else { return context.read() }
        guard !readHeld else { return }
        readHeld = true
        metrics.readPauses.increment()
        scheduleResume(context: context)
    }

    private func scheduleResume(context: ChannelHandlerContext) {
        let wait = TimeAmount.nanoseconds(Int64((-tokens / rate) * 1_000_000_000) + 1_000_000)
        resume = context.eventLoop.assumeIsolated().scheduleTask(in: wait) { [self] in
            resume = nil
            refill()
            guard readHeld else { return }
            if tokens < 0 { return scheduleResume(context: context) }
            readHeld = false
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
    }

    private func refill() {
        let now = NIODeadline.now()
        let elapsed = Double((now - last).nanoseconds) / 1_000_000_000
        last = now
        tokens = min(rate, tokens + elapsed * rate)
    }
}

/// Sent through a connection's pipeline when its peer's inbound budget has room again.
struct InboundBudgetAvailable: Sendable {}

/// The last handler of a peer connection: cuts the TLS plaintext into frames, sends our hello once TLS is up, checks
/// the peer's hello, then hands every frame to the network. Any failure closes the connection with a recorded reason.
///
/// Backpressure: when the peer's inbound budget (``NetworkConfig/peerInboundBytes``, ``NetworkConfig/peerInboundEvents``)
/// cannot take the next frame, the decoded frame is held here, no further frame is cut, and read requests are held
/// back so nothing more is read from the socket (the peer's TCP window closes). ``InboundBudgetAvailable`` resumes.
final class PeerChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Above this capacity an emptied plaintext buffer is released rather than kept for reuse.
    static let keptBufferBytes = 1 << 20
    /// Consumed bytes at the front of the plaintext buffer tolerated before it is compacted.
    static let compactionBytes = 64 * 1024

    private let network: PeerNetwork
    private let connection: PeerConnection
    private var helloReceived = false
    private var handshakeTimeout: Scheduled<Void>?
    private var statusTask: RepeatedTask?
    /// Plaintext not yet cut into frames.
    private var plaintext = ByteBuffer()
    /// A decoded frame its peer's budget could not take yet, and its size.
    private var held: (message: WireMessage, bytes: Int)?
    /// A read request held back while `held` is set.
    private var readHeld = false

    init(network: PeerNetwork, connection: PeerConnection) {
        self.network = network
        self.connection = connection
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let (network, connection) = (network, connection)
        handshakeTimeout = context.eventLoop.scheduleTask(in: .milliseconds(Int64(network.config.handshakeTimeoutMs))) {
            network.handshakeTimedOut(connection)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { stopTimers() }

    func channelInactive(context: ChannelHandlerContext) {
        stopTimers()
        held = nil
        context.fireChannelInactive()
    }

    private func stopTimers() {
        handshakeTimeout?.cancel()
        handshakeTimeout = nil
        statusTask?.cancel()
        statusTask = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is InboundBudgetAvailable {
            return resume(context: context)
        }
        if case .handshakeCompleted = event as? TLSUserEvent {
            guard connection.expected != nil else {
                return connection.close("tls", "handshake completed without a pinned peer key")
            }
            network.sendHello(on: connection)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        guard held == nil else {
            readHeld = true
            return
        }
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Bytes that arrive after we decided to close are not looked at.
        guard !connection.isClosing else { return }
        var bytes = unwrapInboundIn(data)
        plaintext.writeBuffer(&bytes)
        drain(context: context)
    }

    /// Hands on the held frame, then every whole frame in `plaintext`, until one does not fit the budget.
    private func drain(context: ChannelHandlerContext) {
        if let (message, bytes) = held {
            guard handle(message, bytes: bytes, context: context) else { return }
            held = nil
        }
        while !connection.isClosing {
            let frame: ByteBuffer?
            do {
                // Before the hello only a hello-sized frame is buffered.
                let limit = helloReceived ? network.config.maxFrameBytes : min(WireLimits.helloFrameBytes,
                                                                               network.config.maxFrameBytes)
                frame = try FrameDecoder.split(&plaintext, maxFrameBytes: limit)
            } catch {
                return network.rejectFrame(error, on: connection)
            }
            guard let frame else { break }
            let message: WireMessage
            do {
                message = try WireCodec.decode(Array(frame.readableBytesView))
            } catch {
                return network.rejectFrame(error, on: connection)
            }
            network.metrics.frameIn(message.kindName)
            guard handle(message, bytes: frame.readableBytes, context: context) else {
                held = (message, frame.readableBytes)
                network.inboundPaused(connection)
                break
            }
        }
        if plaintext.readableBytes == 0 {
            if plaintext.capacity > Self.keptBufferBytes { plaintext = ByteBuffer() } else { plaintext.clear() }
        } else if plaintext.readerIndex >= Self.compactionBytes {
            plaintext.discardReadBytes()
        }
    }

    /// The peer's budget has room: hand on what is held and read again.
    private func resume(context: ChannelHandlerContext) {
        guard held != nil, !connection.isClosing else { return }
        drain(context: context)
        guard held == nil else { return }
        network.inboundResumed(connection)
        if readHeld {
            readHeld = false
            context.read()
        }
    }

    /// False when the peer's budget cannot take the frame yet (nothing happened; try again when woken).
    private func handle(_ message: WireMessage, bytes: Int, context: ChannelHandlerContext) -> Bool {
        if !helloReceived {
            guard case .hello(let hello) = message else {
                network.rejectFrame(WireError(code: "expected_hello", message: "first frame was \(message.kindName)"),
                                    on: connection)
                return true
            }
            switch network.acceptHello(hello, bytes: bytes, on: connection) {
            case .refused: return true
            case .blocked: return false
            case .accepted: break
            }
            helloReceived = true
            handshakeTimeout?.cancel()
            handshakeTimeout = nil
            let interval = TimeAmount.milliseconds(Int64(network.config.statusIntervalMs))
            let (network, connection) = (network, connection)
            connection.heard()
            statusTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                network.tick(connection)
            }
            return true
        }
        if case .hello = message {
            network.rejectFrame(WireError(code: "duplicate_hello", message: "second hello"), on: connection)
            return true
        }
        return network.deliver(message, bytes: bytes, from: connection)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let wire = error as? WireError {
            network.rejectFrame(wire, on: connection)
        } else if let tls = error as? NIOSSLError {
            if case .uncleanShutdown = tls {
                connection.close("closed_by_peer", "peer closed without TLS close_notify")
            } else {
                connection.close("tls", "\(tls)")
            }
        } else if let io = error as? IOError {
            connection.close("io", "\(io)")
        } else {
            connection.close("error", "\(error)")
        }
    }
}
