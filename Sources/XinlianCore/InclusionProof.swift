import Foundation
import XinlianCrypto
import XinlianMerkle

/// Everything needed to check, from genesis alone, that a transaction is in a final block:
/// the transaction, its RFC 6962 audit path, the block header and the header's commit certificate.
public struct InclusionProof: Codable, Sendable, Equatable {
    public var chainId: String
    public var height: UInt64
    public var leafIndex: Int
    public var treeSize: Int
    /// Hex hashes, leaf to root.
    public var path: [String]
    /// Base64 of the canonical encodings.
    public var transaction: String
    public var header: String
    public var certificate: String

    public init(chainId: String, height: UInt64, leafIndex: Int, treeSize: Int, path: [String],
                transaction: String, header: String, certificate: String) {
        self.chainId = chainId
        self.height = height
        self.leafIndex = leafIndex
        self.treeSize = treeSize
        self.path = path
        self.transaction = transaction
        self.header = header
        self.certificate = certificate
    }

    /// What a verified proof establishes.
    public struct Verified: Sendable {
        public var transactionID: Hash32
        public var transaction: Transaction
        public var header: BlockHeader
        public var blockHash: Hash32
    }

    /// Checks the transaction's signature, its path to the header's transactions root, the header's
    /// chain and validator set, and the certificate's quorum.
    public func verify(consortium: Consortium) throws(VerificationError) -> Verified {
        let suite = consortium.suite
        let transaction = try Self.decode(Transaction.self, transaction, field: "transaction", limit: Limits.transactionBytes)
        let header = try Self.decode(BlockHeader.self, header, field: "header", limit: 4096)
        let certificate = try Self.decode(CommitCertificate.self, certificate, field: "certificate", limit: 256 * 1024)
        try TransactionRules.check(transaction, consortium: consortium)
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
        let hasher = MerkleHasher(suite: suite)
        guard MerkleTree.verifyInclusion(index: leafIndex, treeSize: treeSize, leafHash: hasher.leafHash(transaction.canonicalBytes),
                                         proof: pathHashes, root: header.transactionsRoot, hasher: hasher) else {
            throw VerificationError(code: "bad_proof", message: "audit path does not lead to the header's transactions root")
        }
        try BlockVerifier.checkCertificate(certificate, header: header, consortium: consortium)
        return Verified(transactionID: transaction.id(suite), transaction: transaction, header: header,
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
