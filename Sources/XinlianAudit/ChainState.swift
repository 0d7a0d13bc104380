import XinlianCore
import XinlianCrypto
import XinlianMerkle

/// Every transaction id seen so far, to reject replays across the whole chain.
///
/// Memory: ids are stored as four `UInt64` words (32 bytes, no heap allocation each); with the set's load
/// factor that is about 40–64 bytes per transaction (≈ 0.5 GB per 10 million transactions). Fine for now;
/// a disk-backed set is the way past that.
struct TransactionIDSet {
    private struct Key: Hashable {
        let words: (UInt64, UInt64, UInt64, UInt64)

        init(_ id: Hash32) {
            let bytes = id.bytes
            let width = MemoryLayout<UInt64>.size
            words = (BigEndian.read(UInt64.self, from: bytes, at: 0), BigEndian.read(UInt64.self, from: bytes, at: width),
                     BigEndian.read(UInt64.self, from: bytes, at: 2 * width),
                     BigEndian.read(UInt64.self, from: bytes, at: 3 * width))
        }

        static func == (lhs: Key, rhs: Key) -> Bool { lhs.words == rhs.words }

        func hash(into hasher: inout Hasher) {
            hasher.combine(words.0)
            hasher.combine(words.1)
            hasher.combine(words.2)
            hasher.combine(words.3)
        }
    }

    private var keys: Set<Key> = []

    /// Adds `id`; false if it was already there.
    mutating func insert(_ id: Hash32) -> Bool {
        keys.insert(Key(id)).inserted
    }
}

/// Replays every enterprise's hash chain into a sparse Merkle tree held in memory, block by block.
///
/// Memory: one head per enterprise plus the live tree (about two nodes per enterprise). Nodes replaced by later
/// updates are dropped once the store holds more than twice the live tree, so garbage stays bounded.
struct StateReplay {
    /// The store is never pruned below this many nodes.
    static let pruneFloor = 4_096
    /// Prune when the store exceeds this multiple of the live tree found by the last pruning.
    static let pruneFactor = 2

    let suite: CryptoSuite
    private let tree: SparseMerkleTree
    private var store = InMemorySMTStore()
    private var heads: [USCC: Hash32] = [:]
    private var liveNodes = 0
    /// The state root after the blocks applied so far (empty tree: zero).
    private(set) var root: Hash32 = .zero

    init(suite: CryptoSuite) {
        self.suite = suite
        tree = SparseMerkleTree(suite: suite)
    }

    /// Applies one block's transactions; returns the new state root.
    mutating func apply(_ transactions: [Transaction]) throws(SMTError) -> Hash32 {
        let changed = EnterpriseState.heads(after: transactions, suite: suite) { self.heads[$0] }
        guard !changed.isEmpty else { return root }
        let changes = changed.map { (key: EnterpriseState.key($0.key, suite: suite), value: $0.value) }
        let update: SMTUpdate
        do {
            update = try tree.update(root: root, changes: changes, source: store)
        } catch let error as SMTError {
            throw error
        } catch {
            throw SMTError.corruptNode(root)
        }
        heads.merge(changed) { _, new in new }
        store.insert(update.newNodes)
        root = update.root
        pruneIfNeeded()
        return root
    }

    private mutating func pruneIfNeeded() {
        guard store.nodes.count > max(Self.pruneFloor, Self.pruneFactor * liveNodes) else { return }
        var live: [Hash32: SMTNode] = [:]
        var pending = root == .zero ? [] : [root]
        while let hash = pending.popLast() {
            guard let node = store.nodes[hash] else { continue }
            live[hash] = node
            if case let .internal(left, right) = node {
                pending += [left, right].filter { $0 != .zero }
            }
        }
        store.nodes = live
        liveNodes = live.count
    }
}
