import Testing
import XinlianConsensus
import XinlianCore
import XinlianCrypto

@Suite("Locking, valid value and round changes")
struct LockingTests {
    /// The validator that proposes in none of rounds 0, 1, 2 of height 1 (4 equal validators).
    func bystander(_ cluster: TestCluster) throws -> ValidatorID {
        let proposers = Set((0..<3).map { cluster.proposer(round: UInt32($0)) })
        return try #require(cluster.ids.first { !proposers.contains($0) })
    }

    /// Round 0: the node prevotes and locks on A; the others precommit nil; the precommit timeout moves it to round 1.
    func lockOnAInRoundZero(_ node: inout Harness) throws -> Block {
        let cluster = node.cluster
        try node.feed(cluster.start)
        let a = cluster.block(proposer: cluster.proposer(round: 0))
        try node.feed(.proposal(try cluster.signedProposal(a, round: 0), a))
        let voters = node.others.filter { $0 != cluster.proposer(round: 1) }.prefix(2)
        try node.votes(.prevote, cluster.hash(a), from: Array(voters))
        #expect(node.core.status.lockedRound == 0)
        try node.votes(.precommit, nil, from: Array(voters))
        try node.feed(.timeout(Timeout(height: 1, round: 0, step: .precommit)))
        #expect(node.core.round == 1)
        return a
    }

