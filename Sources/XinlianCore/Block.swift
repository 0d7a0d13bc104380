import XinlianCrypto
import XinlianMerkle

/// A block header: everything a block commits to.
public struct BlockHeader: Hashable, Sendable, CanonicalCodable {
    public static let version: UInt8 = 1

    public var chainID: ChainID
    public var height: UInt64
    /// Milliseconds since the Unix epoch, set by the proposer.
    public var timeMs: UInt64
    /// Hash of the previous header; the genesis hash for height 1.
    public var previousHash: Hash32
    /// RFC 6962 root over the block's canonical transactions.
    public var transactionsRoot: Hash32
    /// Sparse Merkle root of every enterprise's record head after this block.
    public var stateRoot: Hash32
    public var validatorSetHash: Hash32
    public var proposer: ValidatorID
    public var transactionCount: UInt32

    public init(chainID: ChainID, height: UInt64, timeMs: UInt64, previousHash: Hash32, transactionsRoot: Hash32,
                stateRoot: Hash32, validatorSetHash: Hash32, proposer: ValidatorID, transactionCount: UInt32) {
        self.chainID = chainID
        self.height = height
        self.timeMs = timeMs
        self.previousHash = previousHash
        self.transactionsRoot = transactionsRoot
        self.stateRoot = stateRoot
        self.validatorSetHash = validatorSetHash
        self.proposer = proposer
        self.transactionCount = transactionCount
    }

    public func encode(to encoder: inout CanonicalEncoder) {
        encoder.u8(Self.version)
        encoder.name(chainID)
        encoder.u64(height)
        encoder.u64(timeMs)
        encoder.hash(previousHash)
        encoder.hash(transactionsRoot)
        encoder.hash(stateRoot)
        encoder.hash(validatorSetHash)
        encoder.name(proposer)
        encoder.u32(transactionCount)
    }

    public init(from decoder: inout CanonicalDecoder) throws(DecodingError) {
        let versionAt = decoder.offset
        let version = try decoder.u8("header.version")
        guard version == Self.version else {
            throw decoder.error("unsupported_version", "header.version", "version \(version)", at: versionAt)
        }
        chainID = try decoder.name("header.chainId")
        height = try decoder.u64("header.height")
        timeMs = try decoder.u64("header.time")
        previousHash = try decoder.hash("header.previousHash")
        transactionsRoot = try decoder.hash("header.transactionsRoot")
        stateRoot = try decoder.hash("header.stateRoot")
        validatorSetHash = try decoder.hash("header.validatorSetHash")
        proposer = try decoder.name("header.proposer")
        transactionCount = try decoder.u32("header.transactionCount")
    }

    /// The block hash: `H(0x11 || header)`.
    public func hash(_ suite: CryptoSuite) -> Hash32 {
        suite.hash(tag: Domain.blockHeader, canonicalBytes)
    }
}

/// A header and its transactions, in order.
public struct Block: Hashable, Sendable, CanonicalCodable {
    public var header: BlockHeader
    public var transactions: [Transaction]

    public init(header: BlockHeader, transactions: [Transaction]) {
        self.header = header
        self.transactions = transactions
    }

    public func encode(to encoder: inout CanonicalEncoder) {
        header.encode(to: &encoder)
        encoder.list(transactions) { $1.encode(to: &$0) }
    }

    public init(from decoder: inout CanonicalDecoder) throws(DecodingError) {
        header = try BlockHeader(from: &decoder)
        let listAt = decoder.offset
        transactions = try decoder.list("block.transactions", limit: Limits.blockTransactions) {
            (d: inout CanonicalDecoder) throws(DecodingError) in try Transaction(from: &d)
        }
        guard transactions.count == Int(header.transactionCount) else {
            throw decoder.error("invalid_value", "block.transactions",
                                "header says \(header.transactionCount) transactions, body has \(transactions.count)",
                                at: listAt)
        }
    }

    /// RFC 6962 leaf hashes: each leaf is a transaction's canonical bytes.
    public static func leafHashes(_ transactions: [Transaction], suite: CryptoSuite) -> [Hash32] {
        let hasher = MerkleHasher(suite: suite)
        return transactions.map { hasher.leafHash($0.canonicalBytes) }
    }

    public static func transactionsRoot(_ transactions: [Transaction], suite: CryptoSuite) -> Hash32 {
        MerkleTree.root(leafHashes: leafHashes(transactions, suite: suite), hasher: MerkleHasher(suite: suite))
    }
}

