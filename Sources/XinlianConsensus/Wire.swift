import XinlianCore
import XinlianCrypto

/// Fixed limits of the wire protocol, checked by ``WireCodec`` before it allocates anything.
public enum WireLimits {
    /// The protocol version carried in ``PeerHello``; a peer speaking another version is disconnected.
    public static let protocolVersion: UInt16 = 2
    /// Most transactions in one ``WireMessage/transactions(_:)`` frame.
    public static let transactionsPerFrame = 1024
    /// Most blocks asked for (and returned) by one sync request.
    public static let syncBlocksPerRequest = 64
    /// The largest frame (type byte + body) ``WireCodec/decode(_:)`` accepts at all. A connection applies
    /// its own, smaller ``NetworkConfig/maxFrameBytes`` before buffering a frame.
    public static let frameBytes = Limits.recordBytes * syncBlocksPerRequest + 1024 * 1024
    /// A connection's default frame limit (`NetworkConfig.maxFrameBytes`): one largest block record and room
    /// for the frame's own fields. Every node of a consortium should use the same.
    public static let defaultMaxFrameBytes = Limits.recordBytes + 64 * 1024
    /// Size of the length prefix in front of every frame.
    public static let lengthPrefixBytes = 4
    /// The largest hello frame (type byte + body: version, two names of at most ``Name/lengthLimit`` bytes with
    /// their 4-byte lengths, two hashes, a height). Until a connection's hello is accepted, no larger frame is
    /// buffered.
    public static let helloFrameBytes = 1 + 2 + 2 * (4 + Name.lengthLimit) + 2 * 32 + 8
}

/// The first frame each side sends after the TLS handshake.
public struct PeerHello: Sendable, Equatable, Hashable {
    public var protocolVersion: UInt16
    public var chainID: ChainID
    public var genesisHash: Hash32
    public var validator: ValidatorID
    public var height: UInt64
    public var lastBlockHash: Hash32

    public init(protocolVersion: UInt16 = WireLimits.protocolVersion, chainID: ChainID, genesisHash: Hash32,
                validator: ValidatorID, height: UInt64, lastBlockHash: Hash32) {
        self.protocolVersion = protocolVersion
        self.chainID = chainID
        self.genesisHash = genesisHash
        self.validator = validator
        self.height = height
        self.lastBlockHash = lastBlockHash
    }
}

/// A peer's chain tip, sent periodically and whenever it changes.
public struct PeerStatus: Sendable, Equatable, Hashable {
    public var height: UInt64
    public var lastBlockHash: Hash32

    public init(height: UInt64, lastBlockHash: Hash32) {
        self.height = height
        self.lastBlockHash = lastBlockHash
    }
}

/// Everything that crosses the wire after the TLS handshake; each is one frame.
public enum WireMessage: Sendable, Equatable, Hashable {
    /// First frame each side sends; anything else first is a disconnect.
    case hello(PeerHello)
    /// Periodic, and on change.
    case status(PeerStatus)
    /// Gossip: at most ``WireLimits/transactionsPerFrame``.
    case transactions([Transaction])
    case consensus(ConsensusMessage)
    /// `count` in `1...WireLimits.syncBlocksPerRequest`.
    case syncRequest(fromHeight: UInt64, count: UInt32)
    /// Consecutive blocks from `fromHeight`; may be fewer than asked (byte budget); empty means cannot serve.
    case syncResponse(fromHeight: UInt64, blocks: [CommittedBlock])

    /// The type byte of this message on the wire.
    public var typeByte: UInt8 {
        switch self {
        case .hello: WireType.hello
        case .status: WireType.status
        case .transactions: WireType.transactions
        case .consensus: WireType.consensus
        case .syncRequest: WireType.syncRequest
        case .syncResponse: WireType.syncResponse
        }
    }

    /// A short name for logs and metric labels.
    public var kindName: String { WireType.name(typeByte) }
}

/// Type bytes of the frames (see `docs/protocol.md`).
public enum WireType {
    public static let hello: UInt8 = 0x01
    public static let status: UInt8 = 0x02
    public static let transactions: UInt8 = 0x03
    public static let consensus: UInt8 = 0x04
    public static let syncRequest: UInt8 = 0x05
    public static let syncResponse: UInt8 = 0x06

