import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import XinlianConsensus
import XinlianCore
import XinlianCrypto

/// What the network tells the node, in order per peer (peers take turns: see ``PeerNetwork/events``).
public enum NetworkEvent: Sendable {
    /// A peer completed TLS and hello.
    case connected(ValidatorID, PeerHello)
    /// A frame from a connected peer; never `.hello`.
    case message(ValidatorID, WireMessage)
    case disconnected(ValidatorID, reason: String)
}

/// Why a ``PeerNetwork`` could not be made or started.
public struct NetworkError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// Counters kept alongside the metrics, for tests and diagnostics. Keys are reason codes.
public struct NetworkStats: Sendable, Equatable {
    /// TLS pinning or hello refusals (`unknown_key`, `wrong_key`, `wrong_chain`, `wrong_genesis`, ...).
    public var handshakesRefused: [String: Int] = [:]
    /// Frames that disconnected their peer (`frame_too_large`, `malformed`, `unknown_type`, ...).
    public var framesRejected: [String: Int] = [:]
    /// Closed connections by reason code, whether or not they had completed hello.
    public var disconnects: [String: Int] = [:]
    /// Inbound connections closed at accept, by reason: `handshakes_per_address` (`maxHandshakesPerAddress` from that
    /// address still in the handshake), `handshake_pool_full` (`maxInboundConnections` in the handshake).
    public var inboundRefused: [String: Int] = [:]
    /// Outbound messages not sent because peers would refuse them (over `maxFrameBytes` or a count limit).
    public var framesNotSent = 0
    /// Times reading from a peer was paused because its inbound budget (`peerInboundBytes`, `peerInboundEvents`)
    /// could not take its next frame.
    public var inboundBudgetPauses: [ValidatorID: Int] = [:]
    /// Inbound connections in the handshake now (TCP accepted, hello not yet accepted).
    public var handshaking = 0
    /// Frame bytes and events of each peer decoded and not yet taken from ``PeerNetwork/events`` (peers with none
    /// are left out).
    public var inboundBytes: [ValidatorID: Int] = [:]
    public var inboundEvents: [ValidatorID: Int] = [:]
    /// The most frame bytes each peer ever had waiting, and the most all peers had waiting together.
    public var inboundPeakBytes: [ValidatorID: Int] = [:]
    public var inboundPeakTotalBytes = 0
}

/// A peer's dial address.
struct PeerAddress: Sendable {
    var host: String
    var port: Int

    init(_ text: String) throws(NetworkError) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else {
            throw NetworkError("address \"\(text)\" is not host:port")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw NetworkError("address \"\(text)\" has no host") }
        self.host = host
        self.port = port
    }
}

/// The peer-to-peer transport: one mutually authenticated TLS 1.3 connection to every other validator
/// in genesis, frames as in `docs/protocol.md`. The validator with the smaller id dials; the other accepts.
public final class PeerNetwork: Sendable {
    let consortium: Consortium
    let local: ValidatorID
    let config: NetworkConfig
    let logger: Logger
    let metrics: NetworkMetrics
    /// Refusal and budget warnings: at most one per second per reason (the counters stay exact).
    let warnings = LogRateLimiter()
    let group: any EventLoopGroup
    private let listen: PeerAddress
    private let localStatus: @Sendable () -> PeerStatus
    /// Every other validator's address.
    private let addresses: [ValidatorID: PeerAddress]
    /// Pinned key hash (lowercase hex) -> validator, for every other validator.
    private let keyOwners: [String: ValidatorID]
    private let serverContext: NIOSSLContext
    private let clientContext: NIOSSLContext
    /// Connection events and messages, in order per peer; peers with events waiting take turns, one event each.
    /// Single consumer. Nothing is dropped: each peer's events waiting here are bounded by its inbound budget
    /// (``NetworkConfig/peerInboundBytes`` of frames, ``NetworkConfig/peerInboundEvents``), released as the consumer
    /// takes them; a peer whose budget is full is not read from until it has room. Ends after ``shutdown()``.
    public let events: AsyncStream<NetworkEvent>
    private let queue: InboundQueue
    private let state = Mutex(State())

