import Foundation
import Testing
import XinlianConsensus
import XinlianCore
import XinlianCrypto
import XinlianNetwork
import XinlianNode
import XinlianStorage

/// Issue 8: one member that runs a validator, holds its real keys and speaks the real protocol. Three honest
/// engines (node1…node3) on the in-process hub; the test plays node0 and sends through each victim's real
/// ``PeerEventPump``, exactly as its transport would deliver.
@Suite("A Byzantine member against honest nodes", .serialized)
struct ByzantineMemberTests {
    struct Setup {
        let cluster: LocalConsortium
        let hub: LocalHub
        let engines: [NodeEngine]
        let hostile: ValidatorID

        var consortium: Consortium { cluster.consortium }
        var hostileKey: SigningKey { cluster.validatorKeys[0] }

        /// Delivers `message` from the hostile validator to honest engine `index` (0-based among the honest ones)
        /// through that engine's pump, and returns once it has been processed.
        func send(_ message: WireMessage, to index: Int) async {
            let engine = engines[index]
            await PeerEventPump(engine: engine, link: hub.link(for: engine.validatorID)).process(.message(hostile, message))
        }

        func sendToAll(_ message: WireMessage) async {
            for index in engines.indices { await send(message, to: index) }
        }

        func journalBytes(_ index: Int) -> Int {
            let path = "\(cluster.directory)/node\(index + 1)/consensus.journal"
            return ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
        }

        func dropped(by index: Int) -> [String] {
            hub.drops.filter { $0.by == engines[index].validatorID && $0.peer == hostile }.map(\.reason)
        }

        func vote(_ kind: VoteKind = .prevote, height: UInt64, round: UInt32 = 0, blockHash: Hash32?,
                  by index: Int = 0) throws -> WireMessage {
            let vote = Vote(chainID: consortium.chainID, kind: kind, height: height, round: round, blockHash: blockHash,
                            validator: cluster.id(index))
            return .consensus(.vote(SignedVote(vote: vote, signature: try cluster.validatorKeys[index].sign(vote.signingBytes))))
        }

        func proposal(_ block: Block, round: UInt32, by index: Int = 0) throws -> WireMessage {
            let proposal = Proposal(chainID: consortium.chainID, height: block.header.height, round: round,
                                    blockHash: block.header.hash(consortium.suite), polRound: nil, proposer: cluster.id(index))
            return .consensus(.proposal(SignedProposal(proposal: proposal,
                                                       signature: try cluster.validatorKeys[index].sign(proposal.signingBytes)),
                                        block))
        }

        /// A block at height 1 carrying `transactions`, with the right links and roots but for the state root.
        func block(_ transactions: [Transaction], proposer index: Int = 0) -> Block {
            Block(header: BlockHeader(chainID: consortium.chainID, height: 1, timeMs: NodeEngine.wallClockMs(),
                                      previousHash: consortium.genesisHash,
                                      transactionsRoot: Block.transactionsRoot(transactions, suite: consortium.suite),
                                      stateRoot: .zero, validatorSetHash: consortium.validators.hash, proposer: cluster.id(index),
                                      transactionCount: UInt32(transactions.count)),
                  transactions: transactions)
        }

        /// Cuts node1 off from the other honest nodes and gives it work: it starts height 1, which stays undecided.
        func openHeightOnFirst() async throws {
            hub.cut(cluster.id(1), cluster.id(2))
            hub.cut(cluster.id(1), cluster.id(3))
            _ = try await engines[0].admit(try cluster.transactions(0..<1))
            let engine = engines[0]
            try await eventually(10, "node1 to start height 1") { await engine.status().consensus?.height == 1 }
        }

        func stop() {
            hub.stop()
            cluster.remove()
        }
    }

    static func setUp(parameters: ConsensusParameters = .defaults) async throws -> Setup {
        let cluster = try LocalConsortium(validators: 4, parameters: parameters)
        let hub = LocalHub()
        var engines: [NodeEngine] = []
        for index in 1..<4 { engines.append(try await cluster.start(index, hub: hub)) }
        return Setup(cluster: cluster, hub: hub, engines: engines, hostile: cluster.id(0))
    }

    func signed(_ cluster: LocalConsortium, _ kind: TransactionKind, timeMs: UInt64, nonce: UInt64,
                payload: [String: JSONValue]) throws -> Transaction {
        try Transaction.sign(TransactionBody(chainID: cluster.consortium.chainID, kind: kind, reporter: "bank-a",
                                             subject: try USCC.withCheckCharacter("91310000000000001"), timeMs: timeMs,
                                             nonce: nonce, payload: try Payload.canonicalize(.object(payload))),
                             with: cluster.institutionKey)
    }

