import XinlianCore
import XinlianCrypto

/// One validator's replica: the Tendermint core with everything around it that decides what a validator signs
/// and keeps — the journal, the double-sign guard, the peer gate and its per-validator budgets, gossip and
/// re-gossip, block sync (client and server), proposal building and validation, evidence, and when heights start.
///
/// It is deterministic: no I/O, clock or randomness of its own. Inputs are calls (``receive(_:from:)``,
/// ``connected(_:height:)``, ``fire(_:)``, ``transactionsAdmitted(_:relay:)``); what it needs synchronously goes
/// through its ports (``ReplicaJournal``, ``ReplicaSigner``, ``ReplicaLedger``, ``ReplicaClock``); what it wants
/// done is returned as effects (``takeEffects()``). The node runs it with real storage, NIO and the wall clock;
/// the simulator runs the same type with simulated ones (etcd raft's `raft.go`/`node.go` split, TigerBeetle's
/// VOPR running the real replica). A consortium of one validator runs it too: its heights decide at once.
public struct Replica {
    public let consortium: Consortium
    public let validator: ValidatorID
    let journal: any ReplicaJournal
    let signer: any ReplicaSigner
    let ledger: any ReplicaLedger
    let clock: any ReplicaClock
    /// The receiver's frame limit, which sync replies respect.
    let maxFrameBytes: Int
    /// What each validator's messages may take of the journal at one height.
    public let budgets: JournalBudgets

    public private(set) var core: ConsensusCore
    /// What peers' proposals and votes must pass before anything of them is kept.
    public private(set) var gate: PeerGate
    /// Peers connected now.
    public private(set) var connected: Set<ValidatorID> = []
    /// The best height each connected peer has told us about.
    var peerHeights: [ValidatorID: UInt64] = [:]
    /// The outstanding block-sync request, if any.
    var sync: SyncRequest?
    var syncSerial: UInt64 = 0
    /// Requests for personal data this ledger lacks (``requestPersonalData(force:)``).
    var repair = PersonalRepair()
    /// Equivocations seen (bounded), newest last.
    public private(set) var evidence: [Equivocation] = []
    /// Set when consensus had to stop (a journal write or a commit failed): nothing more is signed.
    public private(set) var halted: String?
    /// Messages for the next height taken before this replica joined it; fed (journalled first) when it does.
    var awaiting: [ConsensusMessage] = []
    /// Journal bytes of this height spent on each proposer's proposals, and on each validator's votes.
    var journalProposalBytes: [ValidatorID: Int] = [:]
    var journalVoteBytes: [ValidatorID: Int] = [:]
    var journalFullNoted = false
    /// Sync requests served per peer in the current one-second window.
    var served: [ValidatorID: (windowMs: UInt64, count: Int)] = [:]
    /// When the next height may start (the genesis block interval after the last commit).
    var earliestStartMs: UInt64 = 0
    /// When the earliest `startWake` timer asked for fires, if one is outstanding.
    var startWakeAtMs: UInt64?
    /// When this replica last committed (for the heartbeat).
    public private(set) var lastCommitMs: UInt64 = 0
    var started = false
    var effects: [ReplicaEffect] = []

    struct SyncRequest {
        var peer: ValidatorID
        var fromHeight: UInt64
        var serial: UInt64
    }

    static let evidenceLimit = 64
    /// Sync requests one peer may have served per second.
    public static let syncServesPerSecond = 50
    /// How often a stalled height re-sends what it holds to every peer (messages lost on a live link).
    public static let regossipMs: UInt64 = 1_000
    /// Journal budgets per validator and height. A validator past its budget is not heard at that height; the
    /// others are untouched.
    public struct JournalBudgets: Sendable, Hashable {
        /// One proposer's proposals (only its scheduled rounds, at most ``PeerGate/messagesPerSlot`` a round, within
        /// genesis's block limits).
        public var proposalBytesPerValidator: Int
        /// One validator's votes (about 4,000 rounds of votes by default).
        public var voteBytesPerValidator: Int
        /// Always left for this replica's own entries (its blocks, votes, timeouts and validations).
        public var ownBytesReserve: Int

        public init(proposalBytesPerValidator: Int, voteBytesPerValidator: Int, ownBytesReserve: Int) {
            self.proposalBytesPerValidator = proposalBytesPerValidator
            self.voteBytesPerValidator = voteBytesPerValidator
            self.ownBytesReserve = ownBytesReserve
        }

