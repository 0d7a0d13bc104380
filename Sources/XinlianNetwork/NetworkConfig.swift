import XinlianConsensus
import XinlianCore

/// Limits and timings of the peer-to-peer transport. Every field has a default; decoding a JSON object
/// with missing keys uses the defaults.
public struct NetworkConfig: Codable, Sendable, Equatable {
    /// Inbound connections still in the handshake (TCP accepted, TLS + hello not done) at once; one more is closed at
    /// accept. Authenticated links are not counted: each genesis validator has its own place. Default 32.
    public var maxInboundConnections: Int
    /// Inbound connections still in the handshake from one remote IP address at once; one more is closed at
    /// accept. Default 4.
    public var maxHandshakesPerAddress: Int
    /// Largest frame (type byte + body) accepted from a peer; a larger declared length disconnects before
    /// anything is buffered. Default `Limits.recordBytes + 64 KiB`: one block with its certificate.
    public var maxFrameBytes: Int
    /// Inbound bytes per second per connection (token bucket, one second of burst); over it, reading
    /// pauses (backpressure). Default 64 MiB/s.
    public var peerBytesPerSecond: Int
    /// Outbound bytes queued per peer; over it the peer is dropped ("slow peer"). Default 64 MiB.
    public var peerQueuedBytes: Int
    /// Time allowed for TCP connect, TLS handshake and hello together; an inbound connection that has not
    /// authenticated by then gives its place back. Default 3000 ms.
    public var handshakeTimeoutMs: Int
    /// First reconnect delay; doubles per failed attempt, with jitter. Default 200 ms.
    public var reconnectMinMs: Int
    /// Longest reconnect delay. Default 2 000 ms: a restarted node is dialled again by the peers with smaller ids
    /// within about that (it dials only larger ids itself), and a dial of a down peer costs little.
    public var reconnectMaxMs: Int
    /// Interval of the periodic status frame. Default 1000 ms.
    public var statusIntervalMs: Int
    /// A link on which nothing at all arrives for this long is dropped (`idle_timeout`): with status every
    /// `statusIntervalMs` a live peer is never silent, and a dead host is noticed without waiting for TCP.
    /// Must exceed `statusIntervalMs`. Default 10 000 ms.
    public var idleTimeoutMs: Int
    /// Frame bytes (type + body) of one peer decoded and not yet taken by the node from `PeerNetwork.events`. A frame
    /// that would go over it is held and the peer is not read from until the node has taken enough (backpressure).
    /// At least `maxFrameBytes`. Default 64 MiB.
    public var peerInboundBytes: Int
    /// Events of one peer (its `connected` and messages) not yet taken by the node; over it, as for
    /// `peerInboundBytes`. Default 8192.
    public var peerInboundEvents: Int

    public static let defaultMaxInboundConnections = 32
    public static let defaultMaxHandshakesPerAddress = 4
    public static let defaultMaxFrameBytes = WireLimits.defaultMaxFrameBytes
    public static let defaultPeerBytesPerSecond = 64 * 1024 * 1024
    public static let defaultPeerQueuedBytes = 64 * 1024 * 1024
    public static let defaultHandshakeTimeoutMs = 3000
    public static let defaultReconnectMinMs = 200
    public static let defaultReconnectMaxMs = 2_000
    public static let defaultStatusIntervalMs = 1000
    public static let defaultIdleTimeoutMs = 10_000
    public static let defaultPeerInboundBytes = 64 * 1024 * 1024
    public static let defaultPeerInboundEvents = 8192

    public init() {
        maxInboundConnections = Self.defaultMaxInboundConnections
        maxHandshakesPerAddress = Self.defaultMaxHandshakesPerAddress
        maxFrameBytes = Self.defaultMaxFrameBytes
        peerBytesPerSecond = Self.defaultPeerBytesPerSecond
        peerQueuedBytes = Self.defaultPeerQueuedBytes
        handshakeTimeoutMs = Self.defaultHandshakeTimeoutMs
        reconnectMinMs = Self.defaultReconnectMinMs
        reconnectMaxMs = Self.defaultReconnectMaxMs
        statusIntervalMs = Self.defaultStatusIntervalMs
        idleTimeoutMs = Self.defaultIdleTimeoutMs
        peerInboundBytes = Self.defaultPeerInboundBytes
        peerInboundEvents = Self.defaultPeerInboundEvents
    }

