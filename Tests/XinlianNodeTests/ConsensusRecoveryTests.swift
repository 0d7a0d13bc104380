import Foundation
import Synchronization
import Testing
import XinlianConsensus
import XinlianCore
import XinlianCrypto
import XinlianNetwork
import XinlianNode
import XinlianStorage

/// Waits (polling, with a deadline) until `condition` holds.
func eventually(_ seconds: Double, _ what: String, _ condition: @escaping @Sendable () async -> Bool) async throws {
    try await within(seconds, what) {
        while await !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }
}

@Suite("Consensus journal, crash recovery and hostile peers", .serialized)
struct ConsensusRecoveryTests {
    @Test func journalEntriesRoundTripAndATornTailIsCut() throws {
        let cluster = try LocalConsortium(validators: 4)
        defer { cluster.remove() }
        let suite = cluster.consortium.suite
        let block = Block(header: BlockHeader(chainID: cluster.consortium.chainID, height: 1, timeMs: 1, previousHash: .zero,
                                              transactionsRoot: Block.transactionsRoot([], suite: suite), stateRoot: .zero,
                                              validatorSetHash: cluster.consortium.validators.hash, proposer: cluster.id(0),
                                              transactionCount: 0), transactions: [])
        let hash = block.header.hash(suite)
        let proposal = SignedProposal(proposal: Proposal(chainID: cluster.consortium.chainID, height: 1, round: 2,
                                                         blockHash: hash, polRound: 1, proposer: cluster.id(0)),
                                      signature: [1, 2, 3])
        let vote = SignedVote(vote: Vote(chainID: cluster.consortium.chainID, kind: .prevote, height: 1, round: 2,
                                         blockHash: nil, validator: cluster.id(1)), signature: [4, 5])
        let events: [ConsensusEvent] = [
            .proposal(proposal, block), .vote(vote), .timeout(Timeout(height: 1, round: 2, step: .prevote)),
            .blockBuilt(block), .blockValidated(hash: hash, valid: false), .signed(.proposal(proposal)), .signed(.vote(vote)),
        ]
        try FileManager.default.createDirectory(atPath: cluster.directory, withIntermediateDirectories: true)
        let path = cluster.directory + "/journal"
        let (journal, empty) = try ConsensusJournal.open(path: path, recordLimit: JournalEntry.limit)
        #expect(empty.isEmpty)
        for event in events {
            let entry = try #require(JournalEntry(height: 1, event: event))
            #expect(try JournalEntry(canonicalBytes: entry.canonicalBytes, limit: JournalEntry.limit) == entry)
            try journal.append(entry.canonicalBytes, sync: false)
        }
        try journal.sync()
        journal.close()
        #expect(JournalEntry(height: 1, event: .start(height: 1, validators: cluster.consortium.validators,
                                                      previousBlockHash: .zero)) == nil)
        // A crash mid-write leaves half a frame: it is cut off and everything before it survives.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0, 0, 1, 0, 9, 9]))
        try handle.close()
        let (reopened, records) = try ConsensusJournal.open(path: path, recordLimit: JournalEntry.limit)
        defer { reopened.close() }
        #expect(try records.map { try JournalEntry(canonicalBytes: $0, limit: JournalEntry.limit).event } == events)
        #expect(reopened.sizeBytes == records.reduce(0) { $0 + 8 + $1.count })
    }

    /// The validator locks on its own proposal after prevotes from two others, precommits, and dies. On restart
    /// the journal gives it back its lock and its precommit, and it refuses to sign anything conflicting.
    @Test func aRestartedValidatorKeepsItsLockAndVotes() async throws {
        let cluster = try LocalConsortium(validators: 4)
        defer { cluster.remove() }
        let proposer = ProposerSchedule(cluster.consortium.validators).proposer(height: 1, round: 0)
        let index = try #require(cluster.consortium.validators.members.firstIndex { $0.id == proposer })
        let others = (0..<4).filter { $0 != index }
        let hub = LocalHub()
        defer { hub.stop() }
        let engine = try await cluster.start(index, hub: hub)
        _ = try await engine.admit(try cluster.transactions(0..<3))
        try await eventually(10, "a proposal") { hub.sent(by: proposer).contains { if case .consensus(.proposal) = $0 { true } else { false } } }
        guard case .consensus(.proposal(let signed, _)) = hub.sent(by: proposer).first(where: {
            if case .consensus(.proposal) = $0 { true } else { false }
        }) else { Issue.record("no proposal"); return }
        let blockHash = signed.proposal.blockHash
        for other in others.prefix(2) {
            let vote = Vote(chainID: cluster.consortium.chainID, kind: .prevote, height: 1, round: 0, blockHash: blockHash,
                            validator: cluster.id(other))
            let signature = try cluster.validatorKeys[other].sign(vote.signingBytes)
            hub.deliver(.message(cluster.id(other), .consensus(.vote(SignedVote(vote: vote, signature: signature)))), to: proposer)
        }
        let isPrecommit: @Sendable (WireMessage) -> Bool = {
            if case .consensus(.vote(let signed)) = $0 { signed.vote.kind == .precommit && signed.vote.blockHash == blockHash } else { false }
        }
        try await eventually(10, "a precommit for the proposal") { hub.sent(by: proposer).contains(where: isPrecommit) }
        #expect(await engine.status().consensus?.lockedRound == 0)
        // The process dies.
        await engine.shutdown()
        hub.detach(proposer)
        let second = LocalHub()
        defer { second.stop() }
        let restarted = try await cluster.start(index, hub: second)
        let status = await restarted.status().consensus
        #expect(status?.height == 1)
        #expect(status?.round == 0)
        #expect(status?.lockedRound == 0)
        #expect(status?.step == "precommit")
        // Its own precommit goes out again to a peer that connects, identical to the first: signed once.
        // (It may have been sent more than once: a stalled height re-sends what it holds.)
        let original = Set(hub.sent(by: proposer).filter(isPrecommit))
        #expect(original.count == 1)
        let peer = cluster.id(others[2])
        second.deliver(.connected(peer, PeerHello(protocolVersion: 1, chainID: cluster.consortium.chainID,
                                                  genesisHash: cluster.consortium.genesisHash, validator: peer, height: 0,
                                                  lastBlockHash: cluster.consortium.genesisHash)), to: proposer)
        try await eventually(10, "held messages re-sent") { second.sent(by: proposer).contains(where: isPrecommit) }
        #expect(Set(second.sent(by: proposer).filter(isPrecommit)) == original)
        await restarted.shutdown()
    }

    /// Messages for the next height that arrive while the node is still deciding the current one are buffered
    /// by the core; they must reach the journal too. Here the next height's proposal and two prevotes arrive
    /// before the node commits height 1; it then commits, locks on the height-2 block, dies, and on restart is
    /// still locked on it.
    @Test func messagesBufferedForTheNextHeightAreJournalled() async throws {
        let cluster = try LocalConsortium(validators: 4)
        defer { cluster.remove() }
        let suite = cluster.consortium.suite
        let schedule = ProposerSchedule(cluster.consortium.validators)
        let proposer = schedule.proposer(height: 1, round: 0)
        let index = try #require(cluster.consortium.validators.members.firstIndex { $0.id == proposer })
        let others = (0..<4).filter { $0 != index }
        let hub = LocalHub()
        defer { hub.stop() }
        let engine = try await cluster.start(index, hub: hub)
        _ = try await engine.admit(try cluster.transactions(0..<3))
        try await eventually(10, "a proposal") { hub.sent(by: proposer).contains { if case .consensus(.proposal) = $0 { true } else { false } } }
        guard case .consensus(.proposal(let signed, let first)) = hub.sent(by: proposer).first(where: {
            if case .consensus(.proposal) = $0 { true } else { false }
        }) else { Issue.record("no proposal"); return }
        func vote(_ kind: VoteKind, height: UInt64, hash: Hash32, by other: Int) throws -> NetworkEvent {
            let vote = Vote(chainID: cluster.consortium.chainID, kind: kind, height: height, round: 0, blockHash: hash,
                            validator: cluster.id(other))
            return .message(cluster.id(other), .consensus(.vote(SignedVote(vote: vote, signature: try cluster.validatorKeys[other].sign(vote.signingBytes)))))
        }
        for other in others.prefix(2) { hub.deliver(try vote(.prevote, height: 1, hash: signed.proposal.blockHash, by: other), to: proposer) }
        // Height 2's proposal (an empty block on top of height 1) and two prevotes for it, before height 1 commits.
        let parent = first.header
        let nextProposer = schedule.proposer(height: 2, round: 0)
        let nextIndex = try #require(cluster.consortium.validators.members.firstIndex { $0.id == nextProposer })
        #expect(nextIndex != index)
        let empty = Block(header: BlockHeader(chainID: cluster.consortium.chainID, height: 2, timeMs: parent.timeMs,
                                              previousHash: parent.hash(suite),
                                              transactionsRoot: Block.transactionsRoot([], suite: suite),
                                              stateRoot: parent.stateRoot, validatorSetHash: cluster.consortium.validators.hash,
                                              proposer: nextProposer, transactionCount: 0), transactions: [])
        let emptyHash = empty.header.hash(suite)
        let proposal = Proposal(chainID: cluster.consortium.chainID, height: 2, round: 0, blockHash: emptyHash, polRound: nil,
                                proposer: nextProposer)
        let signedProposal = SignedProposal(proposal: proposal, signature: try cluster.validatorKeys[nextIndex].sign(proposal.signingBytes))
        hub.deliver(.message(nextProposer, .consensus(.proposal(signedProposal, empty))), to: proposer)
        let helpers = others.filter { $0 != nextIndex }.prefix(1) + [nextIndex]
        for other in helpers { hub.deliver(try vote(.prevote, height: 2, hash: emptyHash, by: other), to: proposer) }
        // Now height 1 gets its precommits and commits; height 2 starts from the buffer, and the node locks.
        for other in others.prefix(2) { hub.deliver(try vote(.precommit, height: 1, hash: signed.proposal.blockHash, by: other), to: proposer) }
        try await within(10, "height 1") { await engine.waitUntilHeight(1) }
        try await eventually(10, "a lock at height 2") {
            let status = await engine.status().consensus
            return status?.height == 2 && status?.lockedRound == 0
        }
        await engine.shutdown()
        hub.detach(proposer)
        let second = LocalHub()
        defer { second.stop() }
        let restarted = try await cluster.start(index, hub: second)
        let status = await restarted.status().consensus
        #expect(status?.height == 2)
        #expect(status?.lockedRound == 0, "the lock taken from buffered messages must survive a restart")
        await restarted.shutdown()
    }

    /// A behind node is sent a forged block by a peer: it drops the peer, keeps its height, and then accepts the
    /// genuine blocks from another.
    @Test func blockSyncRefusesForgedBlocksAndBadVotes() async throws {
        let cluster = try LocalConsortium(validators: 4)
        defer { cluster.remove() }
        let hub = LocalHub()
        defer { hub.stop() }
        var engines: [NodeEngine] = []
        for index in 0..<3 { engines.append(try await cluster.start(index, hub: hub)) }
        _ = try await engines[0].admit(try cluster.transactions(0..<10))
        try await expectAgreement(engines, atLeast: 1)
        let genuine = try await engines[0].record(at: 1)
        for engine in engines { await engine.shutdown() }
        hub.stop()

        // Node 3 alone, told by three peers that they are at height 1 (more than a third of the power must
        // claim a height before it is chased). The sync request goes to the first of them: the liar.
        let lonely = LocalHub()
        defer { lonely.stop() }
        let behind = try await cluster.start(3, hub: lonely)
        let liar = cluster.id(0), honest = cluster.id(1), voter = cluster.id(2)
        func hello(_ id: ValidatorID) -> PeerHello {
            PeerHello(protocolVersion: 1, chainID: cluster.consortium.chainID, genesisHash: cluster.consortium.genesisHash,
                      validator: id, height: 1, lastBlockHash: genuine.block.header.hash(cluster.consortium.suite))
        }
        for peer in [liar, honest, voter] { lonely.deliver(.connected(peer, hello(peer)), to: cluster.id(3)) }
        let syncRequests: @Sendable () -> Int = {
            lonely.sent(by: cluster.id(3)).filter { if case .syncRequest = $0 { true } else { false } }.count
        }
        try await eventually(10, "a sync request") { syncRequests() >= 1 }
        // The forged block: one transaction swapped for another correctly signed one (the root no longer matches).
        var forged = genuine
        forged.block.transactions[0] = try cluster.transactions(100..<101)[0]
        lonely.deliver(.message(liar, .syncResponse(fromHeight: 1, blocks: [forged])), to: cluster.id(3))
        try await eventually(10, "the liar dropped") { lonely.drops.contains { $0.peer == liar } }
        #expect(lonely.drops.first { $0.peer == liar }?.reason.contains("block sync") == true)
        #expect(await behind.height == 0)
        // It asks the next peer.
        try await eventually(10, "a second sync request") { syncRequests() >= 2 }
        // A vote with a wrong signature from another peer is refused the same way.
        let vote = Vote(chainID: cluster.consortium.chainID, kind: .prevote, height: 2, round: 0, blockHash: nil, validator: voter)
        lonely.deliver(.message(voter, .consensus(.vote(SignedVote(vote: vote, signature: [UInt8](repeating: 7, count: 64))))),
                       to: cluster.id(3))
        try await eventually(10, "the bad voter dropped") { lonely.drops.contains { $0.peer == voter } }
        #expect(lonely.drops.first { $0.peer == voter }?.reason.contains("wrong signature") == true)
        // The honest peer's genuine block is applied.
        lonely.deliver(.message(honest, .syncResponse(fromHeight: 1, blocks: [genuine])), to: cluster.id(3))
        try await within(10, "the genuine block") { await behind.waitUntilHeight(1) }
        #expect(try await behind.record(at: 1) == genuine)
        #expect(!lonely.drops.contains { $0.peer == honest })
        await behind.shutdown()
    }
}
