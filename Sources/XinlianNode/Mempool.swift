import XinlianCore
import XinlianCredit
import XinlianCrypto

/// Transactions waiting for a block: deduplicated by id, bounded in count and bytes, first in first out.
///
/// Each reporter (institution) may hold at most `1 / reporterShareDivisor` of either bound, so that one member
/// flooding valid statements — through any node's API or by gossip — leaves room for everyone else.
public struct Mempool: Sendable {
    public static let defaultTransactionLimit = 50_000
    public static let defaultBytesLimit = 256 * 1024 * 1024
    /// A reporter's share is a quarter of the mempool by default.
    public static let defaultReporterShareDivisor = 4
    /// A transaction not decided within an hour leaves the mempool (its reporter may submit it again).
    public static let defaultExpiryMs: UInt64 = 3_600_000

    public struct Entry: Sendable {
        public var id: Hash32
        public var transaction: Transaction
        public var sizeBytes: Int
        /// Milliseconds since the Unix epoch when the node admitted it.
        public var admittedMs: UInt64
        /// The credit statement it decoded to at admission (reused when a block with it is built or validated).
        public var statement: CreditStatement?

        public init(id: Hash32, transaction: Transaction, sizeBytes: Int, admittedMs: UInt64,
                    statement: CreditStatement? = nil) {
            self.id = id
            self.transaction = transaction
            self.sizeBytes = sizeBytes
            self.admittedMs = admittedMs
            self.statement = statement
        }
    }

    public let transactionLimit: Int
    public let bytesLimit: Int
    /// Most transactions and bytes one reporter may have waiting.
    public let reporterTransactionLimit: Int
    public let reporterBytesLimit: Int
    /// How long a transaction may wait (0: for ever).
    public let expiryMs: UInt64
    public private(set) var bytes = 0
    private var perReporter: [InstitutionID: (count: Int, bytes: Int)] = [:]
    private var entries: [Hash32: Entry] = [:]
    private var order: [Hash32] = []
    private var orderStart = 0

    public init(transactionLimit: Int = defaultTransactionLimit, bytesLimit: Int = defaultBytesLimit,
                reporterShareDivisor: Int = defaultReporterShareDivisor, expiryMs: UInt64 = defaultExpiryMs) {
        self.transactionLimit = transactionLimit
        self.bytesLimit = bytesLimit
        self.expiryMs = expiryMs
        let divisor = max(1, reporterShareDivisor)
        reporterTransactionLimit = max(1, transactionLimit / divisor)
        reporterBytesLimit = max(Limits.transactionBytes, bytesLimit / divisor)
    }

    /// What `reporter` has waiting.
    public func held(by reporter: InstitutionID) -> (count: Int, bytes: Int) { perReporter[reporter] ?? (0, 0) }

    /// Why `entries` do not fit (the whole mempool, or one reporter's share of it), or nil when they do.
    public func refusal(_ entries: [Entry]) -> String? {
        let total = entries.reduce(0) { $0 + $1.sizeBytes }
        guard hasRoom(count: entries.count, sizeBytes: total) else { return "the mempool is full; retry later" }
        var added: [InstitutionID: (count: Int, bytes: Int)] = [:]
        for entry in entries { added[entry.transaction.body.reporter, default: (0, 0)].count += 1 }
        for entry in entries { added[entry.transaction.body.reporter, default: (0, 0)].bytes += entry.sizeBytes }
        for (reporter, more) in added.sorted(by: { $0.key < $1.key }) {
            let held = held(by: reporter)
            guard held.count + more.count <= reporterTransactionLimit, held.bytes + more.bytes <= reporterBytesLimit else {
                return "\(reporter) already has its share of the mempool waiting (\(reporterTransactionLimit) transactions, \(reporterBytesLimit) bytes); retry once some are committed"
            }
        }
        return nil
    }

    public var count: Int { entries.count }
    public func contains(_ id: Hash32) -> Bool { entries[id] != nil }
    public func transaction(_ id: Hash32) -> Transaction? { entries[id]?.transaction }
    public func entry(_ id: Hash32) -> Entry? { entries[id] }

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
        perReporter[entry.transaction.body.reporter, default: (0, 0)].count += 1
        perReporter[entry.transaction.body.reporter, default: (0, 0)].bytes += entry.sizeBytes
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

    /// Removes and returns the entries admitted more than ``expiryMs`` before `nowMs` (oldest first).
    public mutating func expire(nowMs: UInt64) -> [Entry] {
        guard expiryMs > 0, nowMs > expiryMs else { return [] }
        let cutoff = nowMs - expiryMs
        var expired: [Entry] = []
        for id in order[orderStart...] {
            guard let entry = entries[id] else { continue }
            // Admission order is (nearly) time order: stop at the first one still young enough.
            guard entry.admittedMs < cutoff else { break }
            expired.append(entry)
        }
        remove(expired.map(\.id))
        return expired
    }

    public mutating func remove(_ ids: some Sequence<Hash32>) {
        for id in ids {
            guard let entry = entries.removeValue(forKey: id) else { continue }
            bytes -= entry.sizeBytes
            let reporter = entry.transaction.body.reporter
            let held = held(by: reporter)
            perReporter[reporter] = held.count > 1 ? (held.count - 1, held.bytes - entry.sizeBytes) : nil
        }
        while orderStart < order.count, entries[order[orderStart]] == nil { orderStart += 1 }
        if orderStart > 1_024, orderStart * 2 > order.count {
            order.removeFirst(orderStart)
            orderStart = 0
        }
    }
}
