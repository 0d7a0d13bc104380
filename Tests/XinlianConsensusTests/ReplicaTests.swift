import Foundation
import Testing
import XinlianConsensus
import XinlianCore
import XinlianCredit
import XinlianCrypto
@testable import XinlianSimulation

/// One replica over the simulator's in-memory ports, driven by hand.
struct ReplicaHarness {
    let setup: SimulatedConsortium
    let verified = VerifiedRecords()
    let journal = SimJournal()
    let signer: SimSigner
    let clock = SimClock(skewMs: 0)
    let ledger: SimLedger
    var replica: Replica

    init(validators: Int = 4, index: Int = 0, blockIntervalMs: UInt64? = nil,
         maxFrameBytes: Int = WireLimits.defaultMaxFrameBytes,
         budgets: Replica.JournalBudgets = .standard) throws {
        setup = try SimulatedConsortium(powers: Array(repeating: 10, count: validators), blockIntervalMs: blockIntervalMs)
        signer = SimSigner(key: setup.keys[index])
        ledger = SimLedger(consortium: setup.consortium, verified: verified, clock: clock)
        replica = Replica(consortium: setup.consortium, validator: setup.validators.members[index].id,
                          timeouts: SimulationConfig.fastTimeouts, journal: journal, signer: signer, ledger: ledger,
                          clock: clock, maxFrameBytes: maxFrameBytes, budgets: budgets)
    }

    func id(_ index: Int) -> ValidatorID { setup.validators.members[index].id }

    /// A committed chain of `heights` blocks, decided by a fault-free simulated consortium of the same genesis.
    static func chain(heights: UInt64) throws -> [CommittedBlock] {
        let result = try Simulation(configuration: SimulationConfig(seed: 1, validators: 4, faults: .none, heights: heights)).run()
        return result.chains[0]
    }

    /// A harness for the validator after the proposer of height 1, round 0, with that proposer's id and index.
    static func besideProposer() throws -> (harness: ReplicaHarness, proposer: ValidatorID, proposerIndex: Int) {
        let probe = try ReplicaHarness()
        let proposer = probe.replica.gate.rules.schedule.proposer(height: 1, round: 0)
        let proposerIndex = try #require(probe.setup.validators.members.firstIndex { $0.id == proposer })
        return (try ReplicaHarness(index: (proposerIndex + 1) % 4), proposer, proposerIndex)
    }

    /// `block` proposed by validator `index` for `round`, signed with its key.
    func proposal(_ block: Block, round: UInt32, by index: Int) throws -> ConsensusMessage {
        let proposal = Proposal(chainID: setup.consortium.chainID, height: block.header.height, round: round,
                                blockHash: block.header.hash(setup.suite), polRound: nil, proposer: id(index))
        return .proposal(SignedProposal(proposal: proposal, signature: try setup.keys[index].sign(proposal.signingBytes)), block)
    }
}

/// What the personal-data repair tests read of a replica's effects, and the replies they make.
extension ReplicaHarness {
    typealias Asked = (peer: ValidatorID, from: UInt64, count: UInt32)

    /// A harness whose ledger committed `chain` without any of its personal data.
    static func lackingPersonalData(_ chain: [CommittedBlock]) throws -> ReplicaHarness {
        let harness = try ReplicaHarness()
        for record in chain {
            var stripped = record
            stripped.block.transactions = record.block.transactions.map(\.withoutPersonalData)
            try harness.ledger.commit(stripped)
        }
        return harness
    }

    /// The sync request among `effects`, if any.
    static func request(_ effects: [ReplicaEffect]) -> Asked? {
        effects.lazy.compactMap { effect -> Asked? in
            if case .send(.syncRequest(let from, let count), let peer) = effect { (peer, from, count) } else { nil }
        }.first
    }

    /// The personal-repair timer scheduled among `effects`, with its delay.
    static func repairTimer(_ effects: [ReplicaEffect]) -> (ReplicaTimer, UInt64)? {
        effects.lazy.compactMap { effect -> (ReplicaTimer, UInt64)? in
            if case .schedule(let timer, let ms) = effect, case .personalRepair = timer { (timer, ms) } else { nil }
        }.first
    }

