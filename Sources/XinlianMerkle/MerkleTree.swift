import XinlianCrypto

/// Why a Merkle proof could not be generated or evaluated.
public enum MerkleError: Error, Sendable, Equatable {
    /// The leaf index is negative or not below the tree size.
    case indexOutOfRange
    /// A tree size is negative, or the old size exceeds the new size.
    case sizeMismatch
    /// The proof has the wrong number of hashes for the given index and sizes.
    case proofLength
}

/// RFC 6962 / RFC 9162 Merkle tree hashes, inclusion proofs and consistency proofs.
///
/// Generation follows RFC 6962 §2.1 (`MTH`, `PATH`, `PROOF`); verification follows
/// RFC 9162 §2.1.3.2 and §2.1.4.2, as implemented by transparency-dev/merkle.
///
/// As in RFC 9162, a proof binds tree sizes only through its shape (index 0 verifies identically in
/// trees of 3 and 4 leaves), so sizes must come from the same signed header as the roots.
public enum MerkleTree {
    /// `MTH(D[n])`: the root over the given leaf hashes (the empty root for no leaves).
    public static func root(leafHashes: [Hash32], hasher: MerkleHasher) -> Hash32 {
        leafHashes.isEmpty ? hasher.emptyRoot : subtreeRoot(leafHashes[...], hasher)
    }

    /// `PATH(index, D[n])`: sibling hashes from the leaf up to the root.
    public static func inclusionProof(
        index: Int, leafHashes: [Hash32], hasher: MerkleHasher
    ) throws(MerkleError) -> [Hash32] {
        guard index >= 0, index < leafHashes.count else { throw .indexOutOfRange }
        return path(index, leafHashes[...], hasher)
    }

    /// Recomputes the root from an inclusion proof (RFC 9162 §2.1.3.2).
    public static func rootFromInclusionProof(
        index: Int, treeSize: Int, leafHash: Hash32, proof: [Hash32], hasher: MerkleHasher
    ) throws(MerkleError) -> Hash32 {
        guard index >= 0, index < treeSize else { throw .indexOutOfRange }
        let (inner, border) = decomposeInclusionProof(index: index, size: treeSize)
        guard proof.count == inner + border else { throw .proofLength }
        let seed = chainInner(leafHash, proof[..<inner], index: index, hasher)
        return chainBorderRight(seed, proof[inner...], hasher)
    }

    /// Whether `proof` shows `leafHash` at `index` in the tree of `treeSize` leaves with `root`.
    public static func verifyInclusion(
        index: Int, treeSize: Int, leafHash: Hash32, proof: [Hash32], root: Hash32, hasher: MerkleHasher
    ) -> Bool {
        let computed = try? rootFromInclusionProof(
            index: index, treeSize: treeSize, leafHash: leafHash, proof: proof, hasher: hasher)
        return computed == root
    }

    /// `PROOF(oldSize, D[n])`; empty when `oldSize` is 0 or equals the current size.
    public static func consistencyProof(
        oldSize: Int, leafHashes: [Hash32], hasher: MerkleHasher
    ) throws(MerkleError) -> [Hash32] {
        guard oldSize >= 0, oldSize <= leafHashes.count else { throw .sizeMismatch }
        guard oldSize > 0, oldSize < leafHashes.count else { return [] }
        return subproof(oldSize, leafHashes[...], complete: true, hasher)
    }

    /// Whether `proof` shows the tree of `oldSize` leaves is a prefix of the tree of `newSize` (RFC 9162 §2.1.4.2).
    ///
    /// Equal sizes need an empty proof and equal roots; old size 0 needs an empty proof and
    /// `oldRoot == emptyRoot` (stricter than transparency-dev, which ignores the old root there).
    public static func verifyConsistency(
        oldSize: Int, newSize: Int, oldRoot: Hash32, newRoot: Hash32, proof: [Hash32], hasher: MerkleHasher
    ) -> Bool {
        guard oldSize >= 0, oldSize <= newSize else { return false }
        if oldSize == newSize { return proof.isEmpty && oldRoot == newRoot }
        if oldSize == 0 { return proof.isEmpty && oldRoot == hasher.emptyRoot }
        guard !proof.isEmpty else { return false }

        var (inner, border) = decomposeInclusionProof(index: oldSize - 1, size: newSize)
        let shift = oldSize.trailingZeroBitCount
        inner -= shift
        // The proof starts with the root of the 2^shift subtree, unless the old tree is that subtree.
        let oldIsPerfect = oldSize == 1 << shift
        let seed = oldIsPerfect ? oldRoot : proof[0]
        let path = proof.dropFirst(oldIsPerfect ? 0 : 1)
        guard path.count == inner + border else { return false }

        let mask = (oldSize - 1) >> shift
        let innerPath = path.prefix(inner)
        let borderPath = path.dropFirst(inner)
        let old = chainBorderRight(chainInnerRight(seed, innerPath, index: mask, hasher), borderPath, hasher)
        let new = chainBorderRight(chainInner(seed, innerPath, index: mask, hasher), borderPath, hasher)
        return old == oldRoot && new == newRoot
    }
}

