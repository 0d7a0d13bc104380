import CoreMetrics
import Foundation
import Logging
import Synchronization
import XinlianConsensus
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianNetwork
import XinlianStorage

/// What the engine needs from the peer network (the TCP transport in production, an in-process hub in tests).
public protocol PeerLink: Sendable {
    func broadcast(_ message: WireMessage)
    func send(_ message: WireMessage, to peer: ValidatorID)
    /// Drops the connection and logs `reason`; the peer may come back later.
    func disconnect(_ peer: ValidatorID, reason: String)
}

/// The consensus side of a multi-validator node: the pure core, its journal, and block sync.
struct ConsensusRuntime {
    var core: ConsensusCore
    let journal: ConsensusJournal
    let link: any PeerLink
    /// Prepared state of blocks built or validated at the current height, by block hash.
    var prepared: [Hash32: PreparedState] = [:]
    /// The best height each connected peer has told us about.
    var peerHeights: [ValidatorID: UInt64] = [:]
    /// The outstanding block-sync request, if any.
    var sync: SyncRequest?
    var syncSerial: UInt64 = 0
    /// Equivocations seen (bounded), newest last.
    var evidence: [Equivocation] = []
    /// Set when consensus had to stop (a journal write or a commit failed): the node signs nothing more and says
    /// why in status and the log; a restart (after fixing the cause) resumes from the journal.
    var halted: String?
    /// What peers' proposals and votes must pass before anything of them is kept (shared with the simulator).
    var gate: PeerGate
    /// Messages for the next height taken before this node joined it; fed (journalled first) when it does.
    var awaiting: [ConsensusMessage] = []
    /// Journal bytes of this height spent on peers' proposals (all proposers), and on each validator's votes.
    var journalProposalBytes = 0
    var journalVoteBytes: [ValidatorID: Int] = [:]
    /// Sync requests served per peer in the current one-second window.
    var served: [ValidatorID: (windowMs: UInt64, count: Int)] = [:]
    /// When the next height may start (the genesis block interval after the last commit).
    var earliestStartMs: UInt64 = 0
    var startWakeScheduled = false
    /// Peer messages are journalled while the journal has room; own messages always are.
    var journalFullLogged = false

    struct SyncRequest {
        var peer: ValidatorID
        var fromHeight: UInt64
        var serial: UInt64
    }

    init(core: ConsensusCore, journal: ConsensusJournal, link: any PeerLink, consortium: Consortium) {
        self.core = core
        self.journal = journal
        self.link = link
        self.gate = PeerGate(chainID: consortium.chainID, validators: consortium.validators,
                             parameters: consortium.genesis.parameters)
    }

    static let evidenceLimit = 64
    /// Sync requests one peer may have served per second.
    static let syncServesPerSecond = 50
    /// How often a stalled height re-sends what it holds to every peer (messages lost on a live link).
    static let regossipMs: UInt64 = 1_000
    /// Prepared states kept per height; beyond it only the locked and valid blocks' are kept.
    static let preparedLimit = 16
    /// Journal bytes kept for the peers' proposals of one height (only scheduled proposers', at most
    /// ``messagesPerSlot`` a round, within genesis's block limits); past it, further proposals are dropped.
    static let journalPeerBytesLimit = 128 * 1024 * 1024
    /// Journal bytes kept for one validator's votes at one height (about 4,000 rounds of votes): a validator past
    /// it is not heard at this height; the others are untouched.
    static let journalVoteBytesPerValidator = 4 * 1024 * 1024
    /// Journal bytes always left for this node's own entries (its blocks, votes, timeouts and validations).
    static let journalOwnBytesReserve = 64 * 1024 * 1024
    /// Pending transactions re-sent per tick while a height stalls (a peer that missed them may be idle).
    static let regossipTransactionsLimit = 256

    /// The journal's hard size: every budget above, so that peers can never crowd out the node's own entries.
    static func journalByteLimit(validators: Int) -> Int {
        journalPeerBytesLimit + validators * journalVoteBytesPerValidator + journalOwnBytesReserve
    }
    /// How long a sync request may go unanswered before another peer is asked.
    static let syncTimeoutMs: UInt64 = 10_000
    /// How long a height may stay undecided before the node warns, and again every such interval.
    static let stallWarningMs: UInt64 = 10_000
}

/// Where consensus stands, for `/v1/status`.
public struct ConsensusStatusReport: Sendable, Codable, Equatable {
    public var height: UInt64
    public var round: UInt32
    public var step: String
    public var lockedRound: UInt32?
    public var peers: [String]
    /// Voting power of this validator plus its connected peers, and the total.
    public var connectedPower: UInt64
    public var totalPower: UInt64
    public var equivocations: Int
    public var syncingFrom: String?
    /// Why consensus stopped on this node, if it did (restart it after fixing the cause).
    public var halted: String?
}

