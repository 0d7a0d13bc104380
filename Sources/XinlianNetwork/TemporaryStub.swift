// Temporary: the message types of the transport being built on branch `net`; replaced at merge.
import XinlianConsensus
import XinlianCore
import XinlianCrypto

public enum WireMessage: Sendable, Equatable {
    case hello(PeerHello)
    case status(PeerStatus)
    case transactions([Transaction])
    case consensus(ConsensusMessage)
    case syncRequest(fromHeight: UInt64, count: UInt32)
    case syncResponse(fromHeight: UInt64, blocks: [CommittedBlock])
}

public struct PeerHello: Sendable, Equatable {
    public var protocolVersion: UInt16
    public var chainID: ChainID
    public var genesisHash: Hash32
    public var validator: ValidatorID
    public var height: UInt64
    public var lastBlockHash: Hash32
    public init(protocolVersion: UInt16, chainID: ChainID, genesisHash: Hash32, validator: ValidatorID, height: UInt64,
                lastBlockHash: Hash32) {
        self.protocolVersion = protocolVersion
        self.chainID = chainID
        self.genesisHash = genesisHash
        self.validator = validator
        self.height = height
        self.lastBlockHash = lastBlockHash
    }
}

public struct PeerStatus: Sendable, Equatable {
    public var height: UInt64
    public var lastBlockHash: Hash32
    public init(height: UInt64, lastBlockHash: Hash32) {
        self.height = height
        self.lastBlockHash = lastBlockHash
    }
}

public enum NetworkEvent: Sendable {
    case connected(ValidatorID, PeerHello)
    case message(ValidatorID, WireMessage)
    case disconnected(ValidatorID, reason: String)
}

public enum WireLimits {
    public static let transactionsPerFrame = 1024
    public static let syncBlocksPerRequest = 64
}