    /// A reply to `asked` from `chain`, each transaction passed through `edit`.
    static func reply(_ asked: Asked, from chain: [CommittedBlock], _ edit: (Transaction) -> Transaction) -> WireMessage {
        let records = chain[Int(asked.from - 1)..<Int(asked.from - 1 + UInt64(asked.count))].map { record in
            var copy = record
            copy.block.transactions = record.block.transactions.map(edit)
            return copy
        }
        return .syncResponse(fromHeight: asked.from, blocks: Array(records))
    }
}

@Suite("Replica")
struct ReplicaTests {
    /// Sync replies hold as many blocks as fit the receiver's frame limit, never more (the node used to size them
    /// by its own 8 MiB budget, and a smaller configured limit made every multi-block reply unsendable).
    @Test func syncRepliesFitTheFrameLimit() throws {
        let chain = try ReplicaHarness.chain(heights: 5)
        let overhead = 1 + 8 + 4
        // Each block is followed by its personal data: here a count of none (4 bytes).
        let limit = overhead + chain[0].canonicalBytes.count + 4 + chain[1].canonicalBytes.count + 4
        var harness = try ReplicaHarness(maxFrameBytes: limit)
        for record in chain { try harness.ledger.commit(record) }
        try harness.replica.start(journalRecords: [])
        _ = harness.replica.takeEffects()
        harness.replica.receive(.syncRequest(fromHeight: 1, count: 64), from: harness.id(1))
        let replies = harness.replica.takeEffects().compactMap { effect -> [CommittedBlock]? in
            if case .send(.syncResponse(1, let blocks), _) = effect { blocks } else { nil }
        }
        #expect(replies.map(\.count) == [2])
        #expect(replies.first == Array(chain.prefix(2)))
    }