    @Test("a locked node prevotes nil for a different value without a newer proof of lock")
    func lockHolds() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: try bystander(cluster))
        let a = try lockOnAInRoundZero(&node)
        let b = cluster.block(proposer: cluster.proposer(round: 1), time: 5)
        let actions = try node.feed(.proposal(try cluster.signedProposal(b, round: 1), b))
        #expect(actions.votesToSign.map(\.blockHash) == [nil])
        // The lock survives into round 2: A re-proposed with its proof of lock from round 0 gets our prevote.
        try node.votes(.prevote, nil, from: Array(node.others.prefix(2)), round: 1)
        try node.votes(.precommit, nil, from: Array(node.others.prefix(2)), round: 1)
        try node.feed(.timeout(Timeout(height: 1, round: 1, step: .precommit)))
        let again = try node.feed(.proposal(try cluster.signedProposal(a, round: 2, polRound: 0), a))
        #expect(again.votesToSign.map(\.blockHash) == [cluster.hash(a)])
        #expect(node.core.status.lockedBlockHash == cluster.hash(a))
    }

    @Test("a prevote quorum for another value in a later round moves the lock (lines 36-43)")
    func lockMovesToNewerProofOfLock() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: try bystander(cluster))
        _ = try lockOnAInRoundZero(&node)
        let b = cluster.block(proposer: cluster.proposer(round: 1), time: 5)
        try node.feed(.proposal(try cluster.signedProposal(b, round: 1), b))
        let actions = try node.votes(.prevote, cluster.hash(b), from: node.others, round: 1)
        #expect(actions.votesToSign.map(\.kind) == [.precommit])
        #expect(actions.votesToSign.first?.blockHash == cluster.hash(b))
        #expect(node.core.status.lockedRound == 1 && node.core.status.lockedBlockHash == cluster.hash(b))
        #expect(node.core.status.validRound == 1)
    }

    @Test("a proposal whose proof of lock is newer than our lock unlocks us (lines 28-33)")
    func unlockByProofOfLock() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: try bystander(cluster))
        _ = try lockOnAInRoundZero(&node)
        let b = cluster.block(proposer: cluster.proposer(round: 1), time: 5)
        // Round 1: we never see the proposal; the others prevote B; we precommit nil on timeouts.
        try node.feed(.timeout(Timeout(height: 1, round: 1, step: .propose)))
        try node.votes(.prevote, cluster.hash(b), from: node.others, round: 1)
        try node.feed(.timeout(Timeout(height: 1, round: 1, step: .prevote)))
        try node.votes(.precommit, nil, from: Array(node.others.prefix(2)), round: 1)
        try node.feed(.timeout(Timeout(height: 1, round: 1, step: .precommit)))
        #expect(node.core.round == 2 && node.core.status.lockedRound == 0)
        let signed = try cluster.signedProposal(b, round: 2, polRound: 1)
        let actions = try node.feed(.proposal(signed, b))
        #expect(actions.votesToSign.map(\.blockHash) == [cluster.hash(b)])
    }

    @Test("without the proof-of-lock prevotes, a proposal naming a polRound waits for the timeout")
    func proofOfLockRequired() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: cluster.nonProposer(round: 1))
        try node.feed(cluster.start)
        try node.feed(.timeout(Timeout(height: 1, round: 0, step: .propose)))
        try node.votes(.prevote, nil, from: Array(node.others.prefix(2)))
        try node.votes(.precommit, nil, from: Array(node.others.prefix(2)))
        try node.feed(.timeout(Timeout(height: 1, round: 0, step: .precommit)))
        let b = cluster.block(proposer: cluster.proposer(round: 1))
        let actions = try node.feed(.proposal(try cluster.signedProposal(b, round: 1, polRound: 0), b))
        #expect(actions.votesToSign.isEmpty)
        #expect(try node.feed(.timeout(Timeout(height: 1, round: 1, step: .propose))).votesToSign.map(\.blockHash) == [nil])
    }

    @Test("the next proposer re-proposes its valid value with its round instead of building")
    func validValueReproposed() throws {
        let cluster = try TestCluster()
        let nextProposer = cluster.proposer(round: 1)
        var node = Harness(cluster, local: nextProposer)
        try node.feed(cluster.start)
        let a = cluster.block(proposer: cluster.proposer(round: 0))
        try node.feed(.proposal(try cluster.signedProposal(a, round: 0), a))
        let voters = Array(node.others.prefix(2))
        try node.votes(.prevote, cluster.hash(a), from: voters)
        try node.votes(.precommit, nil, from: voters)
        let next = try node.feed(.timeout(Timeout(height: 1, round: 0, step: .precommit)))
        #expect(!next.contains(.buildBlock(height: 1, round: 1)))
        let proposals = next.signRequests.compactMap { if case .proposal(let p) = $0 { p } else { nil } }
        #expect(proposals.map(\.blockHash) == [cluster.hash(a)] && proposals.first?.polRound == 0)
        #expect(next.contains { if case .broadcastProposal(_, let block) = $0 { block == a } else { false } })
    }

    @Test("messages from more than a third of the power in a later round move the node there")
    func roundSkip() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: cluster.ids[0])
        try node.feed(cluster.start)
        try node.votes(.prevote, nil, from: [cluster.ids[1]], round: 5)
        #expect(node.core.round == 0)
        let moved = try node.votes(.precommit, nil, from: [cluster.ids[2]], round: 5)
        #expect(node.core.round == 5)
        #expect(moved.timeouts.first?.0 == Timeout(height: 1, round: 5, step: .propose))
    }

    @Test("a decision in an earlier round commits even after moving on")
    func commitFromEarlierRound() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: cluster.nonProposer())
        try node.feed(cluster.start)
        let a = cluster.block(proposer: cluster.proposer(round: 0))
        try node.feed(.proposal(try cluster.signedProposal(a, round: 0), a))
        try node.votes(.precommit, nil, from: [node.others[0]], round: 3)
        try node.votes(.precommit, nil, from: [node.others[1]], round: 3)
        #expect(node.core.round == 3)
        let actions = try node.votes(.precommit, cluster.hash(a), from: node.others, round: 0)
        #expect(actions.commits.map(\.1.round) == [0])
    }
}

@Suite("Proposer rotation")
struct ProposerTests {
    @Test("equal power rotates round-robin")
    func roundRobin() throws {
        let cluster = try TestCluster()
        let proposers = (1...8).map { cluster.proposer(height: UInt64($0), round: 0) }
        #expect(Set(proposers.prefix(4)).count == 4)
        #expect(Array(proposers.prefix(4)) == Array(proposers.suffix(4)))
    }