    public static func name(_ type: UInt8) -> String {
        switch type {
        case hello: "hello"
        case status: "status"
        case transactions: "transactions"
        case consensus: "consensus"
        case syncRequest: "sync_request"
        case syncResponse: "sync_response"
        default: "unknown"
        }
    }
}

/// Why a frame was refused. `code` is stable and low-cardinality (it labels metrics):
/// `empty_frame`, `frame_too_large`, `unknown_type`, `count_out_of_range`, `count_mismatch`,
/// `trailing_bytes`, `malformed`.
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    static func malformed(_ error: DecodingError) -> WireError {
        WireError(code: error.code == "trailing_bytes" ? "trailing_bytes" : "malformed", message: error.description)
    }
}

/// The byte layout of ``WireMessage``: one type byte, then the canonical body (see `docs/protocol.md`).
/// The 4-byte length prefix is added by the transport (``frame(_:)``).
public enum WireCodec {
    /// Type byte + body.
    public static func encode(_ message: WireMessage) -> [UInt8] {
        var encoder = CanonicalEncoder(capacity: 64)
        encoder.u8(message.typeByte)
        switch message {
        case .hello(let hello):
            encoder.u16(hello.protocolVersion)
            encoder.name(hello.chainID)
            encoder.hash(hello.genesisHash)
            encoder.name(hello.validator)
            encoder.u64(hello.height)
            encoder.hash(hello.lastBlockHash)
        case .status(let status):
            encoder.u64(status.height)
            encoder.hash(status.lastBlockHash)
        case .transactions(let transactions):
            encoder.list(transactions) { encoder, transaction in transaction.encode(to: &encoder) }
            PersonalSidecars.encode(transactions, to: &encoder)
        case .consensus(let message):
            message.encode(to: &encoder)
        case .syncRequest(let fromHeight, let count):
            encoder.u64(fromHeight)
            encoder.u32(count)
        case .syncResponse(let fromHeight, let blocks):
            encoder.u64(fromHeight)
            encoder.list(blocks) { encoder, block in
                block.encode(to: &encoder)
                PersonalSidecars.encode(block.block.transactions, to: &encoder)
            }
        }
        return encoder.bytes
    }

