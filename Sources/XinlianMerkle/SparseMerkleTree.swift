import XinlianCrypto

/// A path-compressed binary sparse Merkle tree (Diem/Jellyfish style) over 256-bit keys.
///
/// - Empty subtree: `Hash32.zero`.
/// - Subtree with one leaf: `H(0x05 || key || value)`, placed at the highest position where it is alone.
/// - Subtree with two or more leaves: `H(0x06 || left || right)`; keys whose bit at that depth is 0 go
///   left (bit 0 is the most significant bit of byte 0).
///
/// Nodes are content addressed, so every historical root stays readable from the same store.
public struct SparseMerkleTree: Sendable {
    /// The suite whose hash function is used.
    public let suite: CryptoSuite

    /// Creates a tree definition for `suite`.
    public init(suite: CryptoSuite) {
        self.suite = suite
    }

    /// `H(0x05 || key || value)`.
    public func leafHash(key: Hash32, value: Hash32) -> Hash32 {
        hash(tag: SMTNode.leafTag, key, value)
    }

    /// `H(0x06 || left || right)`.
    public func nodeHash(_ left: Hash32, _ right: Hash32) -> Hash32 {
        hash(tag: SMTNode.internalTag, left, right)
    }

    /// Inserts or overwrites `changes` in one recursive pass, reading only nodes on touched paths.
    ///
    /// A later change for the same key wins. Costs about `k·log2(n)` hashes for `k` changes.
    public func update(
        root: Hash32, changes: [(key: Hash32, value: Hash32)], source: some SMTNodeSource
    ) throws -> SMTUpdate {
        var latest: [Hash32: Hash32] = [:]
        for change in changes {
            latest[change.key] = change.value
        }
        let sorted = latest.sorted { $0.key < $1.key }.map { Leaf(key: $0.key, value: $0.value) }
        var newNodes: [Hash32: SMTNode] = [:]
        let newRoot = try apply(sorted[...], to: root, depth: 0, source: source, newNodes: &newNodes)
        return SMTUpdate(root: newRoot, newNodes: newNodes)
    }

    /// The value stored under `key` in the tree with `root`, or `nil` if absent.
    public func value(root: Hash32, key: Hash32, source: some SMTNodeSource) throws -> Hash32? {
        let proof = try prove(root: root, key: key, source: source)
        guard case .leaf(let found, let value) = proof.terminal, found == key else { return nil }
        return value
    }

    /// A proof of the value (or absence) of `key` in the tree with `root`.
    public func prove(root: Hash32, key: Hash32, source: some SMTNodeSource) throws -> SMTProof {
        var siblings: [Hash32] = []
        var current = root
        while current != .zero {
            switch try node(current, source: source) {
            case .leaf(let leafKey, let value):
                return SMTProof(siblings: siblings, terminal: .leaf(key: leafKey, value: value))
            case .internal(let left, let right):
                guard siblings.count < 256 else { throw SMTError.corruptNode(current) }
                let goRight = Self.bit(key, at: siblings.count)
                siblings.append(goRight ? left : right)
                current = goRight ? right : left
            }
        }
        return SMTProof(siblings: siblings, terminal: .empty)
    }

    /// Whether `proof` shows `key` maps to `value` (or, for `nil`, is absent) under `root`.
    ///
    /// Absence is shown by an empty terminal, or by a leaf for a different key sharing the path prefix.
    public func verify(proof: SMTProof, root: Hash32, key: Hash32, value: Hash32?) -> Bool {
        guard proof.siblings.count <= 256 else { return false }
        var current: Hash32
        switch (proof.terminal, value) {
        case (.empty, nil):
            current = .zero
        case (.empty, .some):
            return false
        case (.leaf(let leafKey, let leafValue), let expected?):
            guard leafKey == key, leafValue == expected else { return false }
            current = leafHash(key: leafKey, value: leafValue)
        case (.leaf(let leafKey, let leafValue), nil):
            guard leafKey != key, Self.sharedPrefixLength(leafKey, key) >= proof.siblings.count else { return false }
            current = leafHash(key: leafKey, value: leafValue)
        }
        for (depth, sibling) in proof.siblings.enumerated().reversed() {
            current = Self.bit(key, at: depth) ? nodeHash(sibling, current) : nodeHash(current, sibling)
        }
        return current == root
    }
}

// MARK: - Batch update

extension SparseMerkleTree {
    private struct Leaf {
        let key: Hash32
        let value: Hash32
    }

