import XinlianCore
import XinlianCrypto
import XinlianMerkle

/// A record read from a block log or an export file, not yet verified.
struct PendingRecord: Sendable {
    /// The height it must hold: its position in the chain.
    let height: UInt64
    let file: String
    /// Absolute offset of its frame.
    let offset: UInt64
    let payload: [UInt8]

    func fault(_ code: String, _ reason: String) -> AuditFault {
        AuditFault(height: height, file: file, offset: offset, reason: reason, code: code)
    }

    func fault(_ error: VerificationError) -> AuditFault {
        let reason = error.transactionIndex.map { "transaction \($0): \(error.message)" } ?? error.message
        return fault(error.code, reason)
    }
}

/// Records gathered for one concurrent verification pass, bounded in count and bytes.
struct RecordWindow {
    private let blockLimit: Int
    private let byteLimit: Int
    private(set) var records: [PendingRecord] = []
    private var bytes = 0

    init(options: AuditOptions) {
        blockLimit = max(options.windowBlocks, 1)
        byteLimit = max(options.windowBytes, 1)
    }

    /// True once another record should not be added.
    var isFull: Bool { records.count >= blockLimit || bytes >= byteLimit }

    mutating func append(_ record: PendingRecord) {
        records.append(record)
        bytes += record.payload.count
    }

    /// The gathered records, leaving the window empty.
    mutating func drain() -> [PendingRecord] {
        defer {
            records.removeAll(keepingCapacity: true)
            bytes = 0
        }
        return records
    }
}

/// Verifies a chain window by window, in order, keeping what must carry over between windows:
/// the previous hash, the transaction ids seen, the replayed state.
///
/// Per window, decoding, structure and certificate checks, signatures and transaction ids are computed
/// concurrently (they depend only on the record and the previous header's hash); then replay checks and state
/// roots run in chain order, and the first fault in chain order is thrown, exactly as a sequential pass would.
struct ChainChecker {
    /// Transactions per concurrent signature-checking piece.
    static let signatureChunk = 256

    let consortium: Consortium
    let workers: Int
    private(set) var blocks: UInt64 = 0
    private(set) var transactions: UInt64 = 0
    private(set) var head: Hash32
    /// The time of the block at `head` (genesis time before the first): no block may be older than its parent.
    private var headTimeMs: UInt64
    private var seen = TransactionIDSet()
    private var state: StateReplay?

    init(consortium: Consortium, options: AuditOptions) {
        self.consortium = consortium
        workers = max(options.workers, 1)
        head = consortium.genesisHash
        headTimeMs = consortium.genesis.genesisTimeMs
        state = options.checkStateRoots ? StateReplay(suite: consortium.suite) : nil
    }

    var report: AuditReport {
        AuditReport(blocks: blocks, transactions: transactions, height: blocks, head: head)
    }

    /// Verifies `window`, which must continue the chain verified so far.
    mutating func process(_ window: [PendingRecord]) throws(AuditFault) {
        guard !window.isEmpty else { return }
        let decoded = decode(window)
        let plan = WorkPlan(decoded: decoded, first: head, firstTimeMs: headTimeMs)
        let outcomes = check(plan, window: window)
        for position in window.indices {
            try accept(window[position], decoded: decoded[position], outcomes: plan.units(of: position).map { outcomes[$0] })
        }
    }

    private func decode(_ window: [PendingRecord]) -> [Result<DecodedBlock, AuditFault>] {
        let suite = consortium.suite
        return Parallel.map(count: window.count, workers: workers) { position in
            let pending = window[position]
            do throws(DecodingError) {
                let record = try CommittedBlock(canonicalBytes: pending.payload, limit: Limits.recordBytes)
                return .success(DecodedBlock(record: record, hash: record.block.header.hash(suite)))
            } catch {
                return .failure(pending.fault(AuditFaultCode.badEncoding, "\(error)"))
            }
        }
    }