        public static let standard = JournalBudgets(proposalBytesPerValidator: 64 * 1024 * 1024,
                                                    voteBytesPerValidator: 4 * 1024 * 1024,
                                                    ownBytesReserve: 64 * 1024 * 1024)

        /// The journal's hard size: every budget, so that peers can never crowd out the replica's own entries.
        public func journalByteLimit(validators: Int) -> Int {
            validators * (proposalBytesPerValidator + voteBytesPerValidator) + ownBytesReserve
        }
    }
    /// Pending transactions re-sent per tick while a height stalls (a peer that missed them may be idle).
    public static let regossipTransactionsLimit = 256
    /// How long a sync request may go unanswered before another peer is asked.
    public static let syncTimeoutMs: UInt64 = 10_000
    /// How long a height may stay undecided before the owner is told, and again every such interval.
    public static let stallWarningMs: UInt64 = 10_000
    /// Internal answers (built, validated, signed) chained from one input: a bound, never reached by a correct core.
    static let chainedActionsLimit = 4_096

    public init(consortium: Consortium, validator: ValidatorID, timeouts: TimeoutConfig, journal: any ReplicaJournal,
                signer: any ReplicaSigner, ledger: any ReplicaLedger, clock: any ReplicaClock,
                verifier: any SignatureVerifier = DirectSignatureVerifier(),
                maxFrameBytes: Int = WireLimits.defaultMaxFrameBytes, budgets: JournalBudgets = .standard) {
        self.consortium = consortium
        self.validator = validator
        self.journal = journal
        self.signer = signer
        self.ledger = ledger
        self.clock = clock
        self.maxFrameBytes = maxFrameBytes
        self.budgets = budgets
        core = ConsensusCore(configuration: ConsensusConfiguration(chainID: consortium.chainID, suite: consortium.suite,
                                                                   localValidator: validator, timeouts: timeouts),
                             verifier: verifier)
        gate = PeerGate(chainID: consortium.chainID, validators: consortium.validators,
                        parameters: consortium.genesis.parameters)
    }

    /// What the owner must do now, in order; the list is emptied.
    public mutating func takeEffects() -> [ReplicaEffect] {
        defer { effects = [] }
        return effects
    }

    // MARK: Starting

    /// Starts the replica from its journal's records (as the journal returned them on open): rebuilds the core's
    /// state of an interrupted height and carries out what was left undone, or starts afresh.
    public mutating func start(journalRecords records: [[UInt8]]) throws(ReplicaError) {
        guard !started else { return }
        started = true
        var entries: [JournalEntry] = []
        for (index, bytes) in records.enumerated() {
            do { entries.append(try JournalEntry(canonicalBytes: bytes, limit: JournalEntry.limit)) } catch {
                // Its checksum held, so this is not a torn write: refuse to guess what the validator signed.
                throw ReplicaError(record: index, description: "journal record \(index) does not decode (\(error)); move the file aside only if this validator has not signed at height \(ledger.height + 1)")
            }
        }
        let next = ledger.height + 1
        entries = entries.filter { $0.height == next }
        requestPersonalData()
        if entries.isEmpty {
            do { try journal.reset() } catch { return halt("resetting the consensus journal failed: \(error)") }
            maybeStartNextHeight()
        } else {
            replay(entries, height: next)
            watch(height: next)
            regossipTick(height: next, round: core.round)
        }
    }

