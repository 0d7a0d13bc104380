import Foundation
import Testing
import XinlianCrypto
import XinlianMerkle

/// Naive reference: the root recomputed from scratch from the definition.
private func referenceRoot(_ entries: [Hash32: Hash32], _ tree: SparseMerkleTree) -> Hash32 {
    func bit(_ key: Hash32, _ depth: Int) -> Bool { (key.bytes[depth / 8] >> (7 - UInt8(depth % 8))) & 1 == 1 }
    func subtree(_ items: [(key: Hash32, value: Hash32)], _ depth: Int) -> Hash32 {
        if items.isEmpty { return .zero }
        if items.count == 1 { return tree.leafHash(key: items[0].key, value: items[0].value) }
        let left = items.filter { !bit($0.key, depth) }
        let right = items.filter { bit($0.key, depth) }
        return tree.nodeHash(subtree(left, depth + 1), subtree(right, depth + 1))
    }
    return subtree(entries.map { (key: $0.key, value: $0.value) }, 0)
}

/// Counts node reads, to check updates touch only O(log n) nodes.
private final class CountingSource: SMTNodeSource {
    let base: InMemorySMTStore
    var reads = 0

    init(_ base: InMemorySMTStore) {
        self.base = base
    }

    func smtNode(_ hash: Hash32) throws -> SMTNode? {
        reads += 1
        return base.smtNode(hash)
    }
}