// MARK: - Generation (RFC 6962 §2.1)

extension MerkleTree {
    /// The largest power of two strictly less than `n` (`n >= 2`).
    static func splitPoint(_ n: Int) -> Int {
        1 << (Int.bitWidth - (n - 1).leadingZeroBitCount - 1)
    }

    private static func subtreeRoot(_ leaves: ArraySlice<Hash32>, _ hasher: MerkleHasher) -> Hash32 {
        guard leaves.count > 1 else { return leaves[leaves.startIndex] }
        let mid = leaves.startIndex + splitPoint(leaves.count)
        return hasher.nodeHash(subtreeRoot(leaves[..<mid], hasher), subtreeRoot(leaves[mid...], hasher))
    }

    private static func path(_ index: Int, _ leaves: ArraySlice<Hash32>, _ hasher: MerkleHasher) -> [Hash32] {
        guard leaves.count > 1 else { return [] }
        let k = splitPoint(leaves.count)
        let mid = leaves.startIndex + k
        if index < k {
            return path(index, leaves[..<mid], hasher) + [subtreeRoot(leaves[mid...], hasher)]
        }
        return path(index - k, leaves[mid...], hasher) + [subtreeRoot(leaves[..<mid], hasher)]
    }

    private static func subproof(
        _ m: Int, _ leaves: ArraySlice<Hash32>, complete: Bool, _ hasher: MerkleHasher
    ) -> [Hash32] {
        if m == leaves.count {
            return complete ? [] : [subtreeRoot(leaves, hasher)]
        }
        let k = splitPoint(leaves.count)
        let mid = leaves.startIndex + k
        if m <= k {
            return subproof(m, leaves[..<mid], complete: complete, hasher) + [subtreeRoot(leaves[mid...], hasher)]
        }
        return subproof(m - k, leaves[mid...], complete: false, hasher) + [subtreeRoot(leaves[..<mid], hasher)]
    }
}

// MARK: - Verification helpers (RFC 9162 §2.1.3.2, transparency-dev/merkle)

extension MerkleTree {
    /// Splits an inclusion proof length into the part below and above the last full subtree.
    private static func decomposeInclusionProof(index: Int, size: Int) -> (inner: Int, border: Int) {
        let inner = Int.bitWidth - (index ^ (size - 1)).leadingZeroBitCount
        let border = (index >> inner).nonzeroBitCount
        return (inner, border)
    }

    private static func chainInner(
        _ seed: Hash32, _ proof: ArraySlice<Hash32>, index: Int, _ hasher: MerkleHasher
    ) -> Hash32 {
        var hash = seed
        for (level, sibling) in proof.enumerated() {
            hash = (index >> level) & 1 == 0 ? hasher.nodeHash(hash, sibling) : hasher.nodeHash(sibling, hash)
        }
        return hash
    }

    private static func chainInnerRight(
        _ seed: Hash32, _ proof: ArraySlice<Hash32>, index: Int, _ hasher: MerkleHasher
    ) -> Hash32 {
        var hash = seed
        for (level, sibling) in proof.enumerated() where (index >> level) & 1 == 1 {
            hash = hasher.nodeHash(sibling, hash)
        }
        return hash
    }

    private static func chainBorderRight(
        _ seed: Hash32, _ proof: ArraySlice<Hash32>, _ hasher: MerkleHasher
    ) -> Hash32 {
        proof.reduce(seed) { hasher.nodeHash($1, $0) }
    }
}