extension NodeEngine {
    /// Starts BFT consensus over `link`: replays the journal of an interrupted height, then runs.
    public func startConsensus(link: any PeerLink, timeouts: TimeoutConfig) throws {
        let configuration = ConsensusConfiguration(chainID: consortium.chainID, suite: consortium.suite,
                                                   localValidator: validatorID, timeouts: timeouts)
        let (journal, records) = try ConsensusJournal.open(path: dataDirectory + "/consensus.journal",
                                                           byteLimit: ConsensusRuntime.journalByteLimit(validators: consortium.validators.members.count),
                                                           recordLimit: JournalEntry.limit)
        consensus = ConsensusRuntime(core: ConsensusCore(configuration: configuration), journal: journal, link: link,
                                     consortium: consortium)
        let next = store.height + 1
        var entries: [JournalEntry] = []
        for (index, bytes) in records.enumerated() {
            do { entries.append(try JournalEntry(canonicalBytes: bytes, limit: JournalEntry.limit)) } catch {
                // Its checksum held, so this is not a torn write: refuse to guess what the node signed.
                throw StorageError.corrupt(file: journal.path, offset: UInt64(index),
                                           reason: "journal record \(index) does not decode (\(error)); move the file aside only if this validator has not signed at height \(store.height + 1)")
            }
        }
        entries = entries.filter { $0.height == next }
        if entries.isEmpty {
            try journal.reset()
            maybeStartNextHeight()
        } else {
            replay(entries, height: next)
            watch(height: next)
            regossipTick(height: next, round: consensus?.core.round ?? 0)
        }
    }

    /// Rebuilds the core's state for `height` from the journal, then carries out what was left undone.
    private func replay(_ entries: [JournalEntry], height: UInt64) {
        guard var runtime = consensus else { return }
        var pending = runtime.core.step(.start(height: height, validators: consortium.validators,
                                               previousBlockHash: store.lastBlockHash))
        for entry in entries {
            let event = entry.event
            // An answer in the journal settles the request it answers.
            switch event {
            case .timeout(let timeout):
                pending.removeAll { if case .scheduleTimeout(timeout, _) = $0 { true } else { false } }
            case .blockBuilt:
                pending.removeAll { if case .buildBlock = $0 { true } else { false } }
            case .blockValidated(let hash, _):
                pending.removeAll { if case .validateBlock(let block) = $0 { block.header.hash(consortium.suite) == hash } else { false } }
            case .signed(let message):
                pending.removeAll { if case .sign(let request) = $0 { request.matches(message) } else { false } }
            case .proposal(let signed, let block):
                // Peers' messages count against their budgets again, so a restart neither forgets them (and takes
                // duplicates) nor lets a peer that had spent its budget start afresh.
                runtime.gate.take(.proposal(signed, block))
                runtime.spend(.proposal(signed, block), bytes: entry.canonicalBytes.count)
            case .vote(let signed):
                runtime.gate.take(.vote(signed))
                runtime.spend(.vote(signed), bytes: entry.canonicalBytes.count)
            default:
                break
            }
            pending += runtime.core.step(event)
        }
        consensus = runtime
        logger.info("consensus journal replayed", metadata: [
            "height": "\(height)", "entries": "\(entries.count)", "round": "\(runtime.core.round)",
            "lockedRound": "\(runtime.core.status.lockedRound.map(String.init) ?? "none")",
        ])
        // Broadcasts are re-sent to each peer as it connects (held messages); everything else still owed is done now.
        let owed = pending.filter {
            switch $0 {
            case .broadcastProposal, .broadcastVote, .evidence: false
            default: true
            }
        }
        run(owed)
    }

    // MARK: Events

    /// One event from the peer network. Signatures of consensus messages were checked by the caller
    /// (``PeerEventPump``), which disconnects peers that send bad ones. Returns true for a proposal or vote that
    /// was taken (a later copy of it is a duplicate); false for one that was not needed now.
    @discardableResult
    public func handle(_ event: NetworkEvent) -> Bool {
        guard consensus != nil, consensus?.halted == nil else { return false }
        switch event {
        case .connected(let peer, let hello):
            connectedPeers.insert(peer)
            metrics.peersConnected.record(Int64(connectedPeers.count))
            noteHeight(hello.height, of: peer)
            for message in heldForGossip() { consensus?.link.send(.consensus(message), to: peer) }
        case .disconnected(let peer, _):
            connectedPeers.remove(peer)
            consensus?.peerHeights[peer] = nil
            metrics.peersConnected.record(Int64(connectedPeers.count))
            if consensus?.sync?.peer == peer { syncEnded() }
        case .message(let peer, let message):
            return receive(message, from: peer)
        }
        return false
    }

    private func receive(_ message: WireMessage, from peer: ValidatorID) -> Bool {
        switch message {
        case .hello:
            break
        case .status(let status):
            noteHeight(status.height, of: peer)
        case .transactions(let transactions):
            admitGossiped(transactions)
        case .consensus(let message):
            return receive(message, from: peer)
        case .syncRequest(let fromHeight, let count):
            serveSync(fromHeight: fromHeight, count: count, to: peer)
        case .syncResponse(let fromHeight, let blocks):
            applySync(fromHeight: fromHeight, blocks: blocks, from: peer)
        }
        return false
    }