    /// Rebuilds the core's state for `height` from the journal, then carries out what was left undone.
    private mutating func replay(_ entries: [JournalEntry], height: UInt64) {
        var pending = core.step(.start(height: height, validators: consortium.validators,
                                       previousBlockHash: ledger.lastBlockHash))
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
            case .proposal, .vote:
                // Peers' messages count against their budgets again, so a restart neither forgets them (and takes
                // duplicates) nor lets a peer that had spent its budget start afresh.
                if let message = ConsensusMessage(event) {
                    gate.take(message)
                    spend(message, bytes: entry.canonicalBytes.count)
                }
            case .start:
                break
            }
            pending += core.step(event)
        }
        note(.replayed(height: height, entries: entries.count, round: core.round, lockedRound: core.status.lockedRound))
        // Broadcasts are re-sent to each peer as it connects (held messages); everything else still owed is done now.
        run(pending.filter {
            switch $0 {
            case .broadcastProposal, .broadcastVote, .evidence: false
            default: true
            }
        })
    }

    // MARK: Inputs

    /// A peer connected and said its height: it gets what is held for the current height.
    public mutating func connected(_ peer: ValidatorID, height: UInt64) {
        connected.insert(peer)
        guard halted == nil else { return }
        noteHeight(height, of: peer)
        personalRepairConnected(peer)
        for message in heldForGossip() { effects.append(.send(.consensus(message), to: peer)) }
    }

    public mutating func disconnected(_ peer: ValidatorID) {
        connected.remove(peer)
        peerHeights[peer] = nil
        if sync?.peer == peer, halted == nil { syncEnded() }
        if repair.outstanding?.peer == peer, halted == nil { personalRepairUnanswered() }
    }

    /// One message from a peer. Signatures of proposals, votes and transactions may have been checked by the
    /// owner already (the node does so off its engine's thread); the core checks consensus signatures again.
    /// Returns true for a proposal or vote that was kept (a later copy is a duplicate).
    @discardableResult
    public mutating func receive(_ message: WireMessage, from peer: ValidatorID) -> Bool {
        guard started, halted == nil else { return false }
        switch message {
        case .hello:
            break
        case .status(let status):
            noteHeight(status.height, of: peer)
        case .transactions(let transactions):
            // A statement forwarded with personal data its reporter did not commit to is the sender's forgery: it
            // must not get the reporter's statement recorded as refused.
            guard transactions.allSatisfy({ $0.carriesMatchingPersonalData(consortium.suite) }) else {
                drop(peer, reason: "gossiped a transaction with personal data that does not match its commitment")
                return false
            }
            if ledger.admitGossiped(transactions) > 0 { maybeStartNextHeight() }
        case .consensus(let message):
            return receive(message, from: peer)
        case .syncRequest(let fromHeight, let count):
            serveSync(fromHeight: fromHeight, count: count, to: peer)
        case .syncResponse(let fromHeight, let blocks):
            if let asked = repair.outstanding, asked.peer == peer, asked.fromHeight == fromHeight {
                applyPersonalData(blocks, fromHeight: fromHeight, from: peer)
            }
            applySync(fromHeight: fromHeight, blocks: blocks, from: peer)
        }
        return false
    }

    /// Transactions admitted through the API (or the node's own query records): relayed once to every peer when
    /// `relay`, and the next height starts if it was waiting for work.
    public mutating func transactionsAdmitted(_ transactions: [Transaction], relay: Bool) {
        guard started, halted == nil, !transactions.isEmpty else { return }
        if relay {
            for start in stride(from: 0, to: transactions.count, by: WireLimits.transactionsPerFrame) {
                let end = min(start + WireLimits.transactionsPerFrame, transactions.count)
                effects.append(.broadcast(.transactions(Array(transactions[start..<end]))))
            }
        }
        maybeStartNextHeight()
    }

    /// A timer asked for earlier fired.
    public mutating func fire(_ timer: ReplicaTimer) {
        guard started, halted == nil else { return }
        switch timer {
        case .consensus(let timeout):
            guard core.phase == .running, timeout.height == core.height else { return }
            feed(.timeout(timeout), journalSync: false, fromPeer: false)
        case .regossip(let height, let round):
            regossip(height: height, round: round)
        case .startWake:
            // Forgotten on any wake (a later one may still be pending; another wake is harmless, a missed one is not).
            startWakeAtMs = nil
            maybeStartNextHeight()
        case .stallCheck(let height):
            guard core.phase == .running, core.height == height, ledger.height + 1 == height else { return }
            note(.stalled(statusReport()))
            watch(height: height)
        case .syncTimeout(let serial):
            guard let sync, sync.serial == serial else { return }
            note(.syncUnanswered(peer: sync.peer))
            peerHeights[sync.peer] = nil
            syncEnded()
        case .personalRepair(let serial):
            guard serial == repair.serial else { return }
            if repair.outstanding != nil { personalRepairUnanswered() } else { requestPersonalData(force: true) }
        }
    }

    // MARK: Peers' proposals and votes

    /// In order, before anything is kept: the height and round must be usable, the message must pass the gate's
    /// rules (or the peer is dropped), and its slot must have room. Then it is fed to the core (journalled first),
    /// or held until this replica joins its height.
    private mutating func receive(_ message: ConsensusMessage, from peer: ValidatorID) -> Bool {
        let next = ledger.height + 1
        guard PeerGate.isUsable(message, next: next, core: core) else {
            if message.height < next { note(.stale(signer: PeerGate.Slot(message).signer, height: message.height)) }
            return false
        }
        let running = core.phase == .running && core.height == next
        // A message for a later height is kept only by a core that is deciding the next one (it buffers up to
        // two ahead); otherwise it is not taken, so that its re-gossip is not mistaken for a duplicate.
        guard message.height == next || running else { return false }
        if let reason = gate.rules.refusal(message) {
            note(.refused(culprit: PeerGate.Slot(message).signer, reason: reason))
            drop(peer, reason: reason)
            return false
        }
        // Personal data the proposer did not sign is the sender's forgery: dropped before it can take the slot (the
        // genuine copy, equal but for that data, must still come in).
        if case .proposal(let signed, let block) = message, !signed.proposal.carriesSignedPersonalData(block, suite: consortium.suite) {
            let reason = "proposal at height \(signed.proposal.height) carries personal data its proposer did not sign"
            drop(peer, reason: reason)
            return false
        }
        guard gate.hasRoom(for: message, core: core) else { return false }
        guard running || message.height > next else {
            // Not yet deciding the next height: keep the message (its slot is taken) until this replica joins.
            gate.take(message)
            awaiting.append(message)
            if gate.joinable(next) { startHeight(next) }
            // Not "taken" for the owner's duplicate memory: the core may still drop it when the replica joins, and
            // a later copy must then be able to come in (the gate refuses copies that are not needed).
            return false
        }
        feed(ConsensusEvent(message), journalSync: false, fromPeer: true)
        gate.take(message)
        // Only what the core kept is "taken": a copy of a message the core dropped may still be needed once it
        // has become relevant (``PeerGate/hasRoom(for:core:)``).
        return core.holds(message)
    }

    /// What a peer may have missed: every vote held for the current height (small, and the proof of lock a
    /// proposal names may be in any round the core keeps), and the proposals (which carry blocks) of the current
    /// and the previous round and of this replica's valid round. Re-sending only the last two rounds' votes let a
    /// lock split outlast every round: nodes locked on a value proposed with its proof-of-lock round never received
    /// that round's prevotes once the network healed (the simulator's `voteFlooder`, seed 106974).
    func heldForGossip() -> [ConsensusMessage] {
        guard core.phase == .running else { return [] }
        let oldest = core.round > 0 ? core.round - 1 : 0
        let valid = core.status.validRound
        return core.heldMessages.filter { message in
            switch message {
            case .proposal(let signed, _): signed.proposal.round >= oldest || signed.proposal.round == valid
            case .vote: true
            }
        }
    }

    private mutating func regossipTick(height: UInt64, round: UInt32) {
        effects.append(.schedule(.regossip(height: height, round: round), afterMs: Self.regossipMs))
    }

    /// While a height stays undecided, re-sends what this replica holds every ``regossipMs``: a message lost on a
    /// live connection (a dropped event, a full queue) is not lost for good.
    private mutating func regossip(height: UInt64, round: UInt32) {
        guard core.phase == .running, core.height == height else { return }
        // Votes (small) every tick while the height is undecided; proposals, which carry blocks, only when the
        // round has not moved since the last tick.
        let stalled = core.round == round
        for message in heldForGossip() {
            if case .proposal = message, !stalled { continue }
            effects.append(.broadcast(.consensus(message)))
        }
        // Peers join a height only on its scheduled proposer's proposal or on more than a third of the power; a
        // connected peer not heard from at this height may be idle because it missed the pending transactions: it
        // gets them again and joins on its own work. Peers that take part are not sent them (each would verify
        // every signature again, and under load that starves consensus).
        let silent = connected.subtracting(gate.starters(of: height)).sorted()
        if stalled, !silent.isEmpty, ledger.pendingCount > 0 {
            let pending = ledger.pending(maxCount: Self.regossipTransactionsLimit,
                                         maxBytes: Int(consortium.genesis.parameters.maxBlockBytes))
            for peer in silent {
                for start in stride(from: 0, to: pending.count, by: WireLimits.transactionsPerFrame) {
                    let chunk = pending[start..<min(start + WireLimits.transactionsPerFrame, pending.count)]
                    effects.append(.send(.transactions(Array(chunk)), to: peer))
                }
            }
        }
        regossipTick(height: height, round: core.round)
    }

    // MARK: The core's loop

    /// Journals `event`, steps the core, and carries out its actions (which may feed more events).
    /// Nothing reaches the core without being journalled first: a peer's message that cannot be journalled is
    /// dropped (Tendermint tolerates lost messages); an own event that cannot be halts consensus.
    private mutating func feed(_ event: ConsensusEvent, journalSync: Bool, fromPeer: Bool) {
        guard halted == nil, journalled(event, sync: journalSync, fromPeer: fromPeer) else { return }
        run(core.step(event))
    }

    /// Appends `event` to the journal (events outside a running height need none). False when it could not be.
    private mutating func journalled(_ event: ConsensusEvent, sync: Bool, fromPeer: Bool) -> Bool {
        guard core.phase == .running, let entry = JournalEntry(height: core.height, event: event) else { return true }
        let bytes = entry.canonicalBytes
        let message = fromPeer ? ConsensusMessage(event) : nil
        if let message, !withinBudget(message, bytes: bytes.count) {
            if !journalFullNoted {
                note(.journalBudgetSpent(height: core.height, signer: PeerGate.Slot(message).signer))
                journalFullNoted = true
            }
            return false
        }
        do {
            try journal.append(bytes, sync: sync)
            if let message { spend(message, bytes: bytes.count) }
            return true
        } catch {
            if fromPeer {
                note(.journalWriteFailed(error: "\(error)"))
            } else {
                halt("consensus journal write failed: \(error)")
            }
            return false
        }
    }

    /// Stops consensus on this replica (it signs nothing more) and says why.
    private mutating func halt(_ reason: String) {
        guard halted == nil else { return }
        halted = reason
        note(.halted(reason: reason))
    }

    private mutating func run(_ initial: [ConsensusAction]) {
        var queue = initial[...]
        var done = 0
        while let action = queue.popFirst(), halted == nil {
            done += 1
            guard done <= Self.chainedActionsLimit else {
                return halt("the consensus core asked for more than \(Self.chainedActionsLimit) actions after one input")
            }
            switch action {
            case .buildBlock(let height, let round):
                if let block = buildBlock(height: height, round: round) {
                    feed(.blockBuilt(block), journalSync: false, fromPeer: false)
                }
            case .validateBlock(let block):
                let hash = block.header.hash(consortium.suite)
                feed(.blockValidated(hash: hash, valid: validate(block, hash: hash)), journalSync: false, fromPeer: false)
            case .sign(let request):
                sign(request)
            case .broadcastProposal(let signed, let block):
                effects.append(.broadcast(.consensus(.proposal(signed, block))))
            case .broadcastVote(let signed):
                effects.append(.broadcast(.consensus(.vote(signed))))
            case .scheduleTimeout(let timeout, let durationMs):
                effects.append(.schedule(.consensus(timeout), afterMs: durationMs))
            case .commit(let block, let certificate):
                commitDecided(CommittedBlock(block: block, certificate: certificate))
            case .evidence(let equivocation):
                recordEvidence(equivocation)
            }
        }
    }

    /// Persist, then sign: the journal (everything that led here) and the double-sign guard are on disk before the
    /// signature exists; broadcast comes after, as the core's next action.
    private mutating func sign(_ request: SignRequest) {
        do { try journal.sync() } catch {
            return halt("consensus journal fsync failed before signing: \(error)")
        }
        let signature: [UInt8]
        do { signature = try signer.sign(request) } catch let refusal as SignerRefusal {
            note(.signRefused(request, reason: refusal.description))
            // With others, their votes move the round on; a validator that is a quorum alone cannot, and would wait
            // silently for ever.
            if consortium.validators.isQuorum(consortium.validators.member(validator)?.power ?? 0) {
                halt("the double-sign guard refused to sign at height \(request.height) round \(request.round) \(request.step) (\(refusal)), and this validator alone is a quorum: restore consensus.journal from before the crash, or move signer-state.json aside only if no other copy of this validator ever signed")
            }
            return
        } catch {
            return halt("signing failed: the double-sign guard could not record its position: \(error)")
        }
        let message: SignedMessage = switch request {
        case .proposal(let proposal): .proposal(SignedProposal(proposal: proposal, signature: signature))
        case .vote(let vote): .vote(SignedVote(vote: vote, signature: signature))
        }
        note(.signed(message))
        feed(.signed(message), journalSync: true, fromPeer: false)
    }

    // MARK: Blocks

    private mutating func buildBlock(height: UInt64, round: UInt32) -> Block? {
        guard height == ledger.height + 1 else { return nil }
        // The ledger logs why a block could not be built; the core then proposes nothing this round.
        return ledger.buildBlock(height: height, timeMs: max(clock.nowMs, ledger.lastBlockTimeMs), proposer: validator)
    }

    /// Everything a validator checks before prevoting for a proposed block: the ledger's checks, and a block time
    /// not ahead of this replica's clock by more than the skew allowed.
    private mutating func validate(_ block: Block, hash: Hash32) -> Bool {
        do throws(VerificationError) {
            let (latest, overflow) = clock.nowMs.addingReportingOverflow(TransactionRules.clockSkewLimitMs)
            guard overflow || block.header.timeMs <= latest else {
                throw VerificationError(code: "time_in_future", message: "block time is ahead of this node's clock")
            }
            try ledger.validate(block, hash: hash)
            return true
        } catch {
            note(.proposalRefused(proposer: block.header.proposer, height: block.header.height, reason: "\(error)"))
            return false
        }
    }

    private mutating func commitDecided(_ record: CommittedBlock) {
        do { try ledger.commit(record) } catch {
            // The journal is kept: after the cause is fixed, a restart replays it and commits (or syncs) again.
            return halt("committing decided block \(record.block.header.height) failed: \(error)")
        }
        note(.committed(record, syncedFrom: nil))
        afterCommit()
    }

    /// Bookkeeping once the ledger grew (by consensus or by sync): clear the height, then wait for the next.
    private mutating func afterCommit() {
        let height = ledger.height
        gate.pruneCommitted(through: height)
        awaiting = awaiting.filter { $0.height > height }
        journalProposalBytes = [:]
        journalVoteBytes = [:]
        journalFullNoted = false
        do { try journal.reset() } catch { return halt("resetting the consensus journal failed: \(error)") }
        let now = clock.nowMs
        lastCommitMs = now
        earliestStartMs = now &+ consortium.genesis.parameters.blockIntervalMs
        effects.append(.broadcast(.status(PeerStatus(height: height, lastBlockHash: ledger.lastBlockHash))))
        requestPersonalData()
        if core.phase == .running, core.height <= height {
            // Block sync overtook the height the core was deciding: move it to the next height at once, so that
            // its stale timers and votes stop and what it buffered for the next height is used.
            startHeight(height + 1)
        } else {
            // The next height starts from a timer, never from within this commit: a validator that decides alone
            // would otherwise commit a whole backlog in one ever deeper call.
            scheduleStartWake(afterMs: consortium.genesis.parameters.blockIntervalMs)
        }
    }

    // MARK: Starting heights

    /// Starts the next height when there is something to decide: pending transactions, a heartbeat due, or peers
    /// that already started it (its scheduled proposer, or more than a third of the power). An idle consortium
    /// signs nothing.
    mutating func maybeStartNextHeight() {
        guard started, halted == nil else { return }
        let next = ledger.height + 1
        guard core.phase == .idle || core.height < next else { return }
        let now = clock.nowMs
        let heartbeat = consortium.genesis.parameters.heartbeatIntervalMs
        let heartbeatDue = heartbeat > 0 && now >= lastCommitMs &+ heartbeat
        guard ledger.pendingCount > 0 || heartbeatDue || gate.joinable(next) else {
            if heartbeat > 0 { scheduleStartWake(afterMs: heartbeat) }
            return
        }
        guard now >= earliestStartMs else { return scheduleStartWake(afterMs: earliestStartMs - now) }
        startHeight(next)
    }

    /// Asks for a `startWake` in `ms`, unless one is already due no later (timers are never cancelled; a wake that
    /// finds nothing to do does nothing).
    private mutating func scheduleStartWake(afterMs ms: UInt64) {
        let at = clock.nowMs &+ ms
        if let pending = startWakeAtMs, pending <= at { return }
        startWakeAtMs = at
        effects.append(.schedule(.startWake, afterMs: ms))
    }

    private mutating func startHeight(_ height: UInt64) {
        guard halted == nil, core.phase == .idle || core.height < height, height == ledger.height + 1 else { return }
        do { try journal.reset() } catch { return halt("resetting the consensus journal failed: \(error)") }
        // Messages the core buffered for this height go through the journal like any other peer message.
        let buffered = core.takeBuffered(height: height)
        let waiting = awaiting.filter { $0.height == height }
        awaiting = []
        feed(.start(height: height, validators: consortium.validators, previousBlockHash: ledger.lastBlockHash),
             journalSync: false, fromPeer: false)
        for message in buffered + waiting {
            feed(ConsensusEvent(message), journalSync: false, fromPeer: true)
        }
        watch(height: height)
        regossipTick(height: height, round: 0)
    }

    private mutating func watch(height: UInt64) {
        effects.append(.schedule(.stallCheck(height: height), afterMs: Self.stallWarningMs))
    }

    // MARK: Block sync

    private mutating func noteHeight(_ height: UInt64, of peer: ValidatorID) {
        peerHeights[peer] = max(height, peerHeights[peer] ?? 0)
        requestSyncIfBehind()
    }

    /// Asks a peer that claims a height above ours for the blocks we lack. Of those peers, the one with the
    /// lowest claim is asked (an honest peer is usually just ahead; a peer inflating its height is then asked
    /// only when nobody else is ahead). A block with its certificate proves itself, so one honest peer is
    /// enough; a peer that claims heights it cannot serve, or serves a forged block, is disconnected.
    private mutating func requestSyncIfBehind() {
        guard started, halted == nil, sync == nil else { return }
        let ours = ledger.height
        guard let (peer, target) = peerHeights.filter({ $0.value > ours && connected.contains($0.key) })
                .min(by: { $0.value < $1.value || ($0.value == $1.value && $0.key < $1.key) })
        else { return }
        syncSerial += 1
        sync = SyncRequest(peer: peer, fromHeight: ours + 1, serial: syncSerial)
        let count = UInt32(min(UInt64(WireLimits.syncBlocksPerRequest), target - ours))
        note(.syncRequested(peer: peer, fromHeight: ours + 1, count: count, peerHeight: target))
        effects.append(.send(.syncRequest(fromHeight: ours + 1, count: count), to: peer))
        effects.append(.schedule(.syncTimeout(serial: syncSerial), afterMs: Self.syncTimeoutMs))
    }

    /// Every way a sync request ends comes here: ask again if still behind, and start the next height if due.
    private mutating func syncEnded() {
        sync = nil
        requestSyncIfBehind()
        maybeStartNextHeight()
    }

    /// Sends up to `count` committed blocks from `fromHeight`, as many as fit the receiver's frame limit
    /// (``WireCodec/syncResponse(fromHeight:blocks:maxFrameBytes:)``). At most ``syncServesPerSecond`` requests per
    /// peer per second are served: the owner's thread is not the peer's to spend.
    private mutating func serveSync(fromHeight: UInt64, count: UInt32, to peer: ValidatorID) {
        let now = clock.nowMs
        let window = served[peer].map { now &- $0.windowMs < 1_000 ? $0 : (now, 0) } ?? (now, 0)
        // Over the rate, the request is not served (an honest requester waits for each reply, and retries after
        // its timeout).
        guard window.1 < Self.syncServesPerSecond else { return }
        served[peer] = (window.0, window.1 + 1)
        var blocks: [CommittedBlock] = []
        var bytes = 0
        let wanted = UInt64(min(count, UInt32(WireLimits.syncBlocksPerRequest)))
        let last = min(ledger.height, fromHeight &+ wanted &- 1)
        var height = fromHeight
        while fromHeight >= 1, height <= last, bytes <= maxFrameBytes, let record = ledger.record(at: height) {
            blocks.append(record)
            bytes += record.canonicalBytes.count
            height += 1
        }
        effects.append(.send(WireCodec.syncResponse(fromHeight: fromHeight, blocks: blocks, maxFrameBytes: maxFrameBytes),
                             to: peer))
    }

    /// Verifies and commits synced blocks in order; a forged block or a refusal to serve claimed heights
    /// disconnects the peer. A failure of this node's own storage blames nobody.
    private mutating func applySync(fromHeight: UInt64, blocks: [CommittedBlock], from peer: ValidatorID) {
        guard let sync, sync.peer == peer, sync.fromHeight == fromHeight else { return }
        defer { syncEnded() }
        guard fromHeight == ledger.height + 1 else { return }
        if blocks.isEmpty {
            let claimed = peerHeights[peer] ?? 0
            if claimed >= fromHeight {
                let reason = "claimed height \(claimed) but served no block from \(fromHeight)"
                note(.refused(culprit: peer, reason: reason))
                drop(peer, reason: reason)
            }
            return
        }
        var applied = 0
        for record in blocks {
            let height = ledger.height + 1
            do {
                guard record.block.header.height == height else {
                    throw VerificationError(code: "wrong_height", message: "block \(record.block.header.height) where \(height) was asked for")
                }
                try ledger.commit(withHeldPersonalData(record))
                applied += 1
                note(.committed(record, syncedFrom: peer))
            } catch let error as VerificationError {
                let reason = "block sync: block \(height) refused: \(error)"
                note(.refused(culprit: peer, reason: reason))
                drop(peer, reason: reason)
                break
            } catch {
                note(.syncFailedHere(height: height, error: "\(error)"))
                break
            }
        }
        if applied > 0 {
            note(.synced(peer: peer, count: applied, height: ledger.height))
            afterCommit()
        }
    }

    /// `record` with the personal data it lacks taken from the same block as this replica holds it from a proposal
    /// at its height (the proposal carried all of it, signed; a sync peer may have left it out). The journal keeps
    /// proposals, so this holds across a restart too.
    private func withHeldPersonalData(_ record: CommittedBlock) -> CommittedBlock {
        guard core.phase == .running, core.height == record.block.header.height,
              let held = core.blocks[record.block.header.hash(consortium.suite)],
              held.transactions.count == record.block.transactions.count else { return record }
        var record = record
        for index in record.block.transactions.indices where record.block.transactions[index].personal == nil {
            record.block.transactions[index].personal = held.transactions[index].personal
        }
        return record
    }

    /// Disconnects a peer that broke the protocol.
    private mutating func drop(_ peer: ValidatorID, reason: String) {
        peerHeights[peer] = nil
        effects.append(.disconnect(peer, reason: reason))
    }

    // MARK: Evidence and status

    private mutating func recordEvidence(_ equivocation: Equivocation) {
        note(.evidence(equivocation))
        evidence.append(equivocation)
        if evidence.count > Self.evidenceLimit { evidence.removeFirst(evidence.count - Self.evidenceLimit) }
    }

    mutating func note(_ observation: ReplicaNote) {
        effects.append(.note(observation))
    }

    /// Where consensus stands, for status pages.
    public func statusReport() -> ConsensusStatusReport {
        let validators = consortium.validators
        let local = validators.member(validator)?.power ?? 0
        let power = connected.reduce(local) { $0 &+ (validators.member($1)?.power ?? 0) }
        let status = core.status
        let running = core.phase != .idle
        return ConsensusStatusReport(
            height: running ? status.height : ledger.height, round: running ? status.round : 0,
            step: running ? "\(status.step)" : "idle", lockedRound: status.lockedRound,
            peers: connected.map(\.value).sorted(), connectedPower: power, totalPower: validators.totalPower,
            equivocations: evidence.count, syncingFrom: sync?.peer.value, halted: halted)
    }

    /// Whether a block-sync request is outstanding.
    public var isSyncing: Bool { sync != nil }

    // MARK: Journal budgets

    /// Whether journalling `bytes` more for `message` stays within its budget at this height.
    func withinBudget(_ message: ConsensusMessage, bytes: Int) -> Bool {
        switch message {
        case .proposal(let signed, _):
            journalProposalBytes[signed.proposal.proposer, default: 0] + bytes <= budgets.proposalBytesPerValidator
        case .vote(let signed): journalVoteBytes[signed.vote.validator, default: 0] + bytes <= budgets.voteBytesPerValidator
        }
    }

    mutating func spend(_ message: ConsensusMessage, bytes: Int) {
        switch message {
        case .proposal(let signed, _): journalProposalBytes[signed.proposal.proposer, default: 0] += bytes
        case .vote(let signed): journalVoteBytes[signed.vote.validator, default: 0] += bytes
        }
    }
}

extension SignRequest {
    /// Whether `message` is this request, signed.
    public func matches(_ message: SignedMessage) -> Bool {
        switch (self, message) {
        case (.proposal(let proposal), .proposal(let signed)): proposal == signed.proposal
        case (.vote(let vote), .vote(let signed)): vote == signed.vote
        default: false
        }
    }
}