    private enum Phase { case idle, running, stopped }

    private struct State {
        var phase = Phase.idle
        var server: (any Channel)?
        var boundPort: Int?
        /// Connections whose hello was accepted.
        var links: [ValidatorID: PeerConnection] = [:]
        /// Every open connection, for shutdown and cut.
        var open: [ObjectIdentifier: PeerConnection] = [:]
        /// Inbound connections still in the handshake (TCP accepted, hello not yet accepted): their remote address.
        var handshaking: [ObjectIdentifier: String] = [:]
        /// The same, counted per remote address.
        var handshakingFrom: [String: Int] = [:]
        /// The dial in progress (connecting, handshaking or connected) per peer.
        var dialing: [ValidatorID: UInt64] = [:]
        var nextToken: UInt64 = 0
        var attempts: [ValidatorID: Int] = [:]
        var retries: [ValidatorID: Scheduled<Void>] = [:]
        var cut: Set<ValidatorID> = []
        var stats = NetworkStats()
    }

    /// - Parameters:
    ///   - listen: `host:port` to bind (port 0 picks a free one; see ``boundPort``). Peers are dialed at
    ///     their genesis `p2pAddress`.
    ///   - localStatus: our chain tip, for the hello and the periodic status. Called on network threads:
    ///     it must be cheap and thread-safe.
    /// - Throws: when any validator lacks `tlsKeySHA256`, two share one, or ours does not match `identity`
    ///   (mutual TLS cannot be switched off); when `local` is not in genesis, an address does not parse, or
    ///   `config` has ``NetworkConfig/problems``.
    public init(consortium: Consortium, local: ValidatorID, listen: String, identity: TLSIdentity,
                config: NetworkConfig, group: any EventLoopGroup, logger: Logger,
                localStatus: @escaping @Sendable () -> PeerStatus) throws {
        guard config.problems.isEmpty else {
            throw NetworkError("invalid network config: \(config.problems.joined(separator: "; "))")
        }
        guard let own = consortium.genesis.validators.first(where: { $0.id == local }) else {
            throw NetworkError("validator \(local) is not in genesis")
        }
        guard own.tlsKeySHA256?.lowercased() == identity.publicKeySHA256 else {
            throw NetworkError("TLS key of \(local) (\(identity.publicKeySHA256)) does not match genesis tlsKeySHA256 \(own.tlsKeySHA256 ?? "(none)")")
        }
        var addresses: [ValidatorID: PeerAddress] = [:]
        var keyOwners: [String: ValidatorID] = [:]
        var seen: Set<String> = []
        for validator in consortium.genesis.validators {
            guard let key = validator.tlsKeySHA256?.lowercased(), Hash32(hex: key) != nil else {
                throw NetworkError("validator \(validator.id) has no tlsKeySHA256 (64 hex digits) in genesis")
            }
            guard seen.insert(key).inserted else {
                throw NetworkError("validator \(validator.id) shares its tlsKeySHA256 with another validator")
            }
            guard validator.id != local else { continue }
            addresses[validator.id] = try PeerAddress(validator.p2pAddress)
            keyOwners[key] = validator.id
        }
        self.consortium = consortium
        self.local = local
        self.listen = try PeerAddress(listen)
        self.config = config
        self.group = group
        self.logger = logger
        self.localStatus = localStatus
        self.addresses = addresses
        self.keyOwners = keyOwners

        let certificate = try identity.sslCertificate()
        let key = try identity.sslPrivateKey()
        var server = TLSConfiguration.makeServerConfiguration(certificateChain: [.certificate(certificate)],
                                                             privateKey: .privateKey(key))
        var client = TLSConfiguration.makeClientConfiguration()
        client.certificateChain = [.certificate(certificate)]
        client.privateKey = .privateKey(key)
        for index in 0..<2 {
            var configuration = index == 0 ? server : client
            configuration.minimumTLSVersion = .tlsv13
            configuration.maximumTLSVersion = .tlsv13
            // Peer certificates are checked by pinning in the custom verification callback only.
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates([])
            // Wait at most a second for the peer's close_notify: a peer that stopped reading must not hold
            // its slot (or our shutdown) for long.
            configuration.shutdownTimeout = .seconds(1)
            if index == 0 { server = configuration } else { client = configuration }
        }
        serverContext = try NIOSSLContext(configuration: server)
        clientContext = try NIOSSLContext(configuration: client)
        let metrics = NetworkMetrics()
        let queue = InboundQueue(bytesLimit: config.peerInboundBytes, eventsLimit: config.peerInboundEvents,
                                 metrics: metrics)
        self.metrics = metrics
        self.queue = queue
        // Pulled: an event leaves the queue (and its peer's budget) only when the consumer asks for the next one.
        events = AsyncStream(unfolding: { await queue.next() })
    }