    /// A peer's proposal or vote, whose signature the pump checked. In order, before anything is kept: the height
    /// and round must be usable, a proposal must come from the scheduled proposer and respect genesis's block
    /// limits (or the peer is dropped), and its slot must have room (one message per signer, height, round and
    /// step, plus one conflicting one as evidence). Then it is fed to the core (journalled first), or held until
    /// this node joins its height.
    private func receive(_ message: ConsensusMessage, from peer: ValidatorID) -> Bool {
        guard let runtime = consensus, accepts(message, runtime: runtime) else { return false }
        let next = store.height + 1
        let running = runtime.core.phase == .running && runtime.core.height == next
        // A message for a later height is kept only by a core that is deciding the next one (it buffers up to
        // two ahead); otherwise it is not taken, so that its re-gossip is not mistaken for a duplicate.
        guard message.height == next || running else { return false }
        if let reason = runtime.gate.rules.refusal(message) {
            drop(peer, reason: reason)
            return false
        }
        guard runtime.gate.hasRoom(for: message, core: runtime.core) else { return false }
        guard running || message.height > next else {
            // Not yet deciding the next height: keep the message (its slot is taken) until this node joins.
            consensus?.gate.take(message)
            consensus?.awaiting.append(message)
            if consensus?.gate.joinable(next) == true { startHeight(next) }
            // Not "taken" for the pump's duplicate memory: the core may still drop it when the node joins, and a
            // later copy must then be able to come in (the gate refuses copies that are not needed).
            return false
        }
        feed(ConsensusEvent(message), journalSync: false, fromPeer: true)
        consensus?.gate.take(message)
        // Only what the core kept is "taken" for the pump's duplicate memory: a copy of a message the core dropped
        // may still be needed once it has become relevant (``PeerGate/hasRoom(for:core:)``).
        return consensus?.core.holds(message) == true
    }

    /// Whether a peer's proposal or vote can matter: for the next height (or the two after, which the core
    /// buffers) and, at the height being decided, for a round the core keeps. Anything else is dropped before
    /// it is journalled, so a peer cannot fill the journal with messages the core would ignore.
    private func accepts(_ message: ConsensusMessage, runtime: ConsensusRuntime) -> Bool {
        PeerGate.isUsable(message, next: store.height + 1, core: runtime.core)
    }

    /// What a peer may have missed: proposals and votes held for the current height in the current and the
    /// previous round (older rounds cannot change the outcome once a later round has a quorum; the core's
    /// round-skip rule brings a lagging peer forward).
    private func heldForGossip() -> [ConsensusMessage] {
        guard let core = consensus?.core, core.phase == .running else { return [] }
        let oldest = core.round > 0 ? core.round - 1 : 0
        return core.heldMessages.filter { message in
            switch message {
            case .proposal(let signed, _): signed.proposal.round >= oldest
            case .vote(let signed): signed.vote.round >= oldest
            }
        }
    }

    /// While a height stays undecided, re-sends what this node holds every ``ConsensusRuntime/regossipMs``:
    /// a message lost on a live connection (a dropped event, a full queue) is not lost for good.
    private func regossipTick(height: UInt64, round: UInt32) {
        schedule(afterMs: ConsensusRuntime.regossipMs) { engine in await engine.regossip(height: height, round: round) }
    }

    private func regossip(height: UInt64, round: UInt32) {
        guard let runtime = consensus, runtime.halted == nil, runtime.core.phase == .running,
            runtime.core.height == height
        else { return }
        // Votes (small) every tick while the height is undecided; proposals, which carry blocks, only when the
        // round has not moved since the last tick.
        let stalled = runtime.core.round == round
        for message in heldForGossip() {
            if case .proposal = message, !stalled { continue }
            runtime.link.broadcast(.consensus(message))
        }
        // Peers join a height only on its scheduled proposer's proposal or on more than a third of the power; a
        // connected peer not heard from at this height may be idle because it missed the pending transactions (its
        // link was down when they were relayed): it gets them again and joins on its own work. Peers that take part
        // are not sent them (each would verify every signature again, and under load that starves consensus).
        let silent = connectedPeers.subtracting(runtime.gate.starters(of: height)).sorted()
        if stalled, !silent.isEmpty, mempool.count > 0 {
            let pending = mempool.batch(maxCount: ConsensusRuntime.regossipTransactionsLimit,
                                        maxBytes: Int(consortium.genesis.parameters.maxBlockBytes)).map(\.transaction)
            for peer in silent {
                for start in stride(from: 0, to: pending.count, by: WireLimits.transactionsPerFrame) {
                    let chunk = pending[start..<min(start + WireLimits.transactionsPerFrame, pending.count)]
                    runtime.link.send(.transactions(Array(chunk)), to: peer)
                }
            }
        }
        regossipTick(height: height, round: runtime.core.round)
    }

    /// A consensus timer fired.
    public func fire(_ timeout: Timeout) {
        guard let runtime = consensus, runtime.halted == nil, runtime.core.phase == .running,
            timeout.height == runtime.core.height
        else { return }
        feed(.timeout(timeout), journalSync: false, fromPeer: false)
    }

