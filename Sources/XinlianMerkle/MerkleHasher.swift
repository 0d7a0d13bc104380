import XinlianCrypto

/// RFC 6962 / RFC 9162 hashing over a suite's hash function.
///
/// Leaf: `H(0x00 || data)`. Node: `H(0x01 || left || right)`. Empty tree: `H("")`.
public struct MerkleHasher: Sendable {
    /// The suite whose hash function is used.
    public let suite: CryptoSuite
    /// Root of the empty tree, `H("")`.
    public let emptyRoot: Hash32

    /// Creates a hasher for `suite`.
    public init(suite: CryptoSuite) {
        self.suite = suite
        self.emptyRoot = suite.hash([])
    }

    /// `H(0x00 || data)`.
    public func leafHash(_ data: [UInt8]) -> Hash32 {
        suite.hash(tag: 0x00, data)
    }

    /// `H(0x01 || left || right)`.
    public func nodeHash(_ left: Hash32, _ right: Hash32) -> Hash32 {
        var hasher = suite.makeHasher()
        hasher.update(byte: 0x01)
        hasher.update(left)
        hasher.update(right)
        return hasher.finalize()
    }
}
