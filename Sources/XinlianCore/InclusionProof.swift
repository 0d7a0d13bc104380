import Foundation
import XinlianCrypto
import XinlianMerkle

/// Everything needed to check, from genesis alone, that a transaction is in a final block:
/// the transaction (or only its leaf hash), its RFC 6962 audit path, the block header and the header's commit
/// certificate.
///
/// A proof without the transaction (``transaction`` nil) is what a member gets for a statement it may not read: it
/// shows that the leaf ``leafHash`` is in a final block, and ties it to a transaction only for whoever holds the
/// transaction's bytes (``verify(consortium:holding:)``).
public struct InclusionProof: Codable, Sendable, Equatable {
    public var chainId: String
    public var height: UInt64
    public var leafIndex: Int
    public var treeSize: Int
    /// Hex hashes, leaf to root.
    public var path: [String]
    /// Hex RFC 6962 leaf hash of the transaction's canonical bytes.
    public var leafHash: String
    /// Base64 of the canonical encodings; `transaction` is absent from a proof without the payload.
    public var transaction: String?
    public var header: String
    public var certificate: String

    public init(chainId: String, height: UInt64, leafIndex: Int, treeSize: Int, path: [String], leafHash: String,
                transaction: String?, header: String, certificate: String) {
        self.chainId = chainId
        self.height = height
        self.leafIndex = leafIndex
        self.treeSize = treeSize
        self.path = path
        self.leafHash = leafHash
        self.transaction = transaction
        self.header = header
        self.certificate = certificate
    }

    /// The same proof without the transaction's bytes.
    public var withoutPayload: InclusionProof {
        var proof = self
        proof.transaction = nil
        return proof
    }

    /// What a verified proof establishes: a leaf in a final block, and the transaction it is when known.
    public struct Verified: Sendable {
        public var leafHash: Hash32
        public var transactionID: Hash32?
        public var transaction: Transaction?
        public var header: BlockHeader
        public var blockHash: Hash32
    }

    /// Checks the transaction's signature (when the proof or `holding` gives it), its leaf hash, its path to the
    /// header's transactions root, the header's chain and validator set, and the certificate's quorum.
    ///
    /// - Parameter holding: the transaction the caller holds, for a proof without the payload (or to check that a
    ///   proof with it is about this very transaction).
    public func verify(consortium: Consortium, holding: Transaction? = nil) throws(VerificationError) -> Verified {
        let suite = consortium.suite
        var transaction = holding
        if let encoded = self.transaction {
            let carried = try Self.decode(Transaction.self, encoded, field: "transaction", limit: Limits.transactionBytes)
            if let holding, holding != carried {
                throw VerificationError(code: "bad_proof", message: "the proof is about another transaction than the one given")
            }
            transaction = carried
        }
        let header = try Self.decode(BlockHeader.self, header, field: "header", limit: 4096)
        let certificate = try Self.decode(CommitCertificate.self, certificate, field: "certificate", limit: 256 * 1024)
        guard let leaf = Hash32(hex: leafHash) else {
            throw VerificationError(code: "bad_proof", message: "leafHash is not 64 hex characters")
        }
        let hasher = MerkleHasher(suite: suite)
        if let transaction {
            try TransactionRules.check(transaction, consortium: consortium)
            guard hasher.leafHash(transaction.canonicalBytes) == leaf else {
                throw VerificationError(code: "bad_proof", message: "the transaction's leaf hash is not the proof's leafHash")
            }
        }
        guard header.chainID == consortium.chainID, header.height == height else {
            throw VerificationError(code: "wrong_chain", message: "header is not for \(consortium.chainID) at height \(height)")
        }
        guard header.validatorSetHash == consortium.validators.hash else {
            throw VerificationError(code: "bad_validator_set", message: "header's validator set is not genesis's")
        }
        let pathHashes = path.compactMap(Hash32.init(hex:))
        guard pathHashes.count == path.count, treeSize == Int(header.transactionCount) else {
            throw VerificationError(code: "bad_proof", message: "malformed path or tree size")
        }
        guard MerkleTree.verifyInclusion(index: leafIndex, treeSize: treeSize, leafHash: leaf,
                                         proof: pathHashes, root: header.transactionsRoot, hasher: hasher) else {
            throw VerificationError(code: "bad_proof", message: "audit path does not lead to the header's transactions root")
        }
        try BlockVerifier.checkCertificate(certificate, header: header, consortium: consortium)
        return Verified(leafHash: leaf, transactionID: transaction?.id(suite), transaction: transaction, header: header,
                        blockHash: header.hash(suite))
    }

    static func decode<T: CanonicalCodable>(_ type: T.Type, _ base64: String, field: String,
                                            limit: Int) throws(VerificationError) -> T {
        guard let data = Data(base64Encoded: base64) else {
            throw VerificationError(code: "bad_proof", message: "\(field) is not base64")
        }
        do { return try T(canonicalBytes: Array(data), limit: limit) } catch {
            throw VerificationError(code: "bad_proof", message: "\(field): \(error)")
        }
    }
}