    @Test("proposals are weighted by voting power", arguments: [[UInt64(1), 2, 3, 4], [5, 1, 1], [3, 3, 6]])
    func weighted(powers: [UInt64]) throws {
        let cluster = try TestCluster(powers: powers)
        let divisor = powers.reduce(0) { gcd($0, $1) }
        let period = powers.reduce(0, +) / divisor
        var counts: [ValidatorID: UInt64] = [:]
        for height in 1...(3 * period) { counts[cluster.proposer(height: height, round: 0), default: 0] += 1 }
        for (index, member) in cluster.validators.members.enumerated() {
            #expect(counts[member.id] == 3 * powers[index] / divisor)
        }
    }

    @Test("round r of height h is proposed by the proposer of height h + r, round 0")
    func roundsAdvanceTheSchedule() throws {
        let cluster = try TestCluster(powers: [1, 2, 3, 4])
        for height in UInt64(1)...5 {
            for round in UInt32(0)...6 {
                #expect(cluster.proposer(height: height, round: round)
                    == cluster.proposer(height: height + UInt64(round), round: 0))
            }
        }
    }

    @Test("huge power totals are scaled but every validator still proposes")
    func scaled() throws {
        let cluster = try TestCluster(powers: [ValidatorSet.powerLimit, 1, ValidatorSet.powerLimit / 3])
        let schedule = cluster.schedule
        #expect(UInt64(schedule.sequence.count) <= ProposerSchedule.periodLimit + 3)
        #expect(Set(schedule.sequence) == Set(cluster.ids))
    }

    func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 { b == 0 ? a : gcd(b, a % b) }
}

@Suite("Bounded buffering")
struct BufferingTests {
    @Test("messages for the next heights are buffered and replayed at start; farther ones are dropped")
    func futureHeights() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: cluster.ids[0])
        try node.feed(cluster.start)
        let near = try cluster.vote(.prevote, nil, by: cluster.ids[1], height: 2)
        let nearLateRound = try cluster.vote(.prevote, nil, by: cluster.ids[1], round: ConsensusCore.futureRoundsLimit + 1,
                                             height: 2)
        let far = try cluster.vote(.prevote, nil, by: cluster.ids[2], height: 1 + ConsensusCore.futureHeightsLimit + 1)
        for vote in [near, nearLateRound, far] { #expect(try node.feed(.vote(vote)).isEmpty) }
        #expect(node.core.heldMessages.isEmpty)
        try node.feed(.start(height: 2, validators: cluster.validators, previousBlockHash: cluster.suite.hash([9])))
        #expect(node.core.heldMessages == [.vote(near)])
        try node.feed(.start(height: 1 + ConsensusCore.futureHeightsLimit + 1, validators: cluster.validators,
                             previousBlockHash: cluster.suite.hash([9])))
        #expect(node.core.heldMessages.isEmpty)
    }

    @Test("rounds beyond the future-round window are dropped; a start for an older height is ignored")
    func futureRounds() throws {
        let cluster = try TestCluster()
        var node = Harness(cluster, local: cluster.ids[0])
        try node.feed(cluster.start)
        let inside = try cluster.vote(.prevote, nil, by: cluster.ids[1], round: ConsensusCore.futureRoundsLimit)
        let outside = try cluster.vote(.prevote, nil, by: cluster.ids[1], round: ConsensusCore.futureRoundsLimit + 1)
        try node.feed(.vote(inside))
        try node.feed(.vote(outside))
        #expect(node.core.heldMessages == [.vote(inside)])
        #expect(try node.feed(cluster.start).isEmpty)
    }

    @Test("a non-validator observer follows without asking to sign")
    func observer() throws {
        let cluster = try TestCluster()
        var core = cluster.core(for: nil)
        _ = core.step(cluster.start)
        let a = cluster.block(proposer: cluster.proposer(round: 0))
        var actions = core.step(.proposal(try cluster.signedProposal(a, round: 0), a))
        actions += core.step(.blockValidated(hash: cluster.hash(a), valid: true))
        for voter in cluster.ids.prefix(3) {
            actions += core.step(.vote(try cluster.vote(.prevote, cluster.hash(a), by: voter)))
            actions += core.step(.vote(try cluster.vote(.precommit, cluster.hash(a), by: voter)))
        }
        #expect(actions.signRequests.isEmpty)
        #expect(actions.commits.count == 1)
    }
}