    /// Attack 1: a signed statement dated past `Int64.max`, gossiped by a validator, used to enter the mempool
    /// (gossip skipped the API's time check), be committed, and trap the index on every node and every restart.
    @Test func aGossipedTransactionFromTheFarFutureIsRefusedAndNeverProposed() async throws {
        let setup = try await Self.setUp()
        defer { setup.stop() }
        let poisoned = try setup.cluster.transactions(0..<1).map { transaction in
            try Transaction.sign(TransactionBody(chainID: transaction.body.chainID, kind: transaction.body.kind,
                                                 reporter: transaction.body.reporter, subject: transaction.body.subject,
                                                 timeMs: UInt64(Int64.max) + 1, nonce: 1, payload: transaction.body.payload),
                                 with: setup.cluster.institutionKey)
        }[0]
        await setup.sendToAll(.transactions([poisoned]))
        let id = poisoned.id(setup.consortium.suite)
        for engine in setup.engines {
            guard case .rejected(let error) = await engine.stateOf(id) else {
                Issue.record("\(engine.validatorID) took a transaction dated \(poisoned.body.timeMs)")
                continue
            }
            #expect(error.code == "time_in_future")
            #expect(await engine.status().mempoolSize == 0)
        }
        // The honest nodes go on committing.
        let good = try setup.cluster.transactions(1..<3)
        _ = try await setup.engines[0].admit(good)
        try await expectCommitted(good, on: setup.engines, seconds: 20)
    }

    /// Attack 3: query records met in gossip were not held to the API's rules, so a member could put permanent
    /// "supervised by the regulator" entries, or queries in another institution's name, into any report.
    @Test func forgedQueryRecordsInGossipAreRefused() async throws {
        let setup = try await Self.setUp()
        defer { setup.stop() }
        let now = NodeEngine.wallClockMs()
        let supervision = try signed(setup.cluster, .queryRecord, timeMs: now, nonce: 1, payload: [
            "institution": .string("bank-a"), "purpose": .string("supervision"), "reportHeight": .integer(0),
        ])
        let impersonation = try signed(setup.cluster, .queryRecord, timeMs: now, nonce: 2, payload: [
            "institution": .string("regulator"), "purpose": .string("supervision"), "reportHeight": .integer(0),
        ])
        await setup.sendToAll(.transactions([supervision, impersonation]))
        for engine in setup.engines {
            for (transaction, code) in [(supervision, "purpose_not_permitted"), (impersonation, "query_mismatch")] {
                guard case .rejected(let error) = await engine.stateOf(transaction.id(setup.consortium.suite)) else {
                    Issue.record("\(engine.validatorID) took a forged query record (\(code))")
                    continue
                }
                #expect(error.code == code)
            }
        }
    }

    /// Attack 2: votes with random block hashes, all validly signed by one validator, filled a node's shared
    /// memory of seen messages and its journal. Each (height, round, step) of a signer now holds at most two
    /// messages — the second is kept as evidence — and nothing more is journalled or kept.
    @Test func aVoteFloodFromOneValidatorKeepsTwoMessagesPerStepAndRecordsEvidence() async throws {
        let setup = try await Self.setUp()
        defer { setup.stop() }
        // node1 is deciding height 1 alone (its links to the other honest nodes are cut), so the height stays open.
        try await setup.openHeightOnFirst()
        let before = setup.journalBytes(0)
        let flood = 600
        for n in 0..<flood {
            var hash = [UInt8](repeating: 0, count: 32)
            hash[0] = UInt8(truncatingIfNeeded: n)
            hash[1] = UInt8(truncatingIfNeeded: n >> 8)
            await setup.send(try setup.vote(height: 1, round: 0, blockHash: Hash32(bytes: hash)), to: 0)
            await setup.send(try setup.vote(.precommit, height: 1, round: 1, blockHash: Hash32(bytes: hash)), to: 0)
        }
        let grown = setup.journalBytes(0) - before
        // Four messages at most (two slots, two each), about 200 bytes each; before the fix, all 1,200.
        #expect(grown < 4 * 512, "the journal grew by \(grown) bytes for \(2 * flood) flooded votes")
        #expect(await setup.engines[0].equivocations.count >= 1, "the conflicting vote is evidence")
        #expect(await setup.engines[0].status().consensus?.halted == nil)
    }