    /// Applies sorted, unique-key `changes` to the subtree `hash` at `depth`; returns the new subtree hash.
    private func apply(
        _ changes: ArraySlice<Leaf>, to hash: Hash32, depth: Int,
        source: some SMTNodeSource, newNodes: inout [Hash32: SMTNode]
    ) throws -> Hash32 {
        guard !changes.isEmpty else { return hash }
        guard hash != .zero else { return build(changes, depth: depth, newNodes: &newNodes) }
        switch try node(hash, source: source) {
        case .leaf(let key, let value):
            // All changes here share the path's first `depth` bits; so must a correctly placed leaf.
            guard let probe = changes.first, Self.sharedPrefixLength(key, probe.key) >= depth else {
                throw SMTError.corruptNode(hash)
            }
            let merged = Self.merging(Leaf(key: key, value: value), into: changes)
            return build(merged[...], depth: depth, newNodes: &newNodes)
        case .internal(let left, let right):
            guard depth < 256 else { throw SMTError.corruptNode(hash) }
            let (leftChanges, rightChanges) = Self.split(changes, depth: depth)
            let newLeft = try apply(leftChanges, to: left, depth: depth + 1, source: source, newNodes: &newNodes)
            let newRight = try apply(rightChanges, to: right, depth: depth + 1, source: source, newNodes: &newNodes)
            if newLeft == left && newRight == right { return hash }
            return store(.internal(left: newLeft, right: newRight), in: &newNodes)
        }
    }

    /// Builds a fresh subtree holding exactly `leaves` (sorted, unique keys) at `depth`.
    private func build(_ leaves: ArraySlice<Leaf>, depth: Int, newNodes: inout [Hash32: SMTNode]) -> Hash32 {
        guard let first = leaves.first else { return .zero }
        if leaves.count == 1 {
            return store(.leaf(key: first.key, value: first.value), in: &newNodes)
        }
        let (left, right) = Self.split(leaves, depth: depth)
        let leftHash = build(left, depth: depth + 1, newNodes: &newNodes)
        let rightHash = build(right, depth: depth + 1, newNodes: &newNodes)
        return store(.internal(left: leftHash, right: rightHash), in: &newNodes)
    }

    /// Adds an existing leaf to sorted changes unless a change already has its key (the change wins).
    private static func merging(_ existing: Leaf, into changes: ArraySlice<Leaf>) -> [Leaf] {
        var merged = Array(changes)
        guard !merged.contains(where: { $0.key == existing.key }) else { return merged }
        let position = merged.firstIndex { existing.key < $0.key } ?? merged.endIndex
        merged.insert(existing, at: position)
        return merged
    }

    /// Splits sorted leaves into those with bit 0 and bit 1 at `depth`.
    private static func split(_ leaves: ArraySlice<Leaf>, depth: Int) -> (ArraySlice<Leaf>, ArraySlice<Leaf>) {
        let boundary = leaves.firstIndex { bit($0.key, at: depth) } ?? leaves.endIndex
        return (leaves[..<boundary], leaves[boundary...])
    }
}

// MARK: - Helpers

extension SparseMerkleTree {
    /// Bit `depth` of `key`, most significant bit of byte 0 first.
    static func bit(_ key: Hash32, at depth: Int) -> Bool {
        key.bytes[depth / 8] & (0x80 >> UInt8(depth % 8)) != 0
    }

    /// Number of leading bits `a` and `b` have in common (256 if equal).
    static func sharedPrefixLength(_ a: Hash32, _ b: Hash32) -> Int {
        for index in 0..<32 where a.bytes[index] != b.bytes[index] {
            return index * 8 + (a.bytes[index] ^ b.bytes[index]).leadingZeroBitCount
        }
        return 256
    }

    private func hash(tag: UInt8, _ first: Hash32, _ second: Hash32) -> Hash32 {
        var hasher = suite.makeHasher()
        hasher.update(byte: tag)
        hasher.update(first)
        hasher.update(second)
        return hasher.finalize()
    }

    private func store(_ node: SMTNode, in nodes: inout [Hash32: SMTNode]) -> Hash32 {
        let hash = suite.hash(node.encoded)
        nodes[hash] = node
        return hash
    }

    private func node(_ hash: Hash32, source: some SMTNodeSource) throws -> SMTNode {
        guard let node = try source.smtNode(hash) else { throw SMTError.missingNode(hash) }
        return node
    }
}