    /// A relayer that strips (or swaps) the personal data beside an honest proposal cannot get it refused: the
    /// proposer signed the digest of what it sent, so the stripped copy is not taken at all (and not cached as
    /// invalid), and the genuine copy arriving later still is (hostile review of the erasure slice, finding 1).
    @Test func aProposalStrippedOfItsPersonalDataIsNotTaken() throws {
        // The replica under test is another validator than the proposer.
        var (harness, proposer, proposerIndex) = try ReplicaHarness.besideProposer()
        var transaction = try harness.setup.transaction(1, timeMs: SimulatedConsortium.genesisTimeMs)
        #expect(harness.ledger.admit(transaction, origin: .api))
        transaction.personal = PersonalData(salt: Array(repeating: 3, count: 32), fields: Array(#"{"legalRepresentative":"张伟"}"#.utf8))
        let block = harness.ledger.makeBlock(height: 1, timeMs: SimulatedConsortium.genesisTimeMs + 1, proposer: proposer,
                                             transactions: [transaction])
        let proposal = Proposal(chainID: harness.setup.consortium.chainID, height: 1, round: 0,
                                blockHash: block.header.hash(harness.setup.suite), polRound: nil, proposer: proposer,
                                personalDigest: PersonalSidecars.digest(block.transactions, suite: harness.setup.suite))
        let signed = SignedProposal(proposal: proposal, signature: try harness.setup.keys[proposerIndex].sign(proposal.signingBytes))
        var stripped = block
        stripped.transactions[0].personal = nil
        // The peer gate refuses the forwarded forgery outright; the signed copy passes it.
        let rules = harness.replica.gate.rules
        #expect(rules.frameRefusal(.consensus(.proposal(signed, stripped)), consortium: harness.setup.consortium,
                                   verifier: DirectSignatureVerifier()) != nil)
        #expect(rules.frameRefusal(.consensus(.proposal(signed, block)), consortium: harness.setup.consortium,
                                   verifier: DirectSignatureVerifier()) == nil)
        try harness.replica.start(journalRecords: [])
        #expect(harness.replica.core.phase == .running && harness.replica.core.height == 1)
        // Should it get past a gate, the core does not take it either, so nothing is cached against the block.
        let keptStripped = harness.replica.receive(.consensus(.proposal(signed, stripped)), from: proposer)
        #expect(!keptStripped, "the stripped copy was taken")
        let keptGenuine = harness.replica.receive(.consensus(.proposal(signed, block)), from: proposer)
        #expect(keptGenuine, "the genuine copy must still be taken")
    }

    /// Issue 9: a node that committed blocks without their personal data asks its peers in turn, keeps only what
    /// matches the signed commitments, waits longer after each peer that gave nothing, and stops asking once it
    /// holds everything.
    @Test func personalDataLackingHereIsAskedOfPeersInTurn() throws {
        let chain = try ReplicaHarness.chain(heights: 4)
        let lacking = chain.filter { $0.block.transactions.contains { $0.personal != nil } }.map(\.block.header.height)
        let first = try #require(lacking.first, "the workload's registrations carry personal data")
        var harness = try ReplicaHarness.lackingPersonalData(chain)
        #expect(harness.ledger.heightsLackingPersonalData(from: 0, limit: 64) == lacking)
        try harness.replica.start(journalRecords: [])
        _ = harness.replica.takeEffects()
        let request = ReplicaHarness.request, repairTimer = ReplicaHarness.repairTimer
        func reply(_ asked: ReplicaHarness.Asked, _ edit: (Transaction) -> Transaction) -> WireMessage {
            ReplicaHarness.reply(asked, from: chain, edit)
        }

        // Two peers connect (at this height: no block sync); the first is asked for the lowest lacking height.
        harness.replica.connected(harness.id(1), height: 4)
        let toFirst = try #require(request(harness.replica.takeEffects()))
        harness.replica.connected(harness.id(2), height: 4)
        #expect(request(harness.replica.takeEffects()) == nil, "one request at a time")
        #expect(toFirst.peer == harness.id(1) && toFirst.from == first)

        // It answers with forged personal data: nothing is kept, and the next peer is asked only after a wait.
        let junk = PersonalData(salt: Array(repeating: 7, count: 32), fields: Array(#"{"legalRepresentative":"冒名"}"#.utf8))
        harness.replica.receive(reply(toFirst) { var forged = $0; if forged.personal != nil { forged.personal = junk }; return forged },
                                from: harness.id(1))
        var effects = harness.replica.takeEffects()
        #expect(request(effects) == nil)
        let (wait, waitMs) = try #require(repairTimer(effects))
        #expect(waitMs == Replica.personalRepairMs)
        #expect(harness.ledger.heightsLackingPersonalData(from: 0, limit: 64) == lacking, "forged data must not be kept")
        #expect(harness.ledger.record(at: first)?.block.transactions.allSatisfy { $0.personal == nil } == true)

        // The peer that gave nothing reconnecting does not cut the wait short (a reconnect loop buys no requests).
        harness.replica.disconnected(harness.id(1))
        harness.replica.connected(harness.id(1), height: 4)
        #expect(request(harness.replica.takeEffects()) == nil, "a reconnect cut the wait short")
        // When the wait is over the second peer is asked, and gives the genuine data.
        harness.clock.worldMs += Replica.personalRepairMs
        harness.replica.fire(wait)
        effects = harness.replica.takeEffects()
        let toSecond = try #require(request(effects))
        #expect(toSecond.peer == harness.id(2) && toSecond.from == first)
        harness.replica.receive(reply(toSecond) { $0 }, from: harness.id(2))
        effects = harness.replica.takeEffects()
        let remaining = lacking.filter { $0 > first + UInt64(toSecond.count) - 1 }
        #expect(harness.ledger.heightsLackingPersonalData(from: 0, limit: 64) == remaining)
        #expect(harness.ledger.record(at: first)?.block.transactions.contains { $0.personal != nil } == true)
        // Whatever is left is asked of the peer that helped, at once; once nothing lacks, nothing is asked.
        var asked = request(effects)
        while let next = asked {
            #expect(next.peer == harness.id(2))
            harness.replica.receive(reply(next) { $0 }, from: next.peer)
            asked = request(harness.replica.takeEffects())
        }
        #expect(harness.ledger.heightsLackingPersonalData(from: 0, limit: 64).isEmpty)
        #expect(harness.ledger.lacking.isEmpty)
    }

    /// Review of issue 9's repair: a height no peer can give does not keep the heights above it from being asked
    /// for; after every connected peer gave nothing for it, requests start past it (and come back to it later).
    @Test func aHeightNobodyGivesDoesNotBlockTheOthers() throws {
        let chain = try ReplicaHarness.chain(heights: 12)
        let lacking = chain.filter { $0.block.transactions.contains { $0.personal != nil } }.map(\.block.header.height)
        try #require(lacking.count >= 2, "the workload's registrations carry personal data")
        var harness = try ReplicaHarness.lackingPersonalData(chain)
        try harness.replica.start(journalRecords: [])
        _ = harness.replica.takeEffects()
        let request = ReplicaHarness.request
        func timer(_ effects: [ReplicaEffect]) -> ReplicaTimer? { ReplicaHarness.repairTimer(effects)?.0 }
        func reply(_ asked: ReplicaHarness.Asked, stripped: Bool) -> WireMessage {
            ReplicaHarness.reply(asked, from: chain) { stripped ? $0.withoutPersonalData : $0 }
        }
        harness.replica.connected(harness.id(1), height: 12)
        var asked = try #require(request(harness.replica.takeEffects()))
        harness.replica.connected(harness.id(2), height: 12)
        _ = harness.replica.takeEffects()
        let firstWindow = asked.from
        // Both peers give nothing for the first window.
        for _ in 0..<2 {
            #expect(asked.from == firstWindow)
            harness.replica.receive(reply(asked, stripped: true), from: asked.peer)
            let wake = try #require(timer(harness.replica.takeEffects()))
            harness.clock.worldMs += Replica.personalRepairMaxMs
            harness.replica.fire(wake)
            asked = try #require(request(harness.replica.takeEffects()))
        }
        // The next request starts past it, and is answered.
        #expect(asked.from > firstWindow + 0, "still asking for the first window after every peer gave nothing")
        harness.replica.receive(reply(asked, stripped: false), from: asked.peer)
        _ = harness.replica.takeEffects()
        #expect(harness.ledger.heightsLackingPersonalData(from: 0, limit: 64).first == firstWindow)
        #expect(harness.ledger.heightsLackingPersonalData(from: firstWindow + 1, limit: 64).count
                < lacking.filter { $0 > firstWindow }.count)
    }

    /// Review of issue 9's repair: a Byzantine proposer that keeps the decision to itself and syncs everyone a
    /// stripped copy of its block does not leave the validators that validated the proposal without its personal
    /// data: they held all of it, signed, and keep it.
    @Test func aValidatedProposalsPersonalDataSurvivesAStrippedCertifiedCopy() throws {
        var (harness, proposer, proposerIndex) = try ReplicaHarness.besideProposer()
        let registration = try harness.setup.registration(3, timeMs: SimulatedConsortium.genesisTimeMs)
        try #require(registration.personal != nil)
        let block = harness.ledger.makeBlock(height: 1, timeMs: SimulatedConsortium.genesisTimeMs + 1, proposer: proposer,
                                             transactions: [registration])
        let suite = harness.setup.suite
        let hash = block.header.hash(suite)
        let proposal = Proposal(chainID: harness.setup.consortium.chainID, height: 1, round: 0, blockHash: hash, polRound: nil,
                                proposer: proposer, personalDigest: PersonalSidecars.digest(block.transactions, suite: suite))
        let signed = SignedProposal(proposal: proposal, signature: try harness.setup.keys[proposerIndex].sign(proposal.signingBytes))
        try harness.replica.start(journalRecords: [])
        harness.replica.connected(proposer, height: 0)
        harness.replica.receive(.consensus(.proposal(signed, block)), from: proposer)
        #expect(harness.replica.core.phase == .running && harness.replica.core.height == 1)
        _ = harness.replica.takeEffects()
        // The proposer then claims height 1 and serves the certified block without the personal data.
        harness.replica.receive(.status(PeerStatus(height: 1, lastBlockHash: hash)), from: proposer)
        let asked = harness.replica.takeEffects().contains { if case .send(.syncRequest(1, _), proposer) = $0 { true } else { false } }
        #expect(asked)
        let signatures = try harness.setup.validators.members.indices.prefix(3).map { index in
            let member = harness.setup.validators.members[index]
            let vote = Vote(chainID: harness.setup.consortium.chainID, kind: .precommit, height: 1, round: 0, blockHash: hash,
                            validator: member.id)
            return CommitSignature(validator: member.id, signature: try harness.setup.keys[index].sign(vote.signingBytes))
        }
        var stripped = block
        stripped.transactions = block.transactions.map(\.withoutPersonalData)
        let record = CommittedBlock(block: stripped, certificate: CommitCertificate(height: 1, round: 0, blockHash: hash,
                                                                                    signatures: signatures))
        harness.replica.receive(.syncResponse(fromHeight: 1, blocks: [record]), from: proposer)
        #expect(harness.ledger.height == 1)
        #expect(harness.ledger.lacking.isEmpty, "the validated proposal's personal data was lost to the stripped copy")
        #expect(harness.ledger.record(at: 1)?.block.transactions.first?.personal == registration.personal)
    }

    /// Each proposer spends its own journal budget: a Byzantine proposer's big proposals cannot use up what an
    /// honest proposer's proposal needs at the same height.
    @Test func oneProposersProposalsDoNotSpendAnothersJournalBudget() throws {
        let probe = try ReplicaHarness()
        let schedule = probe.replica.gate.rules.schedule
        // A hostile and an honest proposer, each scheduled in some round the core keeps at height 1.
        let rounds = (0...ConsensusCore.futureRoundsLimit).map { ($0, schedule.proposer(height: 1, round: $0)) }
        let others = rounds.filter { $0.1 != probe.id(0) }
        let hostile = try #require(others.first)
        let honest = try #require(others.first { $0.1 != hostile.1 })
        let hostileIndex = try #require(probe.setup.validators.members.firstIndex { $0.id == hostile.1 })
        let honestIndex = try #require(probe.setup.validators.members.firstIndex { $0.id == honest.1 })
        let transaction = try probe.setup.transaction(1, timeMs: SimulatedConsortium.genesisTimeMs)
        func block(_ variant: UInt64, by index: Int) -> Block {
            probe.ledger.makeBlock(height: 1, timeMs: SimulatedConsortium.genesisTimeMs + variant,
                                   proposer: probe.id(index), transactions: [transaction])
        }
        let first = try probe.proposal(block(1, by: hostileIndex), round: hostile.0, by: hostileIndex)
        let entryBytes = try #require(JournalEntry(height: 1, event: ConsensusEvent(first))).canonicalBytes.count
        // Room for one proposal per proposer (the second, conflicting one of the hostile proposer is over it).
        var harness = try ReplicaHarness(budgets: Replica.JournalBudgets(proposalBytesPerValidator: entryBytes + 64,
                                                                          voteBytesPerValidator: 1 << 20,
                                                                          ownBytesReserve: 1 << 24))
        #expect(harness.ledger.admit(transaction, origin: .api))
        try harness.replica.start(journalRecords: [])
        #expect(harness.replica.core.phase == .running && harness.replica.core.height == 1)
        let keptFirst = harness.replica.receive(.consensus(first), from: harness.id(hostileIndex))
        #expect(keptFirst)
        let second = try harness.proposal(block(2, by: hostileIndex), round: hostile.0, by: hostileIndex)
        let keptSecond = harness.replica.receive(.consensus(second), from: harness.id(hostileIndex))
        #expect(!keptSecond, "over its own budget")
        let honestProposal = try harness.proposal(block(3, by: honestIndex), round: honest.0, by: honestIndex)
        let keptHonest = harness.replica.receive(.consensus(honestProposal), from: harness.id(honestIndex))
        #expect(keptHonest, "the honest proposer's budget is its own")
    }

    /// A validator that decides alone commits one block per call and starts the next from a timer: a backlog
    /// never turns into one ever deeper call (with no block interval it used to recurse block after block).
    @Test func aLoneValidatorCommitsABacklogOneTimerAtATime() throws {
        var harness = try ReplicaHarness(validators: 1, blockIntervalMs: 0)
        for n in 0..<12 {
            #expect(harness.ledger.admit(try harness.setup.transaction(UInt64(n + 1), timeMs: SimulatedConsortium.genesisTimeMs),
                                         origin: .api))
        }
        try harness.replica.start(journalRecords: [])
        #expect(harness.ledger.height == 1, "one block within the call")
        var effects = harness.replica.takeEffects()
        var fired = 0
        while harness.ledger.pendingCount > 0, fired < 20 {
            guard effects.contains(where: { if case .schedule(.startWake, 0) = $0 { true } else { false } }) else {
                Issue.record("no immediate wake asked for with work pending")
                return
            }
            harness.replica.fire(.startWake)
            fired += 1
            #expect(harness.ledger.height == UInt64(fired + 1))
            effects = harness.replica.takeEffects()
        }
        #expect(harness.ledger.height == 4, "12 transactions, 3 a block")
        #expect(harness.replica.halted == nil)
    }
}