    // MARK: Public surface

    /// Binds the listener and begins dialing every peer with a larger id.
    public func start() async throws {
        let ready = state.withLock { state -> Bool in
            guard state.phase == .idle else { return false }
            state.phase = .running
            return true
        }
        guard ready else { throw NetworkError("network already started or shut down") }
        let server: any Channel
        do {
            server = try await ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(ChannelOptions.backlog, value: 128)
                .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try self.initialize(channel, direction: .inbound)
                    }
                }
                .bind(host: listen.host, port: listen.port).get()
        } catch {
            state.withLock { $0.phase = .stopped }
            queue.finish()
            throw NetworkError("cannot listen on \(listen.host):\(listen.port): \(error)")
        }
        let port = server.localAddress?.port
        let stillRunning = state.withLock { state -> Bool in
            state.server = server
            state.boundPort = port
            return state.phase == .running
        }
        guard stillRunning else {
            try? await server.close()
            return
        }
        logger.info("p2p listening", metadata: ["address": "\(listen.host):\(port ?? listen.port)",
                                                "validator": "\(local)"])
        for peer in addresses.keys.sorted() where local < peer { dial(peer) }
    }

    /// Closes the listener and every connection, stops dialing and ends ``events``.
    public func shutdown() async {
        let (server, open) = state.withLock { state -> ((any Channel)?, [PeerConnection]) in
            state.phase = .stopped
            for retry in state.retries.values { retry.cancel() }
            state.retries = [:]
            let server = state.server
            state.server = nil
            return (server, Array(state.open.values))
        }
        try? await server?.close()
        for connection in open { connection.close("shutdown", "local node shutting down") }
        for connection in open { try? await connection.channel.closeFuture.get() }
        queue.finish()
    }

    /// Sends `message` to every connected peer; it is encoded once.
    public func broadcast(_ message: WireMessage) {
        let links = state.withLock { Array($0.links.values) }
        guard !links.isEmpty, let buffer = outboundFrame(message) else { return }
        for link in links { link.enqueue(buffer, limit: config.peerQueuedBytes) }
        metrics.frameOut(message.kindName, peers: links.count)
        metrics.bytesOut.increment(by: Int64(buffer.readableBytes * links.count))
    }

    /// Sends `message` to `peer` if it is connected; otherwise drops it.
    public func send(_ message: WireMessage, to peer: ValidatorID) {
        guard let link = state.withLock({ $0.links[peer] }), let buffer = outboundFrame(message) else { return }
        if link.enqueue(buffer, limit: config.peerQueuedBytes) {
            metrics.frameOut(message.kindName)
            metrics.bytesOut.increment(by: Int64(buffer.readableBytes))
        }
    }

    /// Drops the link to `peer` (logged at warning); it may reconnect later, with backoff.
    public func disconnect(_ peer: ValidatorID, reason: String) {
        guard let link = state.withLock({ $0.links[peer] }) else { return }
        logger.warning("p2p disconnecting peer", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
        link.close("disconnect", reason)
    }

    /// Drops every connection with `peer` and refuses it (dial and accept) until ``heal(_:)``.
    public func cut(_ peer: ValidatorID) {
        let victims = state.withLock { state -> [PeerConnection] in
            state.cut.insert(peer)
            state.retries.removeValue(forKey: peer)?.cancel()
            return state.open.values.filter { $0.expected == peer }
        }
        logger.notice("p2p link cut", metadata: ["peer": "\(peer)"])
        for connection in victims { connection.close("cut", "link to \(peer) cut") }
    }

    /// Undoes ``cut(_:)``: the dialing side dials again at once.
    public func heal(_ peer: ValidatorID) {
        state.withLock { state in
            state.cut.remove(peer)
            state.attempts[peer] = 0
        }
        logger.notice("p2p link healed", metadata: ["peer": "\(peer)"])
        if local < peer { dial(peer) }
    }

    /// Peers whose hello was accepted, sorted.
    public var connectedPeers: [ValidatorID] { state.withLock { $0.links.keys.sorted() } }

    /// The listening port once ``start()`` has bound it.
    public var boundPort: Int? { state.withLock { $0.boundPort } }

    /// Refusal and rejection counts so far, and what waits for the consumer.
    public var stats: NetworkStats {
        var stats = state.withLock { state in
            var stats = state.stats
            stats.handshaking = state.handshaking.count
            return stats
        }
        for (peer, usage) in queue.usage {
            stats.inboundBytes[peer] = usage.bytes
            stats.inboundEvents[peer] = usage.events
        }
        (stats.inboundPeakBytes, stats.inboundPeakTotalBytes) = queue.peaks
        return stats
    }

    // MARK: Connections

    /// Sets up a new channel's pipeline. Runs on the channel's event loop.
    ///
    /// An inbound connection takes a place in the handshake pool (`maxInboundConnections`, at most
    /// `maxHandshakesPerAddress` from one address) until its hello is accepted; then it is the link of a genesis
    /// validator, which is not counted there (each validator has its own place), so connections that never
    /// authenticate cannot keep a validator out once it has, nor take its place.
    private func initialize(_ channel: any Channel, direction: PeerConnection.Direction) throws {
        let connection = PeerConnection(channel: channel, direction: direction)
        let host = connection.remoteHost
        let admitted = state.withLock { state -> (code: String, detail: String)? in
            guard state.phase == .running else { return ("shutting_down", "local node shutting down") }
            if direction == .inbound {
                let fromHost = state.handshakingFrom[host, default: 0]
                let refusal: (code: String, detail: String)?
                if fromHost >= config.maxHandshakesPerAddress {
                    refusal = ("handshakes_per_address",
                               "\(fromHost) connections from \(host) in the handshake, limit \(config.maxHandshakesPerAddress)")
                } else if state.handshaking.count >= config.maxInboundConnections {
                    refusal = ("handshake_pool_full",
                               "\(state.handshaking.count) inbound connections in the handshake, limit \(config.maxInboundConnections)")
                } else {
                    refusal = nil
                }
                if let refusal {
                    state.stats.inboundRefused[refusal.code, default: 0] += 1
                    return refusal
                }
                state.handshaking[connection.id] = host
                state.handshakingFrom[host] = fromHost + 1
                metrics.handshakesInProgress.record(state.handshaking.count)
            }
            state.open[connection.id] = connection
            return nil
        }
        if let refusal = admitted {
            if direction == .inbound, refusal.code != "shutting_down" {
                metrics.inboundRefused(refusal.code)
                if let suppressed = warnings.admit("inbound_refused.\(refusal.code)") {
                    logger.warning("p2p inbound connection refused",
                                   metadata: ["remote": "\(channel.remoteAddress.map { "\($0)" } ?? "?")",
                                              "reason": "\(refusal.code)", "detail": "\(refusal.detail)",
                                              "suppressed": "\(suppressed)"])
                }
            }
            throw NetworkError(refusal.detail)
        }
        channel.closeFuture.whenComplete { [self] _ in closed(connection) }

        let verify: NIOSSLCustomVerificationCallback = { [self] certificates, promise in
            promise.succeed(verifyPeer(certificates, on: connection))
        }
        let tls: NIOSSLHandler
        switch direction {
        case .inbound:
            tls = NIOSSLServerHandler(context: serverContext, customVerificationCallback: verify)
        case .outbound:
            tls = try NIOSSLClientHandler(context: clientContext, serverHostname: nil, customVerificationCallback: verify)
        }
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(InboundRateLimiter(bytesPerSecond: config.peerBytesPerSecond, metrics: metrics,
                                                   connection: connection))
        try pipeline.addHandler(tls)
        try pipeline.addHandler(PeerChannelHandler(network: self, connection: connection))
    }

    /// The pinning check: the peer's certificate key must be in genesis (outbound: exactly the dialed
    /// validator's), not cut, and (inbound) belong to a validator that dials us.
    private func verifyPeer(_ certificates: [NIOSSLCertificate], on connection: PeerConnection) -> NIOSSLVerificationResult {
        guard let leaf = certificates.first else {
            refuseHandshake(connection, "no_certificate", "peer presented no certificate", keyHash: nil)
            return .failed
        }
        let hash: String
        do { hash = try TLSIdentity.pin(leaf) } catch {
            refuseHandshake(connection, "bad_certificate", "cannot read the peer's public key: \(error)", keyHash: nil)
            return .failed
        }
        guard let owner = keyOwners[hash] else {
            refuseHandshake(connection, "unknown_key", "certificate key is not in genesis", keyHash: hash)
            return .failed
        }
        if case .outbound(let peer, _) = connection.direction, owner != peer {
            refuseHandshake(connection, "wrong_key", "dialed \(peer) but the key belongs to \(owner)", keyHash: hash)
            return .failed
        }
        if connection.isInbound, !(owner < local) {
            refuseHandshake(connection, "wrong_direction", "\(owner) must accept from \(local), not dial it", keyHash: hash)
            return .failed
        }
        if state.withLock({ $0.cut.contains(owner) }) {
            refuseHandshake(connection, "cut", "link to \(owner) is cut", keyHash: hash)
            return .failed
        }
        connection.pin(owner)
        return .certificateVerified
    }

    private func refuseHandshake(_ connection: PeerConnection, _ code: String, _ detail: String, keyHash: String?) {
        connection.setReason(code, detail)
        state.withLock { $0.stats.handshakesRefused[code, default: 0] += 1 }
        metrics.handshakeRefused(code)
        guard let suppressed = warnings.admit("handshake_refused.\(code)") else { return }
        var metadata: Logger.Metadata = ["reason": "\(code)", "detail": "\(detail)",
                                         "remote": "\(connection.channel.remoteAddress.map { "\($0)" } ?? "?")"]
        if let keyHash { metadata["keySHA256"] = "\(keyHash)" }
        if let peer = connection.expected { metadata["peer"] = "\(peer)" }
        metadata["suppressed"] = "\(suppressed)"
        logger.warning("p2p peer refused", metadata: metadata)
    }

    /// TLS + hello did not finish within `handshakeTimeoutMs`.
    func handshakeTimedOut(_ connection: PeerConnection) {
        let detail = "TLS and hello not complete within \(config.handshakeTimeoutMs) ms"
        refuseHandshake(connection, "handshake_timeout", detail, keyHash: nil)
        connection.close("handshake_timeout", detail)
    }

    func sendHello(on connection: PeerConnection) {
        let status = localStatus()
        let hello = PeerHello(chainID: consortium.chainID, genesisHash: consortium.genesisHash, validator: local,
                              height: status.height, lastBlockHash: status.lastBlockHash)
        write(.hello(hello), on: connection)
    }

    /// Every `statusIntervalMs` on an accepted link: drop it if silent too long, else send our status.
    func tick(_ connection: PeerConnection) {
        let silent = connection.silentMs
        // While its budget is full we do not read the peer: its silence is ours.
        guard silent <= UInt64(config.idleTimeoutMs) || connection.budgetPaused.load(ordering: .relaxed) else {
            logger.warning("p2p peer silent", metadata: ["peer": "\(connection.peer.map { "\($0)" } ?? "?")",
                                                         "silentMs": "\(silent)"])
            return connection.close("idle_timeout", "nothing received for \(silent) ms")
        }
        write(.status(localStatus()), on: connection)
    }

    private func write(_ message: WireMessage, on connection: PeerConnection) {
        guard let buffer = outboundFrame(message) else { return }
        if connection.enqueue(buffer, limit: config.peerQueuedBytes) {
            metrics.frameOut(message.kindName)
            metrics.bytesOut.increment(by: Int64(buffer.readableBytes))
        }
    }

    /// The framed message, or nil (logged, counted) when peers would refuse it: over `maxFrameBytes` (peers
    /// are assumed to run with the same limit) or over a count limit. Sending it would only get us disconnected.
    private func outboundFrame(_ message: WireMessage) -> ByteBuffer? {
        var refusal: String?
        switch message {
        case .transactions(let transactions) where transactions.count > WireLimits.transactionsPerFrame:
            refusal = "\(transactions.count) transactions exceed \(WireLimits.transactionsPerFrame) per frame"
        case .syncRequest(_, let count) where count < 1 || count > UInt32(WireLimits.syncBlocksPerRequest):
            refusal = "sync request count \(count) outside 1...\(WireLimits.syncBlocksPerRequest)"
        case .syncResponse(_, let blocks) where blocks.count > WireLimits.syncBlocksPerRequest:
            refusal = "\(blocks.count) blocks exceed \(WireLimits.syncBlocksPerRequest) per response"
        default:
            break
        }
        let frame = WireCodec.frame(message)
        if refusal == nil, frame.count - WireLimits.lengthPrefixBytes > config.maxFrameBytes {
            refusal = "frame of \(frame.count - WireLimits.lengthPrefixBytes) bytes exceeds maxFrameBytes \(config.maxFrameBytes)"
        }
        if let refusal {
            state.withLock { $0.stats.framesNotSent += 1 }
            metrics.frameNotSent(message.kindName)
            logger.error("p2p outbound message not sent", metadata: ["type": "\(message.kindName)", "reason": "\(refusal)"])
            return nil
        }
        return ByteBuffer(bytes: frame)
    }

    enum HelloOutcome { case accepted, refused, blocked }

    /// Checks the peer's hello (`bytes`: its frame); on success the connection becomes the link to that peer
    /// (replacing an older one) and `.connected` is queued. On failure the connection is closed. `blocked`: the
    /// peer's inbound budget cannot take `.connected` yet; nothing changed, and the connection is woken later.
    func acceptHello(_ hello: PeerHello, bytes: Int, on connection: PeerConnection) -> HelloOutcome {
        let refusal: (String, String)?
        if hello.protocolVersion != WireLimits.protocolVersion {
            refusal = ("protocol_version", "peer speaks version \(hello.protocolVersion), we speak \(WireLimits.protocolVersion)")
        } else if hello.chainID != consortium.chainID {
            refusal = ("wrong_chain", "peer is on chain \(hello.chainID), we are on \(consortium.chainID)")
        } else if hello.genesisHash != consortium.genesisHash {
            refusal = ("wrong_genesis", "peer genesis \(hello.genesisHash.hex), ours \(consortium.genesisHash.hex)")
        } else if hello.validator != connection.pinned {
            refusal = ("hello_validator_mismatch",
                       "hello claims \(hello.validator) but the TLS key is \(connection.pinned.map { "\($0)" } ?? "unpinned")'s")
        } else {
            refusal = nil
        }
        if let (code, detail) = refusal {
            refuseHandshake(connection, code, detail, keyHash: nil)
            connection.close(code, detail)
            return .refused
        }
        let peer = hello.validator
        let outcome = state.withLock { state -> (outcome: HelloOutcome, replaced: PeerConnection?) in
            guard state.phase == .running, !state.cut.contains(peer) else { return (.refused, nil) }
            let old = state.links[peer]
            let replaced = old.map { _ in
                NetworkEvent.disconnected(peer, reason: "replaced: a new connection from \(peer) completed hello")
            }
            switch queue.offer(.connected(peer, hello), from: peer, bytes: bytes, after: replaced,
                               waiter: connection.budgetWaiter) {
            case .blocked: return (.blocked, nil)
            case .finished: return (.refused, nil)
            case .queued: break
            }
            connection.accept(hello)
            state.links[peer] = connection
            state.attempts[peer] = 0
            leaveHandshakePool(connection, &state)
            metrics.connectedPeers.record(state.links.count)
            return (.accepted, old)
        }
        switch outcome.outcome {
        case .blocked:
            return .blocked
        case .refused:
            connection.close("cut", "link to \(peer) is cut or the node is stopping")
            return .refused
        case .accepted:
            break
        }
        if let old = outcome.replaced { old.close("replaced", "a newer connection from \(peer) completed hello") }
        logger.info("p2p peer connected", metadata: ["peer": "\(peer)", "height": "\(hello.height)",
                                                     "inbound": "\(connection.isInbound)"])
        return .accepted
    }

    /// Hands a frame (`bytes`: its type and body) from an accepted connection to the consumer; dropped if the link
    /// was replaced. False when the peer's inbound budget cannot take it yet: nothing was queued, and the
    /// connection is woken when there is room.
    func deliver(_ message: WireMessage, bytes: Int, from connection: PeerConnection) -> Bool {
        guard let peer = connection.peer, !connection.isClosing else { return true }
        return state.withLock { state in
            guard state.links[peer] === connection else { return true }
            return queue.offer(.message(peer, message), from: peer, bytes: bytes, waiter: connection.budgetWaiter)
                != .blocked
        }
    }

    /// Reading from `connection` stops: its peer's budget cannot take the next frame. Counted, logged (at most
    /// once a second per peer).
    func inboundPaused(_ connection: PeerConnection) {
        connection.budgetPaused.store(true, ordering: .relaxed)
        let peer = connection.expected
        state.withLock { state in
            if let peer { state.stats.inboundBudgetPauses[peer, default: 0] += 1 }
        }
        metrics.inboundBudgetPauses.increment()
        let name = peer.map { "\($0)" } ?? "?"
        guard let suppressed = warnings.admit("inbound_budget.\(name)") else { return }
        let usage = peer.flatMap { queue.usage[$0] } ?? InboundQueue.Usage()
        logger.warning("p2p peer over its inbound budget: reading paused until the node takes its events", metadata: [
            "peer": "\(name)", "bufferedBytes": "\(usage.bytes)", "bufferedEvents": "\(usage.events)",
            "limitBytes": "\(config.peerInboundBytes)", "limitEvents": "\(config.peerInboundEvents)",
            "suppressed": "\(suppressed)"])
    }

    /// Reading from `connection` resumes.
    func inboundResumed(_ connection: PeerConnection) {
        connection.heard()
        connection.budgetPaused.store(false, ordering: .relaxed)
    }

    /// The connection is no longer in the handshake pool (hello accepted, or closed).
    private func leaveHandshakePool(_ connection: PeerConnection, _ state: inout State) {
        guard let host = state.handshaking.removeValue(forKey: connection.id) else { return }
        let left = state.handshakingFrom[host, default: 1] - 1
        state.handshakingFrom[host] = left > 0 ? left : nil
        metrics.handshakesInProgress.record(state.handshaking.count)
    }

    /// A frame broke the protocol: count it, log it, close the connection.
    func rejectFrame(_ error: WireError, on connection: PeerConnection) {
        state.withLock { $0.stats.framesRejected[error.code, default: 0] += 1 }
        metrics.frameRejected(error.code)
        if let suppressed = warnings.admit("frame_rejected.\(error.code)") {
            logger.warning("p2p frame rejected", metadata: [
                "peer": "\(connection.peer.map { "\($0)" } ?? connection.expected.map { "\($0)" } ?? "?")",
                "reason": "\(error.code)", "detail": "\(error.message)", "suppressed": "\(suppressed)"])
        }
        connection.close(error.code, error.message)
    }

    /// A channel closed: forget it, emit `.disconnected` if it was the link, and redial if we are the dialer.
    private func closed(_ connection: PeerConnection) {
        let reason = connection.reason
        let (wasLink, redial) = state.withLock { state -> (ValidatorID?, ValidatorID?) in
            state.open.removeValue(forKey: connection.id)
            state.stats.disconnects[reason.code, default: 0] += 1
            leaveHandshakePool(connection, &state)
            queue.cancel(connection.id)
            var wasLink: ValidatorID?
            if let peer = connection.peer, state.links[peer] === connection {
                state.links.removeValue(forKey: peer)
                metrics.connectedPeers.record(state.links.count)
                // Queued under the state lock, like everything of this peer, so its events keep their order.
                queue.push(.disconnected(peer, reason: reason.text), from: peer)
                wasLink = peer
            }
            var redial: ValidatorID?
            if case .outbound(let peer, let token) = connection.direction, state.dialing[peer] == token {
                state.dialing.removeValue(forKey: peer)
                redial = peer
            }
            return (wasLink, redial)
        }
        metrics.disconnect(reason.code)
        if let peer = wasLink {
            logger.notice("p2p peer disconnected", metadata: ["peer": "\(peer)", "reason": "\(reason.text)"])
        }
        if let peer = redial { scheduleRedial(peer) }
    }

    // MARK: Dialing

    private func dial(_ peer: ValidatorID) {
        guard let address = addresses[peer] else { return }
        let token = state.withLock { state -> UInt64? in
            guard state.phase == .running, !state.cut.contains(peer), state.links[peer] == nil,
                  state.dialing[peer] == nil else { return nil }
            state.retries.removeValue(forKey: peer)?.cancel()
            state.nextToken += 1
            state.dialing[peer] = state.nextToken
            return state.nextToken
        }
        guard let token else { return }
        ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(Int64(config.handshakeTimeoutMs)))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.initialize(channel, direction: .outbound(peer: peer, token: token))
                }
            }
            .connect(host: address.host, port: address.port)
            .whenFailure { [self] error in
                let mine = state.withLock { state -> Bool in
                    guard state.dialing[peer] == token else { return false }
                    state.dialing.removeValue(forKey: peer)
                    return true
                }
                logger.debug("p2p dial failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
                if mine { scheduleRedial(peer) }
            }
    }

    /// Dials `peer` again after an exponential, jittered delay, unless cut, stopped or already linked.
    private func scheduleRedial(_ peer: ValidatorID) {
        state.withLock { state in
            guard state.phase == .running, !state.cut.contains(peer), state.links[peer] == nil,
                  state.dialing[peer] == nil else { return }
            let attempt = state.attempts[peer, default: 0]
            state.attempts[peer] = attempt + 1
            let ceiling = min(config.reconnectMaxMs, config.reconnectMinMs << min(attempt, 20))
            let delay = Int.random(in: max(1, ceiling / 2)...max(1, ceiling))
            state.retries.removeValue(forKey: peer)?.cancel()
            state.retries[peer] = group.next().scheduleTask(in: .milliseconds(Int64(delay))) { [self] in dial(peer) }
        }
    }
}