    /// Review finding: votes signed for other chain ids were each "relevant" to the slot and kept, without bound.
    /// A message for another chain is refused before anything is kept, and its sender disconnected.
    @Test func votesForAnotherChainAreRefusedAndDisconnect() async throws {
        let setup = try await Self.setUp()
        defer { setup.stop() }
        try await setup.openHeightOnFirst()
        let before = setup.journalBytes(0)
        for n in 0..<50 {
            let vote = Vote(chainID: try Name("x\(n)"), kind: .prevote, height: 1, round: 0, blockHash: nil,
                            validator: setup.hostile)
            await setup.send(.consensus(.vote(SignedVote(vote: vote, signature: try setup.hostileKey.sign(vote.signingBytes)))),
                             to: 0)
        }
        #expect(setup.journalBytes(0) == before, "votes for other chains must not be journalled")
        #expect(setup.dropped(by: 0).contains { $0.contains("for chain x0") })
    }

    /// Attack 2 (proposals): a validator that is not the scheduled proposer sent proposals carrying blocks; each
    /// was journalled before the core dropped it. Now the pump refuses it before its signature is checked, and
    /// the sender is disconnected.
    @Test func anOffScheduleProposalIsRefusedBeforeTheJournalAndDisconnects() async throws {
        let setup = try await Self.setUp()
        defer { setup.stop() }
        try await setup.openHeightOnFirst()
        let schedule = ProposerSchedule(setup.consortium.validators)
        let round = try #require((0..<UInt32(8)).first { schedule.proposer(height: 1, round: $0) != setup.hostile })
        let before = setup.journalBytes(0)
        let block = setup.block(try setup.cluster.transactions(10..<60))
        await setup.send(try setup.proposal(block, round: round), to: 0)
        #expect(setup.journalBytes(0) == before, "an off-schedule proposal must not be journalled")
        #expect(setup.dropped(by: 0).contains { $0.contains("not scheduled") })
    }

    /// Attack 4: genesis's block limits were applied to a node's own blocks only; another validator's proposal
    /// over them was validated, voted for and committed.
    @Test func aProposalOverGenesisBlockLimitsIsRefused() async throws {
        var parameters = ConsensusParameters.defaults
        parameters.maxBlockTransactions = 3
        let setup = try await Self.setUp(parameters: parameters)
        defer { setup.stop() }
        let schedule = ProposerSchedule(setup.consortium.validators)
        let round = try #require((0..<UInt32(8)).first { schedule.proposer(height: 1, round: $0) == setup.hostile })
        let block = setup.block(try setup.cluster.transactions(0..<4))
        await setup.sendToAll(try setup.proposal(block, round: round))
        for index in setup.engines.indices {
            #expect(setup.dropped(by: index).contains { $0.contains("block_too_large") })
        }
        #expect(throws: VerificationError.self) {
            try BlockVerifier.checkBlock(block, height: 1, previousHash: setup.consortium.genesisHash,
                                         consortium: setup.consortium)
        }
    }

    /// Attack 5: any validly signed message for the next height made an idle node start it, so one Byzantine
    /// validator could make the others decide empty heights. Now an idle node joins on its scheduled proposer's
    /// proposal or on messages from more than a third of the power.
    @Test func oneValidatorsVoteDoesNotMakeIdleNodesStartAHeight() async throws {
        let setup = try await Self.setUp()
        defer { setup.stop() }
        await setup.sendToAll(try setup.vote(height: 1, blockHash: nil))
        for engine in setup.engines {
            #expect(await engine.status().consensus?.height == 0, "\(engine.validatorID) joined height 1 on one vote")
        }
        // Nor on an empty proposal, even its scheduled proposer's (node0 proposes round 0 of height 1): a member is
        // scheduled in some round of nearly every height, so that would let it make idle nodes decide empty heights.
        #expect(ProposerSchedule(setup.consortium.validators).proposer(height: 1, round: 0) == setup.hostile)
        await setup.sendToAll(try setup.proposal(setup.block([]), round: 0))
        for engine in setup.engines {
            #expect(await engine.status().consensus?.height == 0, "\(engine.validatorID) joined height 1 on an empty proposal")
        }
        // A second validator (20 of 40, more than a third) starts it for real.
        let second = try setup.vote(height: 1, blockHash: nil, by: 2)
        for engine in setup.engines {
            await PeerEventPump(engine: engine, link: setup.hub.link(for: engine.validatorID))
                .process(.message(setup.cluster.id(2), second))
        }
        #expect(await setup.engines[0].status().consensus?.height == 1)
        #expect(await setup.engines[2].status().consensus?.height == 1)
    }
}