/// A committed block's record read lazily: the header, and where each transaction's canonical bytes lie,
/// found by reading lengths only. Reading one transaction, or the leaf hashes for a proof, then costs a
/// fraction of decoding a block of thousands of transactions.
public struct BlockRecordIndex: Sendable {
    public let header: BlockHeader
    public let certificate: CommitCertificate
    public let bytes: [UInt8]
    /// Byte range of each transaction in `bytes`, in block order.
    public let ranges: [Range<Int>]

    /// Locates the transactions of an encoded ``CommittedBlock``; checks structure and lengths, not contents.
    public init(record bytes: [UInt8]) throws(DecodingError) {
        var decoder = CanonicalDecoder(bytes)
        let versionAt = decoder.offset
        let version = try decoder.u8("record.version")
        guard version == CommittedBlock.version else {
            throw decoder.error("unsupported_version", "record.version", "version \(version)", at: versionAt)
        }
        header = try BlockHeader(from: &decoder)
        let countAt = decoder.offset
        let count = Int(try decoder.u32("block.transactions"))
        guard count <= Limits.blockTransactions, count == Int(header.transactionCount) else {
            throw decoder.error("invalid_value", "block.transactions", "\(count) transactions", at: countAt)
        }
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(count)
        for _ in 0..<count {
            let start = decoder.offset
            _ = try decoder.u8("transaction.version")
            try decoder.skipByteString("transaction.chainId", limit: Name.lengthLimit)
            _ = try decoder.u8("transaction.kind")
            try decoder.skipByteString("transaction.reporter", limit: Name.lengthLimit)
            if try decoder.u8("transaction.subject") == 1 { _ = try decoder.fixed(USCC.length, "transaction.subject") }
            _ = try decoder.u64("transaction.timeMs")
            _ = try decoder.u64("transaction.nonce")
            try decoder.skipByteString("transaction.payload", limit: Limits.payloadBytes)
            try decoder.skipByteString("transaction.signature", limit: Limits.signatureBytes)
            ranges.append(start..<decoder.offset)
        }
        certificate = try CommitCertificate(from: &decoder)
        try decoder.finish("record")
        self.bytes = bytes
        self.ranges = ranges
    }

    /// The transaction at `index`, decoded in full.
    public func transaction(at index: Int) throws(DecodingError) -> Transaction {
        guard ranges.indices.contains(index) else {
            throw DecodingError(code: "invalid_value", field: "block.transactions", offset: 0,
                                reason: "no transaction \(index) in a block of \(ranges.count)")
        }
        return try Transaction(canonicalBytes: Array(bytes[ranges[index]]), limit: Limits.transactionBytes)
    }

    /// RFC 6962 leaf hashes of the block's transactions, from their bytes as stored.
    public func leafHashes(suite: CryptoSuite) -> [Hash32] {
        let hasher = MerkleHasher(suite: suite)
        return ranges.map { hasher.leafHash(Array(bytes[$0])) }
    }
}

/// Prevote or precommit.
public enum VoteKind: UInt8, Sendable, Codable, Hashable, CaseIterable {
    case prevote = 1
    case precommit = 2

    /// The binary codes and what they stand for, for messages: `1 (prevote), 2 (precommit)`.
    public static var acceptedCodes: String { allCases.map { "\($0.rawValue) (\($0))" }.joined(separator: ", ") }
}

/// The signed content of a consensus vote. `blockHash == nil` is a vote for nothing.
public struct Vote: Hashable, Sendable, CanonicalCodable {
    public static let version: UInt8 = 1

    public var chainID: ChainID
    public var kind: VoteKind
    public var height: UInt64
    public var round: UInt32
    public var blockHash: Hash32?
    public var validator: ValidatorID

    public init(chainID: ChainID, kind: VoteKind, height: UInt64, round: UInt32, blockHash: Hash32?, validator: ValidatorID) {
        self.chainID = chainID
        self.kind = kind
        self.height = height
        self.round = round
        self.blockHash = blockHash
        self.validator = validator
    }

    public func encode(to encoder: inout CanonicalEncoder) {
        encoder.u8(Self.version)
        encoder.name(chainID)
        encoder.u8(kind.rawValue)
        encoder.u64(height)
        encoder.u32(round)
        encoder.optional(blockHash) { $0.hash($1) }
        encoder.name(validator)
    }

