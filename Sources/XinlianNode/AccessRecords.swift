import Foundation
import XinlianCore
import XinlianCrypto
import XinlianStorage

/// A refused request from an institution that proved who it is, as regulators and auditors read them
/// (`GET /v1/refusals`).
public struct Refusal: Codable, Sendable, Equatable {
    /// Characters kept of the target and of the message.
    public static let textLimit = 512

    /// Position in this node's refusal record, from 1.
    public var sequence: UInt64
    public var timeMs: UInt64
    public var institution: String
    /// Method and target, e.g. `GET /v1/enterprises/91330106MA27XY123/report?purpose=loanApplication`.
    public var target: String
    public var code: String
    public var message: String
    /// For a report request: the signed query record's id, its subject and purpose.
    public var query: String?
    public var subject: String?
    public var purpose: String?
    /// True when the refusal judged the query itself (consent, role: `403`); such a query is not tried again.
    public var judged: Bool = false
}

/// `GET /v1/refusals`: one page, oldest first.
public struct RefusalsResponse: Codable, Sendable, Equatable {
    public var refusals: [Refusal]
    /// Pass as `after` for the next page; absent on the last page.
    public var next: UInt64?
}

/// The node's durable account of who was refused what, and of signed requests already used, in its data
/// directory (owner-only):
///
/// - `refusals.records`: every refused request whose signer was verified, fsynced before the refusal is answered.
///   The last ``memoryLimit`` are kept in memory for `GET /v1/refusals`; all stay in the file.
/// - `requests.records`: the digest of each signed request (`X-Xinlian-Request`) and when it stops being valid,
///   so that a request is answered once in its whole validity window, across restarts too. Appended without fsync:
///   a crash can forget the last few, each replayable until its window ends (the window is short: requests are
///   valid within 5 minutes of the node's clock). Rewritten without the expired ones when it opens and when it grows.
///
/// Refused report queries are remembered by their ids for their validity window, so a refused signed query cannot
/// be replayed to make the node read the ledger again. Owned by its engine, used only on its executor.
final class AccessRecords {
    private let refusalFile: RecordFile
    private let requestFile: RecordFile
    private(set) var recent: [Refusal] = []
    private(set) var lastSequence: UInt64 = 0
    private var refusedQueries: [Hash32: UInt64] = [:]
    private var refusedQueriesAfterSweep = 1_024
    private var usedRequests: [Hash32: UInt64] = [:]
    /// The used-request file's size after its last compaction: it is compacted again at twice that.
    private var requestFileCompactedBytes = 0

    /// Refusals kept in memory for the endpoint (the file keeps them all).
    static let memoryLimit = 10_000
    /// How long a signed request or query stays valid: its time may be up to the skew either side of the clock.
    static let validityMs = 2 * TransactionRules.clockSkewLimitMs
    /// The used-request file is rewritten without the expired entries when it has doubled since its last
    /// compaction, and never below this size.
    static let requestFileCompactionBytes = 1024 * 1024
    static let recordLimit = 64 * 1024

    init(dataDirectory: String, nowMs: UInt64) throws {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: Int(FileProtection.directoryMode)])
        let (refusalFile, refusals) = try RecordFile.open(path: dataDirectory + "/refusals.records", recordLimit: Self.recordLimit)
        self.refusalFile = refusalFile
        let (requestFile, requests) = try RecordFile.open(path: dataDirectory + "/requests.records", recordLimit: Self.recordLimit)
        self.requestFile = requestFile
        let decoder = JSONDecoder()
        for bytes in refusals {
            guard let refusal = try? decoder.decode(Refusal.self, from: Data(bytes)) else { continue }
            lastSequence = max(lastSequence, refusal.sequence)
            remember(refusal, nowMs: nowMs)
        }
        for bytes in requests where bytes.count == 40 {
            guard let digest = Hash32(bytes: Array(bytes[0..<32])) else { continue }
            let expires = bytes[32..<40].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if expires > nowMs { usedRequests[digest] = expires }
        }
        try compactRequests()
    }

    /// Records a refusal durably (fsync) and returns it with its sequence number. A refused query whose refusal
    /// was a judgement of the query itself (a 403: consent, role) is remembered, so it cannot be tried again.
    @discardableResult
    func recordRefusal(_ refusal: Refusal, nowMs: UInt64) throws -> Refusal {
        var numbered = refusal
        lastSequence += 1
        numbered.sequence = lastSequence
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try refusalFile.append(Array(try encoder.encode(numbered)), sync: true)
        remember(numbered, nowMs: nowMs)
        return numbered
    }

    private func remember(_ refusal: Refusal, nowMs: UInt64) {
        recent.append(refusal)
        // Trimmed in halves, so that keeping the newest costs O(1) a refusal.
        if recent.count >= 2 * Self.memoryLimit { recent.removeFirst(recent.count - Self.memoryLimit) }
        if let text = refusal.query, let id = Hash32(hex: text), refusal.judged {
            let expires = refusal.timeMs &+ Self.validityMs
            if expires > nowMs { refusedQueries[id] = expires }
            if refusedQueries.count >= 2 * refusedQueriesAfterSweep {
                refusedQueries = refusedQueries.filter { $0.value > nowMs }
                refusedQueriesAfterSweep = max(1_024, refusedQueries.count)
            }
        }
    }

    /// Refusals after `sequence`, oldest first, at most `limit`.
    func refusals(after sequence: UInt64, limit: Int) -> [Refusal] {
        Array(recent.lazy.filter { $0.sequence > sequence }.prefix(limit))
    }

    /// Whether the signed query `id` was refused within its validity window.
    func wasRefused(query id: Hash32, nowMs: UInt64) -> Bool {
        guard let expires = refusedQueries[id] else { return false }
        if expires <= nowMs { refusedQueries[id] = nil; return false }
        return true
    }

    /// Marks a signed request (by the digest of its signature) as used until `expiresMs`; false when it was used
    /// already (a replay).
    func use(request digest: Hash32, expiresMs: UInt64, nowMs: UInt64) throws -> Bool {
        if let expires = usedRequests[digest], expires > nowMs { return false }
        usedRequests[digest] = expiresMs
        var record = digest.bytes
        for shift in stride(from: 56, through: 0, by: -8) { record.append(UInt8(truncatingIfNeeded: expiresMs >> UInt64(shift))) }
        try requestFile.append(record, sync: false)
        if requestFile.sizeBytes > max(Self.requestFileCompactionBytes, 2 * requestFileCompactedBytes) {
            usedRequests = usedRequests.filter { $0.value > nowMs }
            try compactRequests()
        }
        return true
    }

    private func compactRequests() throws {
        let records = usedRequests.sorted { $0.key.bytes.lexicographicallyPrecedes($1.key.bytes) }.map { digest, expires in
            var record = digest.bytes
            for shift in stride(from: 56, through: 0, by: -8) { record.append(UInt8(truncatingIfNeeded: expires >> UInt64(shift))) }
            return record
        }
        try requestFile.rewrite(records)
        requestFileCompactedBytes = requestFile.sizeBytes
    }

    func close() {
        refusalFile.close()
        requestFile.close()
    }
}