    // MARK: The core's loop

    /// Journals `event`, steps the core, and carries out its actions (which may feed more events).
    /// Nothing reaches the core without being journalled first: a peer's message that cannot be journalled is
    /// dropped (Tendermint tolerates lost messages); an own event that cannot be halts consensus.
    private func feed(_ event: ConsensusEvent, journalSync: Bool, fromPeer: Bool) {
        guard var runtime = consensus, runtime.halted == nil else { return }
        guard journal(event, sync: journalSync, fromPeer: fromPeer, runtime: &runtime) else {
            consensus = runtime
            return
        }
        let actions = runtime.core.step(event)
        consensus = runtime
        run(actions)
    }

    /// Appends `event` to the journal (events outside a running height need none). False when it could not be.
    private func journal(_ event: ConsensusEvent, sync: Bool, fromPeer: Bool, runtime: inout ConsensusRuntime) -> Bool {
        guard runtime.core.phase == .running, let entry = JournalEntry(height: runtime.core.height, event: event) else {
            return true
        }
        let bytes = entry.canonicalBytes
        if fromPeer, let message = ConsensusMessage(event), !runtime.withinBudget(message, bytes: bytes.count) {
            if !runtime.journalFullLogged {
                logger.warning("consensus journal budget spent for this height: further such messages are dropped",
                               metadata: ["height": "\(runtime.core.height)", "signer": "\(PeerGate.Slot(message).signer)"])
                runtime.journalFullLogged = true
            }
            return false
        }
        do {
            try runtime.journal.append(bytes, sync: sync)
            if fromPeer, let message = ConsensusMessage(event) { runtime.spend(message, bytes: bytes.count) }
            return true
        } catch {
            if fromPeer {
                logger.error("consensus journal write failed; dropping a peer's message", metadata: ["error": "\(error)"])
            } else {
                runtime.halted = "consensus journal write failed: \(error)"
                logger.critical("consensus halted: the journal cannot be written", metadata: ["error": "\(error)"])
            }
            return false
        }
    }

    /// Stops consensus on this node (it signs nothing more) and says why.
    private func halt(_ reason: String) {
        consensus?.halted = reason
        logger.critical("consensus halted", metadata: ["reason": "\(reason)"])
    }

    private func run(_ initial: [ConsensusAction]) {
        var queue = initial[...]
        while let action = queue.popFirst() {
            guard let runtime = consensus, runtime.halted == nil else { return }
            switch action {
            case .buildBlock(let height, let round):
                if let block = buildBlock(height: height, round: round) {
                    feed(.blockBuilt(block), journalSync: false, fromPeer: false)
                }
            case .validateBlock(let block):
                let hash = block.header.hash(consortium.suite)
                feed(.blockValidated(hash: hash, valid: validate(block, hash: hash)), journalSync: false, fromPeer: false)
            case .sign(let request):
                // Persist, then sign: the journal (everything that led here) and the double-sign guard are on
                // disk before the signature exists; broadcast comes after, as the core's next action.
                do {
                    try runtime.journal.sync()
                } catch {
                    halt("consensus journal fsync failed before signing: \(error)")
                    return
                }
                do {
                    let signature = try signer.sign(request.signingBytes, height: request.height, round: request.round,
                                                    step: SignerState.Step(rawValue: request.step.rawValue) ?? .precommit)
                    let message: SignedMessage = switch request {
                    case .proposal(let proposal): .proposal(SignedProposal(proposal: proposal, signature: signature))
                    case .vote(let vote): .vote(SignedVote(vote: vote, signature: signature))
                    }
                    feed(.signed(message), journalSync: true, fromPeer: false)
                } catch {
                    logger.warning("refused to sign", metadata: [
                        "height": "\(request.height)", "round": "\(request.round)", "step": "\(request.step)",
                        "reason": "\(error)",
                    ])
                }
            case .broadcastProposal(let signed, let block):
                runtime.link.broadcast(.consensus(.proposal(signed, block)))
            case .broadcastVote(let signed):
                runtime.link.broadcast(.consensus(.vote(signed)))
            case .scheduleTimeout(let timeout, let durationMs):
                metrics.consensusRound.record(Int64(timeout.round))
                schedule(afterMs: durationMs) { engine in await engine.fire(timeout) }
            case .commit(let block, let certificate):
                commitDecided(block, certificate)
            case .evidence(let equivocation):
                recordEvidence(equivocation)
            }
        }
    }

    /// Runs `body` on this engine after `ms` milliseconds (timers are never cancelled; stale ones are ignored).
    private nonisolated func schedule(afterMs ms: UInt64, _ body: @escaping @Sendable (NodeEngine) async -> Void) {
        Task { [weak self] in
            try? await Task.sleep(for: .milliseconds(Int64(clamping: ms)))
            guard let self else { return }
            await body(self)
        }
    }

    // MARK: Blocks