    public init(from decoder: inout CanonicalDecoder) throws(DecodingError) {
        let versionAt = decoder.offset
        let version = try decoder.u8("vote.version")
        guard version == Self.version else {
            throw decoder.error("unsupported_version", "vote.version", "version \(version)", at: versionAt)
        }
        chainID = try decoder.name("vote.chainId")
        let kindAt = decoder.offset
        let kindCode = try decoder.u8("vote.kind")
        guard let kind = VoteKind(rawValue: kindCode) else {
            throw decoder.error("invalid_tag", "vote.kind",
                                "unknown vote kind \(kindCode); expected one of: \(VoteKind.acceptedCodes)", at: kindAt)
        }
        self.kind = kind
        height = try decoder.u64("vote.height")
        round = try decoder.u32("vote.round")
        blockHash = try decoder.optional("vote.blockHash") { (d: inout CanonicalDecoder) throws(DecodingError) in
            try d.hash("vote.blockHash")
        }
        validator = try decoder.name("vote.validator")
    }

    /// The bytes a validator signs: a domain tag, then the canonical vote.
    public var signingBytes: [UInt8] { [Domain.signVote] + canonicalBytes }
}

/// One validator's precommit signature inside a certificate.
public struct CommitSignature: Hashable, Sendable {
    public var validator: ValidatorID
    public var signature: [UInt8]

    public init(validator: ValidatorID, signature: [UInt8]) {
        self.validator = validator
        self.signature = signature
    }
}

/// Precommits from validators holding more than two thirds of the voting power,
/// all for `blockHash` at `height` and `round`: what makes a block final.
public struct CommitCertificate: Hashable, Sendable, CanonicalCodable {
    public var height: UInt64
    public var round: UInt32
    public var blockHash: Hash32
    /// Sorted by validator id, no repeats.
    public var signatures: [CommitSignature]

    public init(height: UInt64, round: UInt32, blockHash: Hash32, signatures: [CommitSignature]) {
        self.height = height
        self.round = round
        self.blockHash = blockHash
        self.signatures = signatures.sorted { $0.validator < $1.validator }
    }

    public func encode(to encoder: inout CanonicalEncoder) {
        encoder.u64(height)
        encoder.u32(round)
        encoder.hash(blockHash)
        encoder.list(signatures) { encoder, item in
            encoder.name(item.validator)
            encoder.byteString(item.signature)
        }
    }

    public init(from decoder: inout CanonicalDecoder) throws(DecodingError) {
        height = try decoder.u64("certificate.height")
        round = try decoder.u32("certificate.round")
        blockHash = try decoder.hash("certificate.blockHash")
        let listAt = decoder.offset
        signatures = try decoder.list("certificate.signatures", limit: Limits.certificateSignatures) {
            (d: inout CanonicalDecoder) throws(DecodingError) in
            CommitSignature(validator: try d.name("certificate.validator"),
                            signature: try d.byteString("certificate.signature", limit: Limits.signatureBytes))
        }
        let ordered = zip(signatures, signatures.dropFirst()).allSatisfy { $0.validator < $1.validator }
        guard ordered else {
            throw decoder.error("non_canonical", "certificate.signatures",
                                "signatures must be sorted by validator with no repeats", at: listAt)
        }
    }

    /// The precommit each signature must cover.
    public func vote(chainID: ChainID, validator: ValidatorID) -> Vote {
        Vote(chainID: chainID, kind: .precommit, height: height, round: round, blockHash: blockHash, validator: validator)
    }
}

/// What the block log stores per height: the block and the certificate that made it final.
public struct CommittedBlock: Hashable, Sendable, CanonicalCodable {
    public static let version: UInt8 = 1
    public var block: Block
    public var certificate: CommitCertificate

    public init(block: Block, certificate: CommitCertificate) {
        self.block = block
        self.certificate = certificate
    }

    public func encode(to encoder: inout CanonicalEncoder) {
        encoder.u8(Self.version)
        block.encode(to: &encoder)
        certificate.encode(to: &encoder)
    }

    public init(from decoder: inout CanonicalDecoder) throws(DecodingError) {
        let versionAt = decoder.offset
        let version = try decoder.u8("record.version")
        guard version == Self.version else {
            throw decoder.error("unsupported_version", "record.version", "version \(version)", at: versionAt)
        }
        block = try Block(from: &decoder)
        certificate = try CommitCertificate(from: &decoder)
    }
}