@Suite("Sparse Merkle tree")
struct SparseMerkleTreeTests {
    @Test(arguments: CryptoSuiteID.allCases)
    func matchesReferenceModelOverRandomBatches(id: CryptoSuiteID) throws {
        let tree = SparseMerkleTree(suite: CryptoSuite(id))
        var rng = SplitMix64(seed: 0xC0FF_EE00 + UInt64(id.code))
        var store = InMemorySMTStore()
        var model: [Hash32: Hash32] = [:]
        var root = Hash32.zero
        var allChanges: [(key: Hash32, value: Hash32)] = []
        for _ in 0..<12 {
            var batch: [(key: Hash32, value: Hash32)] = []
            for _ in 0..<Int.random(in: 0...40, using: &rng) {
                let overwrite = !model.isEmpty && Int.random(in: 0..<4, using: &rng) == 0
                let key = overwrite ? model.keys.sorted()[Int.random(in: 0..<model.count, using: &rng)] : rng.hash()
                batch.append((key, rng.hash()))
            }
            if let first = batch.first {
                batch.append((first.key, rng.hash()))  // a later change for the same key wins
            }
            let update = try tree.update(root: root, changes: batch, source: store)
            store.insert(update.newNodes)
            root = update.root
            for change in batch { model[change.key] = change.value }
            allChanges += batch
            #expect(root == referenceRoot(model, tree))
        }
        let oneShot = try tree.update(root: .zero, changes: allChanges, source: InMemorySMTStore())
        #expect(oneShot.root == root)
        for (key, value) in model {
            #expect(try tree.value(root: root, key: key, source: store) == value)
        }
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func membershipAndAbsenceProofs(id: CryptoSuiteID) throws {
        let tree = SparseMerkleTree(suite: CryptoSuite(id))
        var rng = SplitMix64(seed: 42)
        let (store, root, model) = try populate(tree, count: 300, rng: &rng)
        for (key, value) in model {
            let proof = try tree.prove(root: root, key: key, source: store)
            #expect(proof.terminal == .leaf(key: key, value: value))
            #expect(tree.verify(proof: proof, root: root, key: key, value: value))
            #expect(!tree.verify(proof: proof, root: root, key: key, value: nil))
            #expect(!tree.verify(proof: proof, root: root, key: key, value: value.flipping(bit: 0)))
        }
        var sawEmpty = false
        var sawOtherLeaf = false
        for _ in 0..<300 {
            let absent = rng.hash()
            let proof = try tree.prove(root: root, key: absent, source: store)
            #expect(tree.verify(proof: proof, root: root, key: absent, value: nil))
            #expect(!tree.verify(proof: proof, root: root, key: absent, value: rng.hash()))
            #expect(try tree.value(root: root, key: absent, source: store) == nil)
            if case .empty = proof.terminal { sawEmpty = true } else { sawOtherLeaf = true }
        }
        #expect(sawEmpty && sawOtherLeaf)
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func tamperedProofsFail(id: CryptoSuiteID) throws {
        let tree = SparseMerkleTree(suite: CryptoSuite(id))
        var rng = SplitMix64(seed: 7)
        let (store, root, model) = try populate(tree, count: 64, rng: &rng)
        var cases: [(key: Hash32, value: Hash32?)] = model.prefix(20).map { ($0.key, $0.value) }
        cases += (0..<20).map { _ in (rng.hash(), nil) }
        for (key, value) in cases {
            let proof = try tree.prove(root: root, key: key, source: store)
            #expect(tree.verify(proof: proof, root: root, key: key, value: value))
            for index in proof.siblings.indices {
                var flipped = proof
                flipped.siblings[index] = flipped.siblings[index].flipping(bit: Int.random(in: 0..<256, using: &rng))
                #expect(!tree.verify(proof: flipped, root: root, key: key, value: value))
            }
            var extra = proof
            extra.siblings.append(.zero)
            #expect(!tree.verify(proof: extra, root: root, key: key, value: value))
            var missing = proof
            missing.siblings.removeLast()
            #expect(!tree.verify(proof: missing, root: root, key: key, value: value))
            #expect(!tree.verify(proof: proof, root: root.flipping(bit: 255), key: key, value: value))
            #expect(!tree.verify(proof: proof, root: root, key: key.flipping(bit: 0), value: value))
        }
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func historicalRootsStayProvable(id: CryptoSuiteID) throws {
        let tree = SparseMerkleTree(suite: CryptoSuite(id))
        var rng = SplitMix64(seed: 99)
        var (store, root, model) = try populate(tree, count: 50, rng: &rng)
        let oldRoot = root
        let oldModel = model
        for _ in 0..<5 {
            var batch: [(key: Hash32, value: Hash32)] = model.keys.prefix(10).map { ($0, rng.hash()) }
            batch += (0..<10).map { _ in (rng.hash(), rng.hash()) }
            let update = try tree.update(root: root, changes: batch, source: store)
            store.insert(update.newNodes)
            root = update.root
            for change in batch { model[change.key] = change.value }
        }
        #expect(root != oldRoot)
        for (key, value) in oldModel {
            let proof = try tree.prove(root: oldRoot, key: key, source: store)
            #expect(tree.verify(proof: proof, root: oldRoot, key: key, value: value))
            #expect(try tree.value(root: root, key: key, source: store) == model[key])
        }
    }

    @Test func proofsAndUpdatesAreLogarithmic() throws {
        let tree = SparseMerkleTree(suite: .ed25519SHA256)
        var rng = SplitMix64(seed: 10_000)
        let (store, root, model) = try populate(tree, count: 10_000, rng: &rng)
        let bound = Int(2 * log2(10_000.0)) + 8
        let keys = Array(model.keys.prefix(200))
        var longest = 0
        for key in keys {
            longest = max(longest, try tree.prove(root: root, key: key, source: store).siblings.count)
        }
        #expect(longest <= bound, "longest proof \(longest)")

        let counting = CountingSource(store)
        let update = try tree.update(root: root, changes: [(rng.hash(), rng.hash())], source: counting)
        #expect(counting.reads <= bound, "reads \(counting.reads)")
        #expect(update.newNodes.count <= bound + 1, "new nodes \(update.newNodes.count)")

        counting.reads = 0
        let overwrite = try tree.update(root: root, changes: [(keys[0], rng.hash())], source: counting)
        #expect(counting.reads <= bound && overwrite.newNodes.count <= bound + 1)
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func edgeCases(id: CryptoSuiteID) throws {
        let tree = SparseMerkleTree(suite: CryptoSuite(id))
        let empty = InMemorySMTStore()
        let key = Hash32.zero
        let neighbour = key.flipping(bit: 255)  // differs only in the last bit
        let value = CryptoSuite(id).hash([1])

        let emptyProof = try tree.prove(root: .zero, key: key, source: empty)
        #expect(emptyProof == SMTProof(siblings: [], terminal: .empty))
        #expect(tree.verify(proof: emptyProof, root: .zero, key: key, value: nil))
        #expect(try tree.update(root: .zero, changes: [], source: empty).root == .zero)

        let single = try tree.update(root: .zero, changes: [(key, value)], source: empty)
        #expect(single.root == tree.leafHash(key: key, value: value))
        #expect(single.newNodes == [single.root: .leaf(key: key, value: value)])

        var store = InMemorySMTStore()
        store.insert(single.newNodes)
        let pair = try tree.update(root: single.root, changes: [(neighbour, value)], source: store)
        store.insert(pair.newNodes)
        #expect(pair.root == referenceRoot([key: value, neighbour: value], tree))
        let proof = try tree.prove(root: pair.root, key: neighbour, source: store)
        #expect(proof.siblings.count == 256)
        #expect(tree.verify(proof: proof, root: pair.root, key: neighbour, value: value))
        let unchanged = try tree.update(root: pair.root, changes: [(key, value)], source: store)
        #expect(unchanged.root == pair.root)

        #expect(throws: SMTError.missingNode(pair.root)) {
            try tree.prove(root: pair.root, key: key, source: empty)
        }
        #expect(throws: SMTError.missingNode(pair.root)) {
            try tree.update(root: pair.root, changes: [(key, .zero)], source: empty)
        }
    }

    @Test func nodeEncodingAndProofCodable() throws {
        let a = Hash32.zero.flipping(bit: 3)
        let b = Hash32.zero.flipping(bit: 200)
        for node in [SMTNode.internal(left: a, right: b), .leaf(key: b, value: a)] {
            #expect(node.encoded.count == 65)
            #expect(try SMTNode(decoding: node.encoded) == node)
        }
        #expect(SMTNode.leaf(key: a, value: b).encoded.first == 0x05)
        #expect(SMTNode.internal(left: a, right: b).encoded.first == 0x06)
        #expect(throws: SMTError.malformedEncoding) { try SMTNode(decoding: [0x07] + a.bytes + b.bytes) }
        #expect(throws: SMTError.malformedEncoding) { try SMTNode(decoding: [0x05] + a.bytes) }

        let tree = SparseMerkleTree(suite: .sm2SM3)
        #expect(tree.leafHash(key: a, value: b) == CryptoSuite.sm2SM3.hash(SMTNode.leaf(key: a, value: b).encoded))
        #expect(tree.nodeHash(a, b) == CryptoSuite.sm2SM3.hash(SMTNode.internal(left: a, right: b).encoded))

        for proof in [SMTProof(siblings: [a, b], terminal: .leaf(key: a, value: b)), SMTProof(siblings: [], terminal: .empty)] {
            let data = try JSONEncoder().encode(proof)
            #expect(try JSONDecoder().decode(SMTProof.self, from: data) == proof)
        }
    }

    private func populate(
        _ tree: SparseMerkleTree, count: Int, rng: inout SplitMix64
    ) throws -> (InMemorySMTStore, Hash32, [Hash32: Hash32]) {
        var model: [Hash32: Hash32] = [:]
        for _ in 0..<count { model[rng.hash()] = rng.hash() }
        let update = try tree.update(root: .zero, changes: model.map { ($0.key, $0.value) }, source: InMemorySMTStore())
        var store = InMemorySMTStore()
        store.insert(update.newNodes)
        return (store, update.root, model)
    }
}