    private func buildBlock(height: UInt64, round: UInt32) -> Block? {
        guard height == store.height + 1 else { return nil }
        let parameters = consortium.genesis.parameters
        let blockTime = max(now(), store.lastHeader?.timeMs ?? consortium.genesis.genesisTimeMs)
        // A transaction dated past the block's time plus the skew (this node's clock stepped back since it was
        // admitted) would make every validator refuse the block: it waits in the mempool for a later block.
        let latest = TransactionRules.latestTimeMs(clockMs: blockTime)
        let entries = mempool.batch(maxCount: Int(parameters.maxBlockTransactions), maxBytes: Int(parameters.maxBlockBytes))
            .filter { $0.transaction.body.timeMs <= latest }
        var transactions = entries.map(\.transaction)
        // What other validators would refuse (a reference that no longer resolves) leaves the mempool now.
        let failures = creditFailures(transactions)
        if !failures.isEmpty {
            let refused = failures.keys.map { entries[$0].id }
            for index in failures.keys.sorted() { recordRejection(entries[index].id, failures[index] ?? VerificationError(code: "invalid", message: "")) }
            mempool.remove(refused)
            transactions = entries.indices.filter { failures[$0] == nil }.map { entries[$0].transaction }
        }
        do {
            let prepared = try store.prepareState(transactions)
            let header = BlockHeader(
                chainID: consortium.chainID, height: height, timeMs: blockTime,
                previousHash: store.lastBlockHash,
                transactionsRoot: Block.transactionsRoot(transactions, suite: consortium.suite),
                stateRoot: prepared.stateRoot, validatorSetHash: consortium.validators.hash, proposer: validatorID,
                transactionCount: UInt32(transactions.count))
            remember(prepared, for: header.hash(consortium.suite))
            return Block(header: header, transactions: transactions)
        } catch {
            logger.error("building a block failed", metadata: ["height": "\(height)", "round": "\(round)", "error": "\(error)"])
            return nil
        }
    }

    /// Everything a validator checks before prevoting for a proposed block.
    private func validate(_ block: Block, hash: Hash32) -> Bool {
        do {
            try BlockVerifier.checkBlock(block, height: store.height + 1, previousHash: store.lastBlockHash,
                                         previousTimeMs: store.lastHeader?.timeMs ?? consortium.genesis.genesisTimeMs,
                                         consortium: consortium)
            let header = block.header
            let (latest, overflow) = now().addingReportingOverflow(Self.clockSkewLimitMs)
            guard overflow || header.timeMs <= latest else {
                throw VerificationError(code: "time_in_future", message: "block time is ahead of this node's clock")
            }
            try checkTransactions(block.transactions)
            if let (index, failure) = creditFailures(block.transactions).min(by: { $0.key < $1.key }) {
                throw VerificationError(code: failure.code, message: "transaction \(index): \(failure.message)",
                                        transactionIndex: index)
            }
            let prepared = try store.prepareState(block.transactions)
            guard prepared.stateRoot == header.stateRoot else {
                throw VerificationError(code: "bad_state_root", message: "state root does not match the transactions")
            }
            remember(prepared, for: hash)
            return true
        } catch {
            logger.warning("proposed block refused", metadata: [
                "height": "\(block.header.height)", "proposer": "\(block.header.proposer)", "reason": "\(error)",
            ])
            return false
        }
    }

    /// Keeps a block's prepared state for its commit, bounded: past the limit only the locked and valid blocks'
    /// are kept (a commit of another recomputes it).
    private func remember(_ prepared: PreparedState, for hash: Hash32) {
        guard let runtime = consensus else { return }
        if runtime.prepared.count >= ConsensusRuntime.preparedLimit {
            let keep: Set<Hash32> = Set([runtime.core.status.lockedBlockHash, runtime.core.status.validBlockHash].compactMap { $0 })
            consensus?.prepared = runtime.prepared.filter { keep.contains($0.key) }
        }
        consensus?.prepared[hash] = prepared
    }

    /// Signatures, uniqueness and not-yet-committed for a block's transactions.
    ///
    /// A transaction identical to one in the mempool (body *and* signature: the id leaves the signature out)
    /// was fully checked when it was admitted, so its signature is not verified a second time.
    private func checkTransactions(_ transactions: [Transaction]) throws {
        let ids = transactions.map { $0.id(consortium.suite) }
        for (index, transaction) in transactions.enumerated() where mempool.transaction(ids[index]) != transaction {
            try TransactionRules.check(transaction, consortium: consortium, index: index)
        }
        guard Set(ids).count == ids.count else {
            throw VerificationError(code: "duplicate_transaction", message: "a transaction appears twice in the block")
        }
        for (index, id) in ids.enumerated() where try store.contains(id) {
            throw VerificationError(code: "duplicate_transaction", message: "transaction \(id) is already committed",
                                    transactionIndex: index)
        }
    }

