import XinlianCrypto

/// Why a sparse Merkle tree operation failed.
public enum SMTError: Error, Sendable, Equatable {
    /// The node source has no node for this (non-zero) hash.
    case missingNode(Hash32)
    /// A stored node is malformed, or the tree under this hash is structurally impossible.
    case corruptNode(Hash32)
    /// A node encoding is not 65 bytes with tag 0x05 or 0x06.
    case malformedEncoding
}

/// A stored sparse Merkle tree node, addressed by its hash. Empty subtrees are never stored.
public enum SMTNode: Sendable, Equatable {
    /// A subtree with at least two leaves: `H(0x06 || left || right)`.
    case `internal`(left: Hash32, right: Hash32)
    /// A subtree with exactly one leaf: `H(0x05 || key || value)`.
    case leaf(key: Hash32, value: Hash32)

    static let leafTag: UInt8 = 0x05
    static let internalTag: UInt8 = 0x06

    /// Tag byte followed by the two 32-byte fields; also the exact preimage of the node's hash.
    public var encoded: [UInt8] {
        switch self {
        case .internal(let left, let right): [Self.internalTag] + left.bytes + right.bytes
        case .leaf(let key, let value): [Self.leafTag] + key.bytes + value.bytes
        }
    }

    /// Decodes ``encoded``.
    ///
    /// - Throws: ``SMTError/malformedEncoding`` for a wrong length or unknown tag.
    public init(decoding bytes: [UInt8]) throws(SMTError) {
        guard bytes.count == 65,
            let first = Hash32(bytes: bytes[1..<33]),
            let second = Hash32(bytes: bytes[33..<65])
        else { throw .malformedEncoding }
        switch bytes[0] {
        case Self.internalTag: self = .internal(left: first, right: second)
        case Self.leafTag: self = .leaf(key: first, value: second)
        default: throw .malformedEncoding
        }
    }
}

/// Content-addressed node storage: hash to node, for non-zero hashes only.
public protocol SMTNodeSource {
    /// The node whose hash is `hash`, or `nil` if unknown.
    func smtNode(_ hash: Hash32) throws -> SMTNode?
}

/// A dictionary-backed ``SMTNodeSource``, for tests and small trees.
public struct InMemorySMTStore: SMTNodeSource, Sendable {
    /// All stored nodes by hash.
    public var nodes: [Hash32: SMTNode]

    /// An empty store.
    public init() {
        nodes = [:]
    }

    /// Adds nodes (typically ``SMTUpdate/newNodes``); existing entries are kept identical by content addressing.
    public mutating func insert(_ nodes: [Hash32: SMTNode]) {
        self.nodes.merge(nodes) { _, new in new }
    }

    public func smtNode(_ hash: Hash32) -> SMTNode? {
        nodes[hash]
    }
}

/// The result of a batch update: the new root and the nodes to store for it.
public struct SMTUpdate: Sendable {
    /// The new root hash.
    public let root: Hash32
    /// Nodes created by the update, by hash; store them to read the new root.
    public let newNodes: [Hash32: SMTNode]

    /// Creates an update result.
    public init(root: Hash32, newNodes: [Hash32: SMTNode]) {
        self.root = root
        self.newNodes = newNodes
    }
}

/// A membership or non-membership proof for one key.
public struct SMTProof: Sendable, Equatable, Codable {
    /// What the key's path ends at.
    public enum Terminal: Sendable, Equatable, Codable {
        /// An empty subtree: the key is absent.
        case empty
        /// A single-leaf subtree: the key itself (membership) or another key sharing the path (absence).
        case leaf(key: Hash32, value: Hash32)
    }

    /// Sibling hashes along the key's path, from the root downward.
    public var siblings: [Hash32]
    /// What the path ends at.
    public var terminal: Terminal

    /// Creates a proof.
    public init(siblings: [Hash32], terminal: Terminal) {
        self.siblings = siblings
        self.terminal = terminal
    }
}
