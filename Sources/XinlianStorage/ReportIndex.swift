import Foundation
import XinlianCore
import XinlianCrypto
import XinlianMerkle

/// Where a report's input sits: a committed transaction's id and position, where its bytes lie in its block's
/// record, and its block's time.
public struct IndexedTransaction: Sendable, Hashable {
    public var id: Hash32
    public var location: TransactionLocation
    public var bytes: TransactionBytes
    public var blockTimeMs: UInt64

    public init(id: Hash32, location: TransactionLocation, bytes: TransactionBytes, blockTimeMs: UInt64) {
        self.id = id
        self.location = location
        self.bytes = bytes
        self.blockTimeMs = blockTimeMs
    }
}

/// The report tables of the index (`docs/credit-model.md`, "Report input"):
///
/// - `counterparties(party, id)`: each `guaranteeIssued` under its `guarantor`, so that the guarantor's report
///   finds the guarantees it gave without scanning the ledger;
/// - `transaction_refs(target, id)`: each transaction under every transaction its payload names, so that
///   releases, corrections, disputes and resolutions of those guarantees are found by following references.
///
/// The storage layer does not link the credit model; the payload fields that hold references are listed here and
/// must agree with `CreditStatement.references` / `.counterparties` (the node's report tests cover every one).
extension LedgerIndex {
    /// Payload fields holding transaction ids, by kind.
    static let referenceFields: [TransactionKind: [String]] = [
        .facilityUpdated: ["opening"], .facilityClosed: ["opening"], .collateralRegistered: [],
        .collateralReleased: ["registration"], .guaranteeReleased: ["issuance"], .correction: ["corrects"],
        .dispute: ["disputes"], .disputeResolved: ["dispute"], .consentRevoked: ["consent"], .queryRecord: ["consent"],
    ]
    /// Payload fields holding another enterprise's USCC, by kind.
    static let counterpartyFields: [TransactionKind: [String]] = [.guaranteeIssued: ["guarantor"]]

    func createReportSchema() throws {
        try db.execute("""
            CREATE TABLE IF NOT EXISTS counterparties(party TEXT NOT NULL, id BLOB NOT NULL, PRIMARY KEY(party, id)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS transaction_refs(target BLOB NOT NULL, id BLOB NOT NULL, PRIMARY KEY(target, id)) WITHOUT ROWID;
            """)
    }

    func insertReportLinks(_ record: CommittedBlock, suite: CryptoSuite) throws {
        let party = try db.prepare("INSERT OR IGNORE INTO counterparties(party, id) VALUES(?, ?)")
        let reference = try db.prepare("INSERT OR IGNORE INTO transaction_refs(target, id) VALUES(?, ?)")
        for transaction in record.block.transactions where transaction.body.subject != nil {
            let kind = transaction.body.kind
            let referenceNames = Self.referenceFields[kind] ?? []
            let partyNames = Self.counterpartyFields[kind] ?? []
            guard !referenceNames.isEmpty || !partyNames.isEmpty,
                  case .object(let fields)? = try? JSONParser.parse(transaction.body.payload)
            else { continue }
            let id = transaction.id(suite)
            for name in partyNames {
                guard case .string(let text)? = fields[name], let uscc = try? USCC(text) else { continue }
                defer { party.reset() }
                try party.bind([.text(uscc.code), .blob(id.bytes)])
                _ = try party.step()
            }
            var targets = Set<Hash32>()
            for name in referenceNames {
                guard case .string(let text)? = fields[name], let target = Hash32(hex: text) else { continue }
                targets.insert(target)
            }
            // A correction's restated payload may carry references of its own (an update's opening).
            if kind == .correction, case .object(let restated)? = fields["payload"] {
                for name in ["opening", "registration", "issuance"] {
                    if case .string(let text)? = restated[name], let target = Hash32(hex: text) { targets.insert(target) }
                }
            }
            for target in targets {
                defer { reference.reset() }
                try reference.bind([.blob(target.bytes), .blob(id.bytes)])
                _ = try reference.step()
            }
        }
    }

    /// Transactions about `subject` committed at or below `height`, oldest first.
    public func subjectTransactions(_ subject: USCC, throughHeight height: UInt64) throws -> [IndexedTransaction] {
        try indexed("""
            SELECT \(Self.indexedColumns) WHERE t.subject = ? AND t.height <= ? ORDER BY t.height, t.position
            """, [.text(subject.code), .integer(Int64(clamping: height))])
    }

    /// `subject`'s transactions of the given kinds (raw values), at or below `height`, in ledger order.
    public func subjectTransactions(_ subject: USCC, kinds: [String], throughHeight height: UInt64) throws -> [IndexedTransaction] {
        let placeholders = Array(repeating: "?", count: kinds.count).joined(separator: ", ")
        return try indexed("""
            SELECT \(Self.indexedColumns) WHERE t.subject = ? AND t.height <= ? AND t.kind IN (\(placeholders))
            ORDER BY t.height, t.position
            """, [.text(subject.code), .integer(Int64(clamping: height))] + kinds.map { .text($0) })
    }

    /// `guaranteeIssued` transactions naming `party` as guarantor, at or below `height`.
    public func counterpartyTransactions(_ party: USCC, throughHeight height: UInt64) throws -> [IndexedTransaction] {
        try indexed("""
            SELECT \(Self.indexedColumns) JOIN counterparties c ON c.id = t.id
            WHERE c.party = ? AND t.height <= ? ORDER BY t.height, t.position
            """, [.text(party.code), .integer(Int64(clamping: height))])
    }