    private func check(_ plan: WorkPlan, window: [PendingRecord]) -> [UnitOutcome] {
        let consortium = consortium
        return Parallel.map(count: plan.units.count, workers: workers) { index in
            let unit = plan.units[index]
            let pending = window[unit.position]
            let record = unit.block.record
            switch unit.work {
            case let .structure(previousHash, previousTimeMs):
                do throws(VerificationError) {
                    try BlockVerifier.checkStructure(record, height: pending.height, previousHash: previousHash,
                                                     previousTimeMs: previousTimeMs, consortium: consortium)
                    return UnitOutcome(fault: nil, ids: [])
                } catch {
                    return UnitOutcome(fault: pending.fault(error), ids: [])
                }
            case let .signatures(range):
                let slice = record.block.transactions[range]
                do throws(VerificationError) {
                    try BlockVerifier.checkSignatures(slice, consortium: consortium)
                    return UnitOutcome(fault: nil, ids: slice.map { $0.id(consortium.suite) })
                } catch {
                    return UnitOutcome(fault: pending.fault(error), ids: [])
                }
            }
        }
    }

    /// The sequential part for one block: report its first fault, else record its ids and state.
    private mutating func accept(_ pending: PendingRecord, decoded: Result<DecodedBlock, AuditFault>,
                                 outcomes: [UnitOutcome]) throws(AuditFault) {
        let block = try decoded.get()
        if let fault = outcomes.lazy.compactMap(\.fault).first { throw fault }
        for (index, id) in outcomes.flatMap(\.ids).enumerated() where !seen.insert(id) {
            throw pending.fault(AuditFaultCode.duplicateTransaction, "transaction \(index): id \(id) occurs earlier in the chain")
        }
        try checkState(pending, block: block.record.block)
        blocks += 1
        transactions += UInt64(block.record.block.transactions.count)
        head = block.hash
        headTimeMs = block.record.block.header.timeMs
    }

    private mutating func checkState(_ pending: PendingRecord, block: Block) throws(AuditFault) {
        guard var replay = state else { return }
        state = nil
        defer { state = replay }
        let root: Hash32
        do throws(SMTError) {
            root = try replay.apply(block.transactions)
        } catch {
            throw pending.fault(AuditFaultCode.stateReplay, "state tree replay failed: \(error)")
        }
        guard root == block.header.stateRoot else {
            throw pending.fault(AuditFaultCode.badStateRoot,
                                "header state root \(block.header.stateRoot) but replaying the records gives \(root)")
        }
    }
}

/// A decoded record and its header hash.
struct DecodedBlock: Sendable {
    let record: CommittedBlock
    let hash: Hash32
}

/// What one concurrent piece found.
struct UnitOutcome: Sendable {
    let fault: AuditFault?
    /// Ids of the transactions it checked, in order.
    let ids: [Hash32]
}

/// The concurrent pieces of a window: per decodable block, its structure check then its signature chunks.
struct WorkPlan: Sendable {
    enum Work: Sendable {
        case structure(previousHash: Hash32, previousTimeMs: UInt64)
        case signatures(Range<Int>)
    }

    struct Unit: Sendable {
        let position: Int
        let block: DecodedBlock
        let work: Work
    }

    private(set) var units: [Unit] = []
    /// Per window position, the range of its units.
    private var ranges: [Range<Int>] = []

    /// Plans `decoded`; `first` is the hash the first block must link to. A block after an undecodable one gets
    /// no units: the earlier fault is reported first anyway.
    init(decoded: [Result<DecodedBlock, AuditFault>], first: Hash32, firstTimeMs: UInt64) {
        var previous: (hash: Hash32, timeMs: UInt64)? = (first, firstTimeMs)
        for (position, outcome) in decoded.enumerated() {
            let start = units.count
            if case let .success(block) = outcome, let (previousHash, previousTimeMs) = previous {
                units.append(Unit(position: position, block: block,
                                  work: .structure(previousHash: previousHash, previousTimeMs: previousTimeMs)))
                let count = block.record.block.transactions.count
                for low in stride(from: 0, to: count, by: ChainChecker.signatureChunk) {
                    let range = low..<min(low + ChainChecker.signatureChunk, count)
                    units.append(Unit(position: position, block: block, work: .signatures(range)))
                }
            }
            previous = (try? outcome.get()).map { ($0.hash, $0.record.block.header.timeMs) }
            ranges.append(start..<units.count)
        }
    }

    func units(of position: Int) -> Range<Int> { ranges[position] }
}