    /// The credit model's rules for each transaction of a block, in order: references resolve to transactions
    /// earlier in the block or committed (never to pending ones). Refused transactions are not referable.
    private func creditFailures(_ transactions: [Transaction]) -> [Int: VerificationError] {
        var earlier: [Hash32: Transaction] = [:]
        var failures: [Int: VerificationError] = [:]
        for (index, transaction) in transactions.enumerated() {
            let roles = consortium.institutionRoles[transaction.body.reporter] ?? []
            do {
                try CreditRules.check(transaction: transaction, roles: roles, referenced: { id in
                    earlier[id] ?? committedTransaction(id)
                }, origin: .node)
                earlier[transaction.id(consortium.suite)] = transaction
            } catch {
                failures[index] = VerificationError(code: error.code, message: error.description, transactionIndex: index)
            }
        }
        return failures
    }

    private func commitDecided(_ block: Block, _ certificate: CommitCertificate) {
        let hash = block.header.hash(consortium.suite)
        let record = CommittedBlock(block: block, certificate: certificate)
        do {
            let prepared = try consensus?.prepared[hash] ?? store.prepareState(block.transactions)
            try commit(record, prepared: prepared, signaturesChecked: consensus?.prepared[hash] != nil)
        } catch {
            // The journal is kept: after the cause is fixed, a restart replays it and commits (or syncs) again.
            halt("committing decided block \(block.header.height) failed: \(error)")
            return
        }
        afterCommit()
    }

    /// Bookkeeping once the ledger grew (by consensus or by sync): clear the height, then wait for the next.
    private func afterCommit() {
        guard consensus != nil else { return }
        consensus?.prepared = [:]
        consensus?.pruneCommitted(through: store.height)
        do { try consensus?.journal.reset() } catch {
            logger.error("resetting the consensus journal failed", metadata: ["error": "\(error)"])
        }
        tip.withLock { $0 = PeerStatus(height: store.height, lastBlockHash: store.lastBlockHash) }
        consensus?.earliestStartMs = now() &+ consortium.genesis.parameters.blockIntervalMs
        consensus?.link.broadcast(.status(PeerStatus(height: store.height, lastBlockHash: store.lastBlockHash)))
        if let core = consensus?.core, core.phase == .running, core.height <= store.height {
            // Block sync overtook the height the core was deciding: move it to the next height at once, so that
            // its stale timers and votes stop and what it buffered for the next height is used.
            startHeight(store.height + 1)
        } else {
            maybeStartNextHeight()
        }
    }

    // MARK: Starting heights

    /// Starts the next height when there is something to decide: pending transactions, a heartbeat due, or a
    /// peer that already started it (a proposal or vote for it arrived, possibly before this node committed the
    /// height before). An idle consortium signs nothing.
    func maybeStartNextHeight() {
        guard let runtime = consensus, runtime.halted == nil else { return }
        let next = store.height + 1
        guard runtime.core.phase == .idle || runtime.core.height < next else { return }
        let heartbeat = consortium.genesis.parameters.heartbeatIntervalMs
        let heartbeatDue = heartbeat > 0 && now() >= lastBlockProducedMs &+ heartbeat
        guard mempool.count > 0 || heartbeatDue || runtime.gate.joinable(next) else {
            if heartbeat > 0 { scheduleStartWake(afterMs: heartbeat) }
            return
        }
        let current = now()
        if current < runtime.earliestStartMs {
            scheduleStartWake(afterMs: runtime.earliestStartMs - current)
            return
        }
        startHeight(next)
    }

    private func scheduleStartWake(afterMs ms: UInt64) {
        guard consensus?.startWakeScheduled == false else { return }
        consensus?.startWakeScheduled = true
        schedule(afterMs: ms) { engine in await engine.startWake() }
    }

    private func startWake() {
        consensus?.startWakeScheduled = false
        maybeStartNextHeight()
    }

    private func startHeight(_ height: UInt64) {
        guard let runtime = consensus, runtime.halted == nil, runtime.core.phase == .idle || runtime.core.height < height,
            height == store.height + 1
        else { return }
        do { try runtime.journal.reset() } catch {
            halt("resetting the consensus journal failed: \(error)")
            return
        }
        // Messages the core buffered for this height go through the journal like any other peer message.
        let buffered = consensus?.core.takeBuffered(height: height) ?? []
        let awaiting = consensus?.awaiting.filter { $0.height == height } ?? []
        consensus?.awaiting = []
        feed(.start(height: height, validators: consortium.validators, previousBlockHash: store.lastBlockHash),
             journalSync: false, fromPeer: false)
        for message in buffered + awaiting {
            feed(ConsensusEvent(message), journalSync: false, fromPeer: true)
        }
        watch(height: height)
        regossipTick(height: height, round: 0)
    }

    /// Every `stallWarningMs` while a height stays undecided, says why in the log.
    private func watch(height: UInt64) {
        schedule(afterMs: ConsensusRuntime.stallWarningMs) { engine in await engine.checkProgress(height: height) }
    }

    private func checkProgress(height: UInt64) {
        guard let runtime = consensus, runtime.core.phase == .running, runtime.core.height == height,
            store.height + 1 == height
        else { return }
        warnStalled(runtime)
        watch(height: height)
    }

