import Testing
import XinlianConsensus
import XinlianCore
import XinlianCrypto

@Suite("Consensus core")
struct CoreTests {
    @Test("happy path: 4 validators decide one height, and the certificate verifies")
    func happyPath() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: cluster.nonProposer())
        let started = try node.feed(cluster.start)
        #expect(started.timeouts.map(\.0) == [Timeout(height: 1, round: 0, step: .propose)])
        #expect(started.timeouts.first?.1 == TimeoutConfig.standard.proposeMs)
        let block = cluster.block(proposer: cluster.proposer(round: 0))
        let hash = cluster.hash(block)
        let afterProposal = try node.feed(.proposal(try cluster.signedProposal(block, round: 0), block))
        #expect(afterProposal.contains(.validateBlock(block)))
        #expect(afterProposal.votesToSign.map(\.kind) == [.prevote])
        #expect(afterProposal.votesToSign.first?.blockHash == hash)
        #expect(afterProposal.contains { if case .broadcastVote = $0 { true } else { false } })
        let othersVoting = Array(node.others.prefix(2))
        let afterPrevotes = try node.votes(.prevote, hash, from: othersVoting)
        #expect(afterPrevotes.votesToSign.map(\.kind) == [.precommit])
        #expect(node.core.status.lockedRound == 0 && node.core.status.lockedBlockHash == hash)
        let afterPrecommits = try node.votes(.precommit, hash, from: othersVoting)
        let commit = try #require(afterPrecommits.commits.first)
        #expect(commit.0 == block)
        #expect(commit.1.signatures.count == 3)
        try BlockVerifier.checkCertificate(commit.1, header: block.header, consortium: cluster.consortium)
        #expect(node.core.phase == .decided)
        // Late votes after the decision change nothing.
        #expect(try node.votes(.precommit, hash, from: [node.others[2]]).isEmpty)
    }

    @Test("the proposer builds, signs, broadcasts, then prevotes its own block")
    func proposerPath() throws {
        let cluster = try TestCluster()
        let proposer = cluster.proposer(round: 0)
        var core = cluster.core(for: proposer)
        let started = core.step(cluster.start)
        #expect(started.contains(.buildBlock(height: 1, round: 0)))
        let block = cluster.block(proposer: proposer)
        let built = core.step(.blockBuilt(block))
        let request = try #require(built.signRequests.first)
        guard case .proposal(let proposal) = request else { Issue.record("expected a proposal"); return }
        #expect(proposal.blockHash == cluster.hash(block) && proposal.polRound == nil && proposal.round == 0)
        let signed = core.step(try cluster.answer(request, as: proposer))
        #expect(signed.first.map { if case .broadcastProposal(_, let sent) = $0 { sent == block } else { false } } == true)
        #expect(signed.votesToSign.map(\.blockHash) == [cluster.hash(block)])
    }

    @Test("an invalid block gets a nil prevote")
    func invalidBlock() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: cluster.nonProposer())
        try node.feed(cluster.start)
        let block = cluster.block(proposer: cluster.proposer(round: 0))
        let actions = try node.feed(.proposal(try cluster.signedProposal(block, round: 0), block), valid: false)
        #expect(actions.votesToSign.map(\.blockHash) == [nil])
    }

    @Test("timeouts: propose → nil prevote, nil quorum → nil precommit, precommit timeout → next round with longer timeout")
    func timeoutsAdvanceRounds() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: cluster.nonProposer(round: 0))
        try node.feed(cluster.start)
        let prevoted = try node.feed(.timeout(Timeout(height: 1, round: 0, step: .propose)))
        #expect(prevoted.votesToSign.map(\.blockHash) == [nil])
        #expect(node.core.step == .prevote)
        let others = Array(node.others.prefix(2))
        let precommitted = try node.votes(.prevote, nil, from: others)
        #expect(precommitted.votesToSign.map(\.kind) == [.precommit])
        #expect(precommitted.votesToSign.first?.blockHash == nil)
        let armed = try node.votes(.precommit, nil, from: others)
        #expect(armed.timeouts.map(\.0) == [Timeout(height: 1, round: 0, step: .precommit)])
        #expect(armed.commits.isEmpty)
        let next = try node.feed(.timeout(Timeout(height: 1, round: 0, step: .precommit)))
        #expect(node.core.round == 1 && node.core.step == .propose)
        let standard = TimeoutConfig.standard
        #expect(next.timeouts.first?.1 == standard.proposeMs + standard.proposeDeltaMs)
        // A stale timeout from round 0 does nothing.
        #expect(try node.feed(.timeout(Timeout(height: 1, round: 0, step: .propose))).isEmpty)
    }

    @Test("a prevote quorum for anything arms the prevote timeout, which precommits nil")
    func prevoteTimeout() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: cluster.nonProposer())
        try node.feed(cluster.start)
        try node.feed(.timeout(Timeout(height: 1, round: 0, step: .propose)))
        let someHash = cluster.suite.hash([1])
        let armed = try node.votes(.prevote, someHash, from: [node.others[0]])
            + node.votes(.prevote, nil, from: [node.others[1]])
        #expect(armed.timeouts.map(\.0) == [Timeout(height: 1, round: 0, step: .prevote)])
        let fired = try node.feed(.timeout(Timeout(height: 1, round: 0, step: .prevote)))
        #expect(fired.votesToSign.map(\.kind) == [.precommit] && fired.votesToSign.first?.blockHash == nil)
    }

    @Test("votes from non-validators, with bad signatures or for another chain are ignored")
    func badVotesIgnored() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: cluster.nonProposer())
        try node.feed(cluster.start)
        try node.feed(.timeout(Timeout(height: 1, round: 0, step: .propose)))
        let outsider = try cluster.vote(.prevote, nil, by: "stranger", key: cluster.outsiderKey)
        let forged = try cluster.vote(.prevote, nil, by: node.others[0], key: cluster.outsiderKey)
        var otherChain = try cluster.vote(.prevote, nil, by: node.others[1])
        otherChain.vote.chainID = "other-chain"
        var ignored: [ConsensusAction] = []
        for vote in [outsider, forged, otherChain] { ignored += try node.feed(.vote(vote)) }
        #expect(ignored.isEmpty)
        // One genuine vote plus our own is not a quorum: still no precommit.
        #expect(try node.votes(.prevote, nil, from: [node.others[2]]).votesToSign.isEmpty)
        #expect(node.core.step == .prevote)
    }

    @Test("a proposal from the wrong proposer or with a bad signature is ignored")
    func badProposalsIgnored() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: cluster.nonProposer())
        try node.feed(cluster.start)
        let impostor = try #require(cluster.ids.first { $0 != cluster.proposer(round: 0) && $0 != node.local })
        let block = cluster.block(proposer: impostor)
        #expect(try node.feed(.proposal(try cluster.signedProposal(block, round: 0, by: impostor), block)).isEmpty)
        var tampered = try cluster.signedProposal(block, round: 0)
        tampered.signature[0] ^= 1
        #expect(try node.feed(.proposal(tampered, block)).isEmpty)
        let other = cluster.block(proposer: cluster.proposer(round: 0), time: 7)
        #expect(try node.feed(.proposal(try cluster.signedProposal(block, round: 0), other)).isEmpty)
    }

    @Test("conflicting votes from one validator are reported once as evidence and counted once")
    func equivocationEvidence() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: cluster.nonProposer())
        try node.feed(cluster.start)
        let cheater = node.others[0]
        let first = try cluster.vote(.prevote, cluster.suite.hash([1]), by: cheater)
        let second = try cluster.vote(.prevote, cluster.suite.hash([2]), by: cheater)
        let third = try cluster.vote(.prevote, nil, by: cheater)
        #expect(try node.feed(.vote(first)).isEmpty)
        #expect(try node.feed(.vote(second)).evidence == [.votes(first, second)])
        #expect(try node.feed(.vote(third)).isEmpty)
        #expect(try node.feed(.vote(first)).isEmpty)
        // A precommit at the same round is a different step: no evidence.
        #expect(try node.feed(.vote(try cluster.vote(.precommit, nil, by: cheater))).evidence.isEmpty)
    }

    @Test("an equivocator's conflicting vote for the proposed block counts toward that block's quorum")
    func conflictingVoteCounts() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: cluster.nonProposer())
        try node.feed(cluster.start)
        let block = cluster.block(proposer: cluster.proposer(round: 0))
        let hash = cluster.hash(block)
        try node.feed(.proposal(try cluster.signedProposal(block, round: 0), block))
        let cheater = node.others[0]
        try node.votes(.prevote, nil, from: [cheater])
        // A conflicting vote for a value no proposal names is evidence, but does not count.
        let stray = try node.feed(.vote(try cluster.vote(.prevote, cluster.suite.hash([7]), by: cheater)))
        #expect(stray.evidence.count == 1)
        #expect(try node.votes(.prevote, hash, from: [cheater]).evidence.isEmpty)
        let actions = try node.votes(.prevote, hash, from: [node.others[1]])
        #expect(actions.votesToSign.map(\.kind) == [.precommit] && actions.votesToSign.first?.blockHash == hash)
        let held = node.core.heldMessages.filter { if case .vote(let v) = $0 { v.vote.validator == cheater } else { false } }
        #expect(held.count == 2)
    }

    @Test("two different proposals from the proposer in one round are evidence")
    func proposalEquivocation() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: cluster.nonProposer())
        try node.feed(cluster.start)
        let proposer = cluster.proposer(round: 0)
        let a = cluster.block(proposer: proposer), b = cluster.block(proposer: proposer, time: 1)
        let signedA = try cluster.signedProposal(a, round: 0), signedB = try cluster.signedProposal(b, round: 0)
        try node.feed(.proposal(signedA, a))
        #expect(try node.feed(.proposal(signedB, b)).evidence == [.proposals(signedA, signedB)])
    }
}