    private enum CodingKeys: String, CodingKey {
        case maxInboundConnections, maxHandshakesPerAddress, maxFrameBytes, peerBytesPerSecond, peerQueuedBytes
        case handshakeTimeoutMs, reconnectMinMs, reconnectMaxMs, statusIntervalMs, idleTimeoutMs
        case peerInboundBytes, peerInboundEvents
    }

    public init(from decoder: any Decoder) throws {
        self.init()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        maxInboundConnections = try container.decodeIfPresent(Int.self, forKey: .maxInboundConnections) ?? maxInboundConnections
        maxHandshakesPerAddress = try container.decodeIfPresent(Int.self, forKey: .maxHandshakesPerAddress)
            ?? maxHandshakesPerAddress
        maxFrameBytes = try container.decodeIfPresent(Int.self, forKey: .maxFrameBytes) ?? maxFrameBytes
        peerBytesPerSecond = try container.decodeIfPresent(Int.self, forKey: .peerBytesPerSecond) ?? peerBytesPerSecond
        peerQueuedBytes = try container.decodeIfPresent(Int.self, forKey: .peerQueuedBytes) ?? peerQueuedBytes
        handshakeTimeoutMs = try container.decodeIfPresent(Int.self, forKey: .handshakeTimeoutMs) ?? handshakeTimeoutMs
        reconnectMinMs = try container.decodeIfPresent(Int.self, forKey: .reconnectMinMs) ?? reconnectMinMs
        // A configuration that raised only the first delay keeps a valid range (the default ceiling was lowered).
        reconnectMaxMs = try container.decodeIfPresent(Int.self, forKey: .reconnectMaxMs) ?? max(reconnectMaxMs, reconnectMinMs)
        statusIntervalMs = try container.decodeIfPresent(Int.self, forKey: .statusIntervalMs) ?? statusIntervalMs
        idleTimeoutMs = try container.decodeIfPresent(Int.self, forKey: .idleTimeoutMs) ?? idleTimeoutMs
        peerInboundBytes = try container.decodeIfPresent(Int.self, forKey: .peerInboundBytes) ?? peerInboundBytes
        peerInboundEvents = try container.decodeIfPresent(Int.self, forKey: .peerInboundEvents) ?? peerInboundEvents
    }

    /// Values a node cannot run with: non-positive sizes or timings, a reconnect range upside down, or an inbound
    /// budget that cannot hold one frame.
    public var problems: [String] {
        var problems: [String] = []
        if maxInboundConnections < 0 { problems.append("maxInboundConnections must be at least 0") }
        if maxHandshakesPerAddress < 1 { problems.append("maxHandshakesPerAddress must be positive") }
        if maxFrameBytes < 64 { problems.append("maxFrameBytes must be at least 64") }
        if peerBytesPerSecond < 1 { problems.append("peerBytesPerSecond must be positive") }
        if peerQueuedBytes < 1 { problems.append("peerQueuedBytes must be positive") }
        if handshakeTimeoutMs < 1 { problems.append("handshakeTimeoutMs must be positive") }
        if reconnectMinMs < 1 || reconnectMaxMs < reconnectMinMs {
            problems.append("reconnect delays must satisfy 1 <= reconnectMinMs <= reconnectMaxMs")
        }
        if statusIntervalMs < 1 { problems.append("statusIntervalMs must be positive") }
        if idleTimeoutMs <= statusIntervalMs { problems.append("idleTimeoutMs must exceed statusIntervalMs") }
        if peerInboundBytes < maxFrameBytes { problems.append("peerInboundBytes must be at least maxFrameBytes") }
        if peerInboundEvents < 1 { problems.append("peerInboundEvents must be positive") }
        return problems
    }
}