    /// Transactions whose payload names `target`, at or below `height`.
    public func referencingTransactions(_ target: Hash32, throughHeight height: UInt64) throws -> [IndexedTransaction] {
        try indexed("""
            SELECT \(Self.indexedColumns) JOIN transaction_refs r ON r.id = t.id
            WHERE r.target = ? AND t.height <= ? ORDER BY t.height, t.position
            """, [.blob(target.bytes), .integer(Int64(clamping: height))])
    }

    /// Where the committed transaction `id` lies, nil when it is not committed.
    public func indexedTransaction(_ id: Hash32) throws -> IndexedTransaction? {
        try indexed("SELECT \(Self.indexedColumns) WHERE t.id = ?", [.blob(id.bytes)]).first
    }

    /// Enterprises with records, in USCC order, strictly after `after`.
    public func enterprises(after: String, limit: Int) throws -> [USCC] {
        let statement = try db.prepare("SELECT uscc FROM enterprises WHERE uscc > ? ORDER BY uscc LIMIT ?")
        defer { statement.reset() }
        try statement.bind([.text(after), .integer(Int64(clamping: limit))])
        var result: [USCC] = []
        while try statement.step() {
            guard let uscc = try? USCC(statement.text(0)) else {
                throw StorageError.corrupt(file: "index.sqlite", offset: 0, reason: "malformed USCC in enterprises")
            }
            result.append(uscc)
        }
        return result
    }

    /// The hash and time the index recorded for the block at `height`.
    public func indexedBlock(at height: UInt64) throws -> (hash: Hash32, timeMs: UInt64)? {
        let statement = try db.prepare("SELECT hash, time_ms FROM blocks WHERE height = ?")
        defer { statement.reset() }
        try statement.bind([.integer(Int64(clamping: height))])
        guard try statement.step() else { return nil }
        guard let hash = Hash32(bytes: statement.blob(0)) else {
            throw StorageError.corrupt(file: "index.sqlite", offset: 0, reason: "block \(height) has a malformed hash")
        }
        return (hash, UInt64(clamping: statement.int64(1)))
    }

    /// The columns `indexed(_:_:)` reads, from `transactions t` joined with its block (a left join: a transaction
    /// whose block row is missing is a fault, not silently left out of a report or a consent decision).
    static let indexedColumns = """
        t.id, t.height, t.position, t.record_offset, t.record_length, t.checksum, b.time_ms
        FROM transactions t LEFT JOIN blocks b ON b.height = t.height
        """

    func indexed(_ sql: String, _ values: [SQLiteValue]) throws -> [IndexedTransaction] {
        let statement = try db.prepare(sql)
        defer { statement.reset() }
        try statement.bind(values)
        var result: [IndexedTransaction] = []
        while try statement.step() {
            guard let id = Hash32(bytes: statement.blob(0)) else {
                throw StorageError.corrupt(file: "index.sqlite", offset: 0, reason: "malformed transaction id")
            }
            guard !statement.isNull(6) else {
                throw StorageError.corrupt(file: "index.sqlite", offset: 0,
                                           reason: "transaction \(id) names block \(statement.int64(1)), which the index lacks; run xinlian reindex")
            }
            let bytes = TransactionBytes(offset: Int(clamping: statement.int64(3)), length: Int(clamping: statement.int64(4)),
                                         checksum: UInt32(truncatingIfNeeded: statement.int64(5)))
            result.append(IndexedTransaction(id: id, location: TransactionLocation(height: UInt64(clamping: statement.int64(1)),
                                                                                   index: Int(clamping: statement.int64(2))),
                                             bytes: bytes, blockTimeMs: UInt64(clamping: statement.int64(6))))
        }
        return result
    }
}

extension LedgerStore {
    public func subjectTransactions(_ subject: USCC, throughHeight height: UInt64) throws -> [IndexedTransaction] {
        try index.subjectTransactions(subject, throughHeight: height)
    }

    public func counterpartyTransactions(_ party: USCC, throughHeight height: UInt64) throws -> [IndexedTransaction] {
        try index.counterpartyTransactions(party, throughHeight: height)
    }

    public func subjectTransactions(_ subject: USCC, kinds: [String], throughHeight height: UInt64) throws -> [IndexedTransaction] {
        try index.subjectTransactions(subject, kinds: kinds, throughHeight: height)
    }

    public func referencingTransactions(_ target: Hash32, throughHeight height: UInt64) throws -> [IndexedTransaction] {
        try index.referencingTransactions(target, throughHeight: height)
    }

    public func enterprises(after: String, limit: Int) throws -> [USCC] { try index.enterprises(after: after, limit: limit) }

    /// The hash and time the index recorded for the block at `height`.
    public func indexedBlock(at height: UInt64) throws -> (hash: Hash32, timeMs: UInt64)? { try index.indexedBlock(at: height) }

    /// A proof that `subject`'s record head is (or is absent) under the state root of the block at `height`
    /// (state-tree nodes are kept for every root).
    public func stateProof(subject: USCC, atHeight height: UInt64) throws -> SMTProof {
        let root = height == 0 ? Hash32.zero : try record(at: height).block.header.stateRoot
        return try tree.prove(root: root, key: EnterpriseState.key(subject, suite: consortium.suite), source: index)
    }
}
