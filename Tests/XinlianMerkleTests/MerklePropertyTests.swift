import Testing
import XinlianCrypto
import XinlianMerkle

@Suite("RFC 6962 proofs, seeded property tests")
struct MerklePropertyTests {
    @Test(arguments: CryptoSuiteID.allCases)
    func inclusionProofsVerifyAndTamperingFails(id: CryptoSuiteID) throws {
        let hasher = MerkleHasher(suite: CryptoSuite(id))
        var rng = SplitMix64(seed: 0x1A2B_3C4D)
        for _ in 0..<12 {
            let size = Int.random(in: 1...130, using: &rng)
            let leaves = (0..<size).map { _ in hasher.leafHash(rng.bytes(count: 8)) }
            let root = MerkleTree.root(leafHashes: leaves, hasher: hasher)
            for _ in 0..<8 {
                let index = Int.random(in: 0..<size, using: &rng)
                let proof = try MerkleTree.inclusionProof(index: index, leafHashes: leaves, hasher: hasher)
                func verify(_ i: Int, _ s: Int, _ leaf: Hash32, _ p: [Hash32]) -> Bool {
                    MerkleTree.verifyInclusion(index: i, treeSize: s, leafHash: leaf, proof: p, root: root, hasher: hasher)
                }
                #expect(verify(index, size, leaves[index], proof))
                #expect(!verify(index, size, leaves[index].flipping(bit: 5), proof))
                for position in proof.indices {
                    var altered = proof
                    altered[position] = altered[position].flipping(bit: Int.random(in: 0..<256, using: &rng))
                    #expect(!verify(index, size, leaves[index], altered))
                }
                #expect(!verify(index, size, leaves[index], proof + [root]))
                if !proof.isEmpty {
                    #expect(!verify(index, size, leaves[index], Array(proof.dropLast())))
                }
                for otherIndex in [index - 1, index + 1, Int.random(in: 0..<size, using: &rng)] where otherIndex != index {
                    #expect(!verify(otherIndex, size, leaves[index], proof), "index \(otherIndex) of \(size)")
                }
                // Sizes are bound only through the proof's shape (index 0 verifies alike in trees of 3 and 4),
                // so alter the size to one that needs a longer path, or to one the index is out of range of.
                #expect(!verify(index, size * 2, leaves[index], proof))
                #expect(!verify(index, index, leaves[index], proof))
                #expect(!verify(-1, size, leaves[index], proof))
            }
            #expect(throws: MerkleError.indexOutOfRange) {
                try MerkleTree.inclusionProof(index: size, leafHashes: leaves, hasher: hasher)
            }
        }
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func consistencyProofsVerifyAndTamperingFails(id: CryptoSuiteID) throws {
        let hasher = MerkleHasher(suite: CryptoSuite(id))
        var rng = SplitMix64(seed: 0x5EED_0001)
        for _ in 0..<12 {
            let newSize = Int.random(in: 1...130, using: &rng)
            let leaves = (0..<newSize).map { _ in hasher.leafHash(rng.bytes(count: 8)) }
            let newRoot = MerkleTree.root(leafHashes: leaves, hasher: hasher)
            for _ in 0..<8 {
                let oldSize = Int.random(in: 0...newSize, using: &rng)
                let oldRoot = MerkleTree.root(leafHashes: Array(leaves.prefix(oldSize)), hasher: hasher)
                let proof = try MerkleTree.consistencyProof(oldSize: oldSize, leafHashes: leaves, hasher: hasher)
                func verify(_ m: Int, _ n: Int, _ r1: Hash32, _ r2: Hash32, _ p: [Hash32]) -> Bool {
                    MerkleTree.verifyConsistency(oldSize: m, newSize: n, oldRoot: r1, newRoot: r2, proof: p, hasher: hasher)
                }
                #expect(verify(oldSize, newSize, oldRoot, newRoot, proof))
                #expect(!verify(oldSize, newSize, oldRoot.flipping(bit: 1), newRoot, proof))
                if oldSize > 0 {
                    #expect(!verify(oldSize, newSize, oldRoot, newRoot.flipping(bit: 2), proof))
                }
                for position in proof.indices {
                    var altered = proof
                    altered[position] = altered[position].flipping(bit: Int.random(in: 0..<256, using: &rng))
                    #expect(!verify(oldSize, newSize, oldRoot, newRoot, altered))
                }
                #expect(!verify(oldSize, newSize, oldRoot, newRoot, proof + [newRoot]))
                if !proof.isEmpty {
                    #expect(!verify(oldSize, newSize, oldRoot, newRoot, Array(proof.dropLast())))
                }
                for otherOld in [oldSize - 1, oldSize + 1] where otherOld >= 1 && otherOld <= newSize {
                    #expect(!verify(otherOld, newSize, oldRoot, newRoot, proof), "old \(otherOld) new \(newSize)")
                }
                // RFC 9162 proofs bind sizes only through the proof's shape (e.g. 11 and 12 can share one),
                // so alter the new size to one that needs a longer proof. Size 0 is consistent with all.
                if oldSize > 0 {
                    #expect(!verify(oldSize, newSize * 2, oldRoot, newRoot, proof))
                }
                #expect(!verify(newSize + 1, newSize, oldRoot, newRoot, proof))
            }
            #expect(throws: MerkleError.sizeMismatch) {
                try MerkleTree.consistencyProof(oldSize: newSize + 1, leafHashes: leaves, hasher: hasher)
            }
        }
    }

    @Test func rootFromInclusionProofErrors() {
        let hasher = MerkleHasher(suite: .ed25519SHA256)
        let leaf = hasher.leafHash([1])
        #expect(throws: MerkleError.indexOutOfRange) {
            try MerkleTree.rootFromInclusionProof(index: 3, treeSize: 3, leafHash: leaf, proof: [], hasher: hasher)
        }
        #expect(throws: MerkleError.proofLength) {
            try MerkleTree.rootFromInclusionProof(index: 0, treeSize: 3, leafHash: leaf, proof: [leaf], hasher: hasher)
        }
        #expect(MerkleTree.root(leafHashes: [], hasher: hasher) == hasher.emptyRoot)
        #expect(MerkleTree.root(leafHashes: [leaf], hasher: hasher) == leaf)
    }

    @Test func sm3SuiteDiffersFromSHA256() {
        let sha = MerkleHasher(suite: .ed25519SHA256)
        let sm3 = MerkleHasher(suite: .sm2SM3)
        #expect(sm3.emptyRoot == CryptoSuite.sm2SM3.hash([]))
        #expect(sm3.leafHash([1]) == CryptoSuite.sm2SM3.hash([0, 1]))
        #expect(sm3.nodeHash(.zero, .zero) == CryptoSuite.sm2SM3.hash([1] + [UInt8](repeating: 0, count: 64)))
        #expect(sha.leafHash([1]) != sm3.leafHash([1]))
    }
}
