import Testing
import XinlianCrypto
import XinlianMerkle

@Suite("RFC 6962 published vectors (SHA-256)")
struct RFC6962Tests {
    let hasher = MerkleHasher(suite: .ed25519SHA256)

    struct Vectors {
        var leafHashes: [Hash32]
        var roots: [Int: Hash32]
        var inclusion: [(index: Int, size: Int, path: [Hash32])]
        var consistency: [(old: Int, new: Int, proof: [Hash32])]
    }

    func load() throws -> Vectors {
        let json = try TestData.json("rfc6962-vectors.json")
        let leaves = try #require(json["leaves"] as? [String])
        let roots = try #require(json["roots"] as? [String: String])
        let inclusion = try #require(json["inclusion"] as? [[String: Any]])
        let consistency = try #require(json["consistency"] as? [[String: Any]])
        return Vectors(
            leafHashes: try leaves.map { hasher.leafHash(try bytes($0)) },
            roots: try Dictionary(uniqueKeysWithValues: roots.map { (try #require(Int($0.key)), try hash($0.value)) }),
            inclusion: try inclusion.map {
                (try #require($0["leafIndex"] as? Int), try #require($0["treeSize"] as? Int),
                 try #require($0["path"] as? [String]).map(hash))
            },
            consistency: try consistency.map {
                (try #require($0["size1"] as? Int), try #require($0["size2"] as? Int),
                 try #require($0["proof"] as? [String]).map(hash))
            })
    }

    @Test func roots() throws {
        let vectors = try load()
        #expect(vectors.roots.count == 9)
        for (size, root) in vectors.roots {
            #expect(MerkleTree.root(leafHashes: Array(vectors.leafHashes.prefix(size)), hasher: hasher) == root, "size \(size)")
        }
        #expect(hasher.emptyRoot == vectors.roots[0])
    }

    @Test func inclusionPaths() throws {
        let vectors = try load()
        #expect(vectors.inclusion.count == 36)
        for vector in vectors.inclusion {
            let leaves = Array(vectors.leafHashes.prefix(vector.size))
            let root = try #require(vectors.roots[vector.size])
            let leaf = vectors.leafHashes[vector.index]
            #expect(try MerkleTree.inclusionProof(index: vector.index, leafHashes: leaves, hasher: hasher) == vector.path)
            #expect(try MerkleTree.rootFromInclusionProof(
                index: vector.index, treeSize: vector.size, leafHash: leaf, proof: vector.path, hasher: hasher) == root)
            #expect(MerkleTree.verifyInclusion(
                index: vector.index, treeSize: vector.size, leafHash: leaf, proof: vector.path, root: root, hasher: hasher))
        }
    }

    @Test func consistencyProofs() throws {
        let vectors = try load()
        #expect(vectors.consistency.count == 36)
        for vector in vectors.consistency {
            let leaves = Array(vectors.leafHashes.prefix(vector.new))
            let oldRoot = try #require(vectors.roots[vector.old])
            let newRoot = try #require(vectors.roots[vector.new])
            #expect(try MerkleTree.consistencyProof(oldSize: vector.old, leafHashes: leaves, hasher: hasher) == vector.proof)
            #expect(MerkleTree.verifyConsistency(
                oldSize: vector.old, newSize: vector.new, oldRoot: oldRoot, newRoot: newRoot,
                proof: vector.proof, hasher: hasher), "\(vector.old) -> \(vector.new)")
        }
    }

    private func hash(_ hex: String) throws -> Hash32 {
        try #require(Hash32(hex: hex), "bad hash \(hex)")
    }
}