    private func warnStalled(_ runtime: ConsensusRuntime) {
        let report = consensusReport()
        logger.warning("no progress: this height is undecided; a commit needs precommits from more than two thirds of the voting power", metadata: [
            "height": "\(runtime.core.height)", "round": "\(runtime.core.round)",
            "connectedPower": "\(report.connectedPower)", "totalPower": "\(report.totalPower)",
            "peers": "\(report.peers.joined(separator: ","))",
        ])
    }

    // MARK: Transactions from peers

    /// Transactions a peer forwarded (already signature-checked by the pump): admitted one by one, not forwarded again.
    private func admitGossiped(_ transactions: [Transaction]) {
        for transaction in transactions {
            _ = try? admit([transaction], relay: false, origin: .node)
        }
    }

    // MARK: Block sync

    private func noteHeight(_ height: UInt64, of peer: ValidatorID) {
        let known = consensus?.peerHeights[peer] ?? 0
        consensus?.peerHeights[peer] = max(height, known)
        requestSyncIfBehind()
    }

    /// Asks a peer that claims a height above ours for the blocks we lack. Of those peers, the one with the
    /// lowest claim is asked (an honest peer is usually just ahead; a peer inflating its height is then asked
    /// only when nobody else is ahead). A block with its certificate proves itself, so one honest peer is
    /// enough; a peer that claims heights it cannot serve, or serves a forged block, is disconnected.
    private func requestSyncIfBehind() {
        guard var runtime = consensus, runtime.halted == nil, runtime.sync == nil else { return }
        let ours = store.height
        guard let (peer, target) = runtime.peerHeights.filter({ $0.value > ours && connectedPeers.contains($0.key) })
                .min(by: { $0.value < $1.value || ($0.value == $1.value && $0.key < $1.key) })
        else { return }
        runtime.syncSerial += 1
        let serial = runtime.syncSerial
        runtime.sync = ConsensusRuntime.SyncRequest(peer: peer, fromHeight: ours + 1, serial: serial)
        consensus = runtime
        let count = UInt32(min(UInt64(WireLimits.syncBlocksPerRequest), target - ours))
        logger.info("behind a peer: requesting blocks", metadata: [
            "peer": "\(peer)", "from": "\(ours + 1)", "count": "\(count)", "peerHeight": "\(target)",
        ])
        runtime.link.send(.syncRequest(fromHeight: ours + 1, count: count), to: peer)
        schedule(afterMs: ConsensusRuntime.syncTimeoutMs) { engine in await engine.syncTimedOut(serial: serial) }
    }

    /// Every way a sync request ends comes here: ask again if still behind, and start the next height if due.
    private func syncEnded() {
        consensus?.sync = nil
        requestSyncIfBehind()
        maybeStartNextHeight()
    }

    private func syncTimedOut(serial: UInt64) {
        guard let sync = consensus?.sync, sync.serial == serial else { return }
        logger.warning("block sync request unanswered; asking again", metadata: ["peer": "\(sync.peer)"])
        consensus?.peerHeights[sync.peer] = nil
        syncEnded()
    }

    /// Sends up to `count` committed blocks from `fromHeight`, within a byte budget (at least one block).
    /// At most ``ConsensusRuntime/syncServesPerSecond`` requests per peer per second are served.
    private func serveSync(fromHeight: UInt64, count: UInt32, to peer: ValidatorID) {
        guard let link = consensus?.link else { return }
        let current = now()
        let window = consensus?.served[peer]
        let served = window.map { current &- $0.windowMs < 1_000 ? $0 : (current, 0) } ?? (current, 0)
        // Over the rate, the request is not served (an honest requester waits for each reply, and retries
        // after its timeout); the engine's thread is not the peer's to spend.
        guard served.1 < ConsensusRuntime.syncServesPerSecond else { return }
        consensus?.served[peer] = (served.0, served.1 + 1)
        var blocks: [CommittedBlock] = []
        var bytes = 0
        var height = fromHeight
        let last = min(store.height, fromHeight &+ UInt64(min(count, UInt32(WireLimits.syncBlocksPerRequest))) &- 1)
        while fromHeight >= 1, height <= last {
            guard let record = try? store.record(at: height) else { break }
            let size = record.canonicalBytes.count
            if !blocks.isEmpty && bytes + size > Self.syncResponseBytesBudget { break }
            blocks.append(record)
            bytes += size
            height += 1
        }
        link.send(.syncResponse(fromHeight: fromHeight, blocks: blocks), to: peer)
    }

    /// Bytes of blocks in one sync reply (one block is always sent, up to the frame limit).
    static let syncResponseBytesBudget = 8 * 1024 * 1024

