import XinlianCore
import XinlianCrypto

/// Transactions waiting for a block: deduplicated by id, bounded in count and bytes, first in first out.
public struct Mempool: Sendable {
    public static let defaultTransactionLimit = 50_000
    public static let defaultBytesLimit = 256 * 1024 * 1024

    public struct Entry: Sendable {
        public var id: Hash32
        public var transaction: Transaction
        public var sizeBytes: Int
        /// Milliseconds since the Unix epoch when the node admitted it.
        public var admittedMs: UInt64
    }

    public let transactionLimit: Int
    public let bytesLimit: Int
    public private(set) var bytes = 0
    private var entries: [Hash32: Entry] = [:]
    private var order: [Hash32] = []
    private var orderStart = 0

    public init(transactionLimit: Int = defaultTransactionLimit, bytesLimit: Int = defaultBytesLimit) {
        self.transactionLimit = transactionLimit
        self.bytesLimit = bytesLimit
    }

    public var count: Int { entries.count }
    public func contains(_ id: Hash32) -> Bool { entries[id] != nil }
    public func transaction(_ id: Hash32) -> Transaction? { entries[id]?.transaction }

    /// Room for `count` more transactions totalling `sizeBytes`?
    public func hasRoom(count: Int, sizeBytes: Int) -> Bool {
        entries.count + count <= transactionLimit && bytes + sizeBytes <= bytesLimit
    }

    /// Adds `entry` unless one with its id is already waiting. Callers check `hasRoom` first.
    public mutating func insert(_ entry: Entry) {
        guard entries[entry.id] == nil else { return }
        entries[entry.id] = entry
        order.append(entry.id)
        bytes += entry.sizeBytes
    }

    /// The oldest transactions, up to `maxCount` and `maxBytes`, in admission order.
    public func batch(maxCount: Int, maxBytes: Int) -> [Entry] {
        var result: [Entry] = []
        var total = 0
        for id in order[orderStart...] {
            guard result.count < maxCount else { break }
            guard let entry = entries[id] else { continue }
            guard total + entry.sizeBytes <= maxBytes else { break }
            total += entry.sizeBytes
            result.append(entry)
        }
        return result
    }

    public mutating func remove(_ ids: some Sequence<Hash32>) {
        for id in ids {
            if let entry = entries.removeValue(forKey: id) { bytes -= entry.sizeBytes }
        }
        while orderStart < order.count, entries[order[orderStart]] == nil { orderStart += 1 }
        if orderStart > 1_024, orderStart * 2 > order.count {
            order.removeFirst(orderStart)
            orderStart = 0
        }
    }
}
