import CoreMetrics
import Foundation
import Hummingbird
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianMerkle
import XinlianStorage

/// What a report is built from: the enterprise's own committed transactions (its record chain, in ledger order)
/// and the counterparty closure (guarantees it gave and everything naming them), as of one height.
public struct ReportMaterial: Sendable {
    public var subject: USCC
    public var asOf: ReportAsOf
    /// Every committed transaction whose subject is `subject`, at or below `asOf.height`, in ledger order.
    public var own: [LedgerEntry]
    /// Guarantees `subject` gave and the transactions naming them, in ledger order.
    public var counterparty: [LedgerEntry]

    public var entries: [LedgerEntry] { own + counterparty }

    public func assemble(_ parameters: ReportParameters) -> CreditReport {
        ReportAssembler.assemble(subject: subject, entries: entries, asOf: asOf, parameters: parameters)
    }
}

/// Report serving on the engine: reading report input from the index, and the consent-gated admission of the
/// requester's signed query record through the node-only path (the public submit path refuses `queryRecord`).
extension NodeEngine {
    /// The ledger point at `height` (the genesis hash and time at 0).
    func asOf(height: UInt64) throws -> ReportAsOf {
        guard height > 0 else {
            return ReportAsOf(height: 0, blockHash: consortium.genesisHash, time: consortium.genesis.genesisTimeMs)
        }
        guard let block = try store.indexedBlock(at: height) else { throw StorageError.notFound("block \(height)") }
        return ReportAsOf(height: height, blockHash: block.hash, time: block.timeMs)
    }

    /// Report input for `subject` as of `height`: costs index lookups and one read per statement for the enterprise's own
    /// transactions and its counterparty closure only, never a scan of the ledger.
    public func reportMaterial(subject: USCC, height: UInt64) throws -> ReportMaterial {
        let own = try store.subjectTransactions(subject, throughHeight: height)
        var seen = Set(own.map(\.id))
        var counterparty: [IndexedTransaction] = []
        var queue = try store.counterpartyTransactions(subject, throughHeight: height)
        while let next = queue.popLast() {
            guard seen.insert(next.id).inserted else { continue }
            counterparty.append(next)
            queue.append(contentsOf: try store.referencingTransactions(next.id, throughHeight: height))
        }
        return ReportMaterial(subject: subject, asOf: try asOf(height: height), own: try entries(own),
                              counterparty: try entries(counterparty))
    }

    /// Reads indexed transactions, each from its own bytes in the block log (never its whole block), in ledger order.
    func entries(_ indexed: [IndexedTransaction]) throws -> [LedgerEntry] {
        let sorted = indexed.sorted { ($0.location.height, $0.location.index) < ($1.location.height, $1.location.index) }
        var result: [LedgerEntry] = []
        result.reserveCapacity(sorted.count)
        for item in sorted {
            result.append(LedgerEntry(id: item.id, transaction: try store.transaction(item), height: item.location.height,
                                      index: UInt32(clamping: item.location.index), blockTimeMs: item.blockTimeMs))
        }
        // The personal data still held (the report shows what is erased or missing as such).
        let held = try store.personal.data(result.map(\.id))
        if !held.isEmpty {
            for position in result.indices { result[position].transaction.personal = held[result[position].id] }
        }
        return result
    }

