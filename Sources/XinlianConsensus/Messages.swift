import XinlianCore
import XinlianCrypto

/// Size limits of consensus messages, checked by every decoder before it reads.
public enum ConsensusLimits {
    /// Largest encoded ``SignedVote`` (a vote is at most ~180 bytes plus a 128-byte signature).
    public static let signedVoteBytes = 512
    /// Largest encoded ``SignedProposal``.
    public static let signedProposalBytes = 512
    /// Largest encoded ``ConsensusMessage``: a signed proposal with its block.
    public static let messageBytes = Limits.blockBytes + signedProposalBytes + 16
}

/// A proposer's claim that `blockHash` is its proposal for (`height`, `round`).
///
/// `polRound` is the round of the proof-of-lock (the Tendermint paper's `validRound`); `nil` stands for
/// the paper's `-1` and is encoded as an absent option.
public struct Proposal: Hashable, Sendable, CanonicalCodable {
    /// 2: the proposer also signs the digest of the personal data travelling with its block.
    public static let version: UInt8 = 2

    public var chainID: ChainID
    public var height: UInt64
    public var round: UInt32
    public var blockHash: Hash32
    public var polRound: UInt32?
    public var proposer: ValidatorID
    /// ``PersonalSidecars/digest(_:suite:)`` of the block's transactions as proposed (nil: none).
    public var personalDigest: Hash32?

    public init(chainID: ChainID, height: UInt64, round: UInt32, blockHash: Hash32, polRound: UInt32?,
                proposer: ValidatorID, personalDigest: Hash32? = nil) {
        self.chainID = chainID
        self.height = height
        self.round = round
        self.blockHash = blockHash
        self.polRound = polRound
        self.proposer = proposer
        self.personalDigest = personalDigest
    }

    public func encode(to encoder: inout CanonicalEncoder) {
        encoder.u8(Self.version)
        encoder.name(chainID)
        encoder.u64(height)
        encoder.u32(round)
        encoder.hash(blockHash)
        encoder.optional(polRound) { $0.u32($1) }
        encoder.name(proposer)
        encoder.optional(personalDigest) { $0.hash($1) }
    }

    /// Whether `block` carries exactly the personal data this proposal signed.
    public func carriesSignedPersonalData(_ block: Block, suite: CryptoSuite) -> Bool {
        PersonalSidecars.digest(block.transactions, suite: suite) == personalDigest
    }

    public init(from decoder: inout CanonicalDecoder) throws(DecodingError) {
        let versionAt = decoder.offset
        let version = try decoder.u8("proposal.version")
        guard version == Self.version else {
            throw decoder.error("unsupported_version", "proposal.version", "version \(version)", at: versionAt)
        }
        chainID = try decoder.name("proposal.chainId")
        height = try decoder.u64("proposal.height")
        round = try decoder.u32("proposal.round")
        blockHash = try decoder.hash("proposal.blockHash")
        let polAt = decoder.offset
        polRound = try decoder.optional("proposal.polRound") { (d: inout CanonicalDecoder) throws(DecodingError) in
            try d.u32("proposal.polRound")
        }
        if let polRound, polRound >= round {
            throw decoder.error("invalid_value", "proposal.polRound", "polRound \(polRound) must be below round \(round)",
                                at: polAt)
        }
        proposer = try decoder.name("proposal.proposer")
        personalDigest = try decoder.optional("proposal.personalDigest") { (d: inout CanonicalDecoder) throws(DecodingError) in
            try d.hash("proposal.personalDigest")
        }
    }

    /// The bytes a proposer signs: `0x23` then the canonical proposal.
    public var signingBytes: [UInt8] { [Domain.signProposal] + canonicalBytes }
}

/// A proposal and the proposer's signature over ``Proposal/signingBytes``.
public struct SignedProposal: Hashable, Sendable, CanonicalCodable {
    public var proposal: Proposal
    public var signature: [UInt8]