    /// Length prefix + type byte + body: exactly what goes into the TLS stream.
    public static func frame(_ message: WireMessage) -> [UInt8] {
        let body = encode(message)
        var framed: [UInt8] = []
        framed.reserveCapacity(body.count + WireLimits.lengthPrefixBytes)
        let length = UInt32(truncatingIfNeeded: body.count)
        framed.append(contentsOf: [UInt8(truncatingIfNeeded: length >> 24), UInt8(truncatingIfNeeded: length >> 16),
                                   UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)])
        framed.append(contentsOf: body)
        return framed
    }

    /// A sync response holding the longest prefix of `blocks` (at most ``WireLimits/syncBlocksPerRequest``)
    /// whose frame (type byte + body) fits in `maxFrameBytes`, the receiver's limit. Empty when not even
    /// the first block fits, which the receiver reads as "cannot serve".
    public static func syncResponse(fromHeight: UInt64, blocks: [CommittedBlock],
                                    maxFrameBytes: Int = WireLimits.defaultMaxFrameBytes) -> WireMessage {
        var size = 1 + 8 + 4  // type, fromHeight, count
        var fitting: [CommittedBlock] = []
        for block in blocks.prefix(WireLimits.syncBlocksPerRequest) {
            size += block.canonicalBytes.count + PersonalSidecars.byteCount(block.block.transactions)
            guard size <= maxFrameBytes else { break }
            fitting.append(block)
        }
        return .syncResponse(fromHeight: fromHeight, blocks: fitting)
    }

    /// Decodes one frame (type byte + body, without the length prefix). Every declared count is checked
    /// against its limit and against the bytes left before anything is allocated; trailing bytes are refused.
    public static func decode(_ frame: [UInt8]) throws(WireError) -> WireMessage {
        guard !frame.isEmpty else { throw WireError(code: "empty_frame", message: "frame has no type byte") }
        guard frame.count <= WireLimits.frameBytes else {
            throw WireError(code: "frame_too_large", message: "\(frame.count) bytes exceeds \(WireLimits.frameBytes)")
        }
        var decoder = CanonicalDecoder(frame)
        let message: WireMessage
        do {
            let type = try decoder.u8("wire.type")
            switch type {
            case WireType.hello:
                message = .hello(PeerHello(protocolVersion: try decoder.u16("hello.protocolVersion"),
                                           chainID: try decoder.name("hello.chainId"),
                                           genesisHash: try decoder.hash("hello.genesisHash"),
                                           validator: try decoder.name("hello.validator"),
                                           height: try decoder.u64("hello.height"),
                                           lastBlockHash: try decoder.hash("hello.lastBlockHash")))
            case WireType.status:
                message = .status(PeerStatus(height: try decoder.u64("status.height"),
                                             lastBlockHash: try decoder.hash("status.lastBlockHash")))
            case WireType.transactions:
                let count = try count(&decoder, "transactions.count", limit: WireLimits.transactionsPerFrame,
                                      allowZero: true)
                var transactions: [Transaction] = []
                transactions.reserveCapacity(count)
                for _ in 0..<count { transactions.append(try Transaction(from: &decoder)) }
                try PersonalSidecars.attach(to: &transactions, from: &decoder, field: "transactions.personal")
                message = .transactions(transactions)
            case WireType.consensus:
                guard decoder.remaining <= ConsensusLimits.messageBytes else {
                    throw WireError(code: "frame_too_large",
                                    message: "consensus body of \(decoder.remaining) bytes exceeds \(ConsensusLimits.messageBytes)")
                }
                message = .consensus(try ConsensusMessage(from: &decoder))
            case WireType.syncRequest:
                let fromHeight = try decoder.u64("sync_request.fromHeight")
                let countAt = decoder.offset
                let count = try decoder.u32("sync_request.count")
                guard count >= 1, count <= UInt32(WireLimits.syncBlocksPerRequest) else {
                    throw WireError(code: "count_out_of_range",
                                    message: "sync_request.count \(count) at byte \(countAt) outside 1...\(WireLimits.syncBlocksPerRequest)")
                }
                message = .syncRequest(fromHeight: fromHeight, count: count)
            case WireType.syncResponse:
                let fromHeight = try decoder.u64("sync_response.fromHeight")
                let count = try count(&decoder, "sync_response.count", limit: WireLimits.syncBlocksPerRequest,
                                      allowZero: true)
                var blocks: [CommittedBlock] = []
                blocks.reserveCapacity(count)
                for index in 0..<count {
                    let at = decoder.offset
                    var block = try CommittedBlock(from: &decoder)
                    try PersonalSidecars.attach(to: &block.block.transactions, from: &decoder, field: "sync_response.personal")
                    let (expected, overflow) = fromHeight.addingReportingOverflow(UInt64(index))
                    guard !overflow, block.block.header.height == expected else {
                        throw WireError(code: "malformed",
                                        message: "sync_response block \(index) at byte \(at) has height \(block.block.header.height), expected consecutive from \(fromHeight)")
                    }
                    blocks.append(block)
                }
                message = .syncResponse(fromHeight: fromHeight, blocks: blocks)
            default:
                throw WireError(code: "unknown_type", message: "unknown frame type 0x\(String(type, radix: 16))")
            }
            try decoder.finish("wire.\(WireType.name(type))")
        } catch let error as DecodingError {
            throw .malformed(error)
        } catch let error as WireError {
            throw error
        } catch {
            throw WireError(code: "malformed", message: "\(error)")
        }
        return message
    }

    /// Reads a `u32` count and checks it against `limit` and against the bytes left (every element takes at
    /// least one byte) before the caller allocates.
    private static func count(_ decoder: inout CanonicalDecoder, _ field: String, limit: Int,
                              allowZero: Bool) throws -> Int {
        let at = decoder.offset
        let count = Int(try decoder.u32(field))
        guard count <= limit, allowZero || count > 0 else {
            throw WireError(code: "count_out_of_range", message: "\(field) \(count) at byte \(at) exceeds \(limit)")
        }
        guard count <= decoder.remaining else {
            throw WireError(code: "count_mismatch",
                            message: "\(field) \(count) at byte \(at) but only \(decoder.remaining) bytes follow")
        }
        return count
    }
}