    /// One actor step, so that no block commits between the consent decision and the admission: refuses a
    /// replayed query, a report height above the committed one, and a query the committed consents do not allow
    /// (nothing is written then); otherwise admits the signed query record into the mempool and returns the
    /// report's input as of `query.reportHeight`.
    func serve(_ query: Transaction, record: QueryRecord, subject: USCC) throws -> (material: ReportMaterial, id: Hash32) {
        let suite = consortium.suite
        let id = query.id(suite)
        switch stateOf(id) {
        case .pending, .committed:
            throw APIError(.conflict, "query_replayed", "this signed query was already used; sign a new one (fresh nonce)")
        case .rejected, .unknown:
            break
        }
        // A refused query is not tried again: it would make the node read the ledger for nothing.
        guard !wasRefused(query: id) else {
            throw APIError(.conflict, "query_replayed", "this signed query was refused already; sign a new one (fresh nonce)")
        }
        guard record.reportHeight <= store.height else {
            throw APIError(.conflict, "height_ahead",
                           "reportHeight \(record.reportHeight) is above this node's committed height \(store.height)")
        }
        // Consent first, from the enterprise's consent statements alone: nothing else of its record is read for a
        // query that is refused.
        let consents = try entries(store.subjectTransactions(
            subject, kinds: [TransactionKind.consentGranted.rawValue, TransactionKind.consentRevoked.rawValue],
            throughHeight: store.height))
        let time = max(store.lastHeader?.timeMs ?? consortium.genesis.genesisTimeMs, query.body.timeMs)
        let roles = consortium.institutionRoles[query.body.reporter] ?? []
        do {
            _ = try ConsentRules.authorize(record, requester: query.body.reporter, roles: roles, subject: subject,
                                           at: time, among: consents)
        } catch {
            throw APIError(.forbidden, error.code, error.message)
        }
        // The record goes through the node's one admission (clock, credit and role rules, the reporter's share of
        // the mempool), like any other transaction.
        let results: [Admission]
        do { results = try admit([query], relay: true, origin: .node) } catch {
            throw APIError(.serviceUnavailable, error.code, error.message)
        }
        if case .rejected(let error) = results.first?.state {
            throw APIError(.forbidden, error.code, error.message)
        }
        return (try reportMaterial(subject: subject, height: record.reportHeight), id)
    }

    /// Whether the signed query `id` was never seen here (neither pending, committed nor refused).
    func isFirstUse(query id: Hash32) -> Bool {
        switch stateOf(id) {
        case .pending, .committed: false
        case .rejected, .unknown: !wasRefused(query: id)
        }
    }

    /// Returns once `id` is committed, or false after `timeoutMs` (or when the waiting task is cancelled).
    public nonisolated func waitUntilCommitted(_ id: Hash32, timeoutMs: UInt64) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    // State and height in one step: a commit between two reads would wait for a block too many.
                    let (committed, height) = await self.commitState(of: id)
                    if committed { return true }
                    await self.waitUntilHeight(height + 1)
                }
                return false
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(Int64(clamping: timeoutMs)))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    /// Enterprises with records, in USCC order, after `after`.
    public func enterprises(after: String, limit: Int) throws -> [USCC] {
        try store.enterprises(after: after, limit: limit)
    }
}

extension NodeEngine {
    /// The proof of `material` (`ReportProof`): the header and certificate at its height, the state proof of the
    /// subject's record head there, and every transaction with its audit path and its block's header and certificate.
    public func reportProof(_ material: ReportMaterial) throws -> ReportProof {
        let height = material.asOf.height
        guard height > 0 else {
            throw APIError(.conflict, "nothing_committed", "there is no block to prove a report against yet")
        }
        let suite = consortium.suite
        let hasher = MerkleHasher(suite: suite)
        let asOfRecord = try store.recordIndex(at: height)
        var blocks: [UInt64: ReportProof.CertifiedHeader] = [:]
        var leaves: [UInt64: (record: BlockRecordIndex, leaves: [Hash32])] = [:]
        func proven(_ entry: LedgerEntry) throws -> ReportProof.ProvenTransaction {
            if leaves[entry.height] == nil {
                let record = entry.height == height ? asOfRecord : try store.recordIndex(at: entry.height)
                leaves[entry.height] = (record, record.leafHashes(suite: suite))
                if entry.height != height { blocks[entry.height] = Self.certified(record) }
            }
            let path = try MerkleTree.inclusionProof(index: Int(entry.index), leafHashes: leaves[entry.height]?.leaves ?? [],
                                                     hasher: hasher)
            return ReportProof.ProvenTransaction(transaction: Data(entry.transaction.canonicalBytes).base64EncodedString(),
                                                 height: entry.height, index: Int(entry.index), path: path.map(\.hex),
                                                 personal: entry.transaction.personal.map { Data($0.canonicalBytes).base64EncodedString() })
        }
        let own = try material.own.map(proven)
        let counterparty = try material.counterparty.map(proven)
        return ReportProof(asOf: Self.certified(asOfRecord), state: try store.stateProof(subject: material.subject, atHeight: height),
                           blocks: blocks.sorted { $0.key < $1.key }.map(\.value), transactions: own, counterparty: counterparty)
    }

    static func certified(_ record: BlockRecordIndex) -> ReportProof.CertifiedHeader {
        ReportProof.CertifiedHeader(header: Data(record.header.canonicalBytes).base64EncodedString(),
                                    certificate: Data(record.certificate.canonicalBytes).base64EncodedString())
    }
}