    public init(proposal: Proposal, signature: [UInt8]) {
        self.proposal = proposal
        self.signature = signature
    }

    public func encode(to encoder: inout CanonicalEncoder) {
        proposal.encode(to: &encoder)
        encoder.byteString(signature)
    }

    public init(from decoder: inout CanonicalDecoder) throws(DecodingError) {
        proposal = try Proposal(from: &decoder)
        signature = try decoder.byteString("proposal.signature", limit: Limits.signatureBytes)
    }
}

/// A vote and the voter's signature over `Vote.signingBytes`.
public struct SignedVote: Hashable, Sendable, CanonicalCodable {
    public var vote: Vote
    public var signature: [UInt8]

    public init(vote: Vote, signature: [UInt8]) {
        self.vote = vote
        self.signature = signature
    }

    public func encode(to encoder: inout CanonicalEncoder) {
        vote.encode(to: &encoder)
        encoder.byteString(signature)
    }

    public init(from decoder: inout CanonicalDecoder) throws(DecodingError) {
        vote = try Vote(from: &decoder)
        signature = try decoder.byteString("vote.signature", limit: Limits.signatureBytes)
    }
}

/// What validators send each other on the consensus channel.
///
/// Encoding: a tag byte (`1` proposal, `2` vote), then a ``SignedProposal``, its `Block` and the personal data of
/// the block's transactions (``PersonalSidecars``), or a ``SignedVote``.
public enum ConsensusMessage: Hashable, Sendable, CanonicalCodable {
    case proposal(SignedProposal, Block)
    case vote(SignedVote)

    static let proposalTag: UInt8 = 1
    static let voteTag: UInt8 = 2

    /// The height the message is about.
    public var height: UInt64 {
        switch self {
        case .proposal(let signed, _): signed.proposal.height
        case .vote(let signed): signed.vote.height
        }
    }

    public func encode(to encoder: inout CanonicalEncoder) {
        switch self {
        case .proposal(let signed, let block):
            encoder.u8(Self.proposalTag)
            signed.encode(to: &encoder)
            block.encode(to: &encoder)
            PersonalSidecars.encode(block.transactions, to: &encoder)
        case .vote(let signed):
            encoder.u8(Self.voteTag)
            signed.encode(to: &encoder)
        }
    }

    public init(from decoder: inout CanonicalDecoder) throws(DecodingError) {
        let tagAt = decoder.offset
        switch try decoder.u8("message.tag") {
        case Self.proposalTag:
            let signed = try SignedProposal(from: &decoder)
            var block = try Block(from: &decoder)
            try PersonalSidecars.attach(to: &block.transactions, from: &decoder, field: "proposal.personal")
            self = .proposal(signed, block)
        case Self.voteTag:
            self = .vote(try SignedVote(from: &decoder))
        case let other:
            throw decoder.error("invalid_tag", "message.tag", "unknown consensus message \(other)", at: tagAt)
        }
    }

    /// Decodes one message, refusing anything over ``ConsensusLimits/messageBytes`` or with trailing bytes.
    public static func decode(_ bytes: [UInt8]) throws(DecodingError) -> ConsensusMessage {
        try ConsensusMessage(canonicalBytes: bytes, limit: ConsensusLimits.messageBytes)
    }
}

/// Checks signatures for the core. The default checks each one; a simulator may share a cache between nodes.
public protocol SignatureVerifier: Sendable {
    /// True when `signature` is `key`'s valid signature over `message`.
    func isValid(signature: [UInt8], message: [UInt8], key: PublicKey) -> Bool
}

/// Verifies every signature with `PublicKey.isValidSignature` (a pure function).
public struct DirectSignatureVerifier: SignatureVerifier {
    public init() {}

    public func isValid(signature: [UInt8], message: [UInt8], key: PublicKey) -> Bool {
        key.isValidSignature(signature, for: message)
    }
}