    /// Verifies and commits synced blocks in order; a forged block or a refusal to serve claimed heights
    /// disconnects the peer. A failure of this node's own storage blames nobody.
    private func applySync(fromHeight: UInt64, blocks: [CommittedBlock], from peer: ValidatorID) {
        guard let sync = consensus?.sync, sync.peer == peer, sync.fromHeight == fromHeight else { return }
        defer { syncEnded() }
        guard fromHeight == store.height + 1 else { return }
        if blocks.isEmpty {
            if (consensus?.peerHeights[peer] ?? 0) >= fromHeight {
                drop(peer, reason: "claimed height \(consensus?.peerHeights[peer] ?? 0) but served no block from \(fromHeight)")
            }
            return
        }
        var applied = 0
        for record in blocks {
            let height = store.height + 1
            do {
                try BlockVerifier.checkStructure(record, height: height, previousHash: store.lastBlockHash,
                                                 previousTimeMs: store.lastHeader?.timeMs ?? consortium.genesis.genesisTimeMs,
                                                 consortium: consortium)
                try checkTransactions(record.block.transactions)
                // A certified block meets the same credit rules as a proposal: a quorum that certified a block
                // breaking them is not followed (the peer is dropped, and this node stays where it is).
                if let (index, failure) = creditFailures(record.block.transactions).min(by: { $0.key < $1.key }) {
                    throw VerificationError(code: failure.code, message: "transaction \(index): \(failure.message)",
                                            transactionIndex: index)
                }
                let prepared = try store.prepareState(record.block.transactions)
                guard prepared.stateRoot == record.block.header.stateRoot else {
                    throw VerificationError(code: "bad_state_root", message: "state root does not match the transactions")
                }
                try commit(record, prepared: prepared, signaturesChecked: true)
                applied += 1
            } catch let error as VerificationError {
                drop(peer, reason: "block sync: block \(height) refused: \(error)")
                break
            } catch {
                logger.error("block sync: applying block \(height) failed here", metadata: ["error": "\(error)"])
                break
            }
        }
        if applied > 0 {
            metrics.blocksSynced.increment(by: Int64(applied))
            logger.info("synced blocks", metadata: ["peer": "\(peer)", "count": "\(applied)", "height": "\(store.height)"])
            afterCommit()
        }
    }

    /// Disconnects a peer that broke the protocol, counting it.
    func drop(_ peer: ValidatorID, reason: String) {
        metrics.peersDropped.increment()
        logger.warning("dropping peer", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
        consensus?.peerHeights[peer] = nil
        consensus?.link.disconnect(peer, reason: reason)
    }

    // MARK: Evidence and status

    private func recordEvidence(_ equivocation: Equivocation) {
        metrics.evidence.increment()
        logger.warning("equivocation: a validator signed two conflicting messages",
                       metadata: ["validator": "\(equivocation.validator)"])
        guard consensus != nil else { return }
        consensus?.evidence.append(equivocation)
        if let count = consensus?.evidence.count, count > ConsensusRuntime.evidenceLimit {
            consensus?.evidence.removeFirst(count - ConsensusRuntime.evidenceLimit)
        }
    }

    /// Equivocations kept, newest last.
    public var equivocations: [Equivocation] { consensus?.evidence ?? [] }

    func consensusReport() -> ConsensusStatusReport {
        let validators = consortium.validators
        let local = validators.member(validatorID)?.power ?? 0
        let connected = connectedPeers.reduce(local) { $0 + (validators.member($1)?.power ?? 0) }
        let core = consensus?.core.status
        return ConsensusStatusReport(
            height: core?.height ?? store.height, round: core?.round ?? 0, step: core.map { "\($0.step)" } ?? "idle",
            lockedRound: core?.lockedRound, peers: connectedPeers.map(\.value).sorted(), connectedPower: connected,
            totalPower: validators.totalPower, equivocations: Int(consensus?.evidence.count ?? 0),
            syncingFrom: consensus?.sync?.peer.value, halted: consensus?.halted)
    }
}

extension SignRequest {
    /// Whether `message` is this request, signed.
    func matches(_ message: SignedMessage) -> Bool {
        switch (self, message) {
        case (.proposal(let proposal), .proposal(let signed)): proposal == signed.proposal
        case (.vote(let vote), .vote(let signed)): vote == signed.vote
        default: false
        }
    }
}

extension ConsensusRuntime {
    /// Whether journalling `bytes` more for `message` stays within its budget at this height.
    func withinBudget(_ message: ConsensusMessage, bytes: Int) -> Bool {
        switch message {
        case .proposal: journalProposalBytes + bytes <= Self.journalPeerBytesLimit
        case .vote(let signed): journalVoteBytes[signed.vote.validator, default: 0] + bytes <= Self.journalVoteBytesPerValidator
        }
    }

    mutating func spend(_ message: ConsensusMessage, bytes: Int) {
        switch message {
        case .proposal: journalProposalBytes += bytes
        case .vote(let signed): journalVoteBytes[signed.vote.validator, default: 0] += bytes
        }
    }

    /// Forgets what concerns heights up to `committed`, and the journal's budgets (the journal was reset).
    mutating func pruneCommitted(through committed: UInt64) {
        gate.pruneCommitted(through: committed)
        awaiting = awaiting.filter { $0.height > committed }
        journalProposalBytes = 0
        journalVoteBytes = [:]
        journalFullLogged = false
    }
}

