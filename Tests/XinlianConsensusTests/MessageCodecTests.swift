import Testing
import XinlianConsensus
import XinlianCore
import XinlianCrypto

@Suite("Consensus message encodings")
struct MessageCodecTests {
    let hash = Hash32(bytes: [UInt8](repeating: 0xAB, count: 32))

    @Test("proposal bytes are exactly as documented, and signing bytes start with 0x23")
    func proposalLayout() throws {
        let hash = try #require(self.hash)
        let proposal = Proposal(chainID: "c", height: 2, round: 3, blockHash: hash, polRound: 1, proposer: "v")
        var expected: [UInt8] = [2, 0, 0, 0, 1, 0x63]
        expected += [0, 0, 0, 0, 0, 0, 0, 2] + [0, 0, 0, 3] + hash.bytes + [1, 0, 0, 0, 1] + [0, 0, 0, 1, 0x76] + [0]
        #expect(proposal.canonicalBytes == expected)
        #expect(proposal.signingBytes == [0x23] + expected)
        var none = proposal
        none.polRound = nil
        #expect(none.canonicalBytes.count == expected.count - 4)
        #expect(try Proposal(canonicalBytes: none.canonicalBytes, limit: ConsensusLimits.signedProposalBytes) == none)
    }

    @Test("signed proposals, votes and messages round-trip")
    func roundTrip() throws {
        let cluster = try TestCluster()
        let block = cluster.block(proposer: cluster.proposer(round: 0))
        let proposal = try cluster.signedProposal(block, round: 2, polRound: 0)
        let vote = try cluster.vote(.precommit, cluster.hash(block), by: cluster.ids[1], round: 2)
        let nilVote = try cluster.vote(.prevote, nil, by: cluster.ids[2])
        #expect(try SignedProposal(canonicalBytes: proposal.canonicalBytes, limit: ConsensusLimits.signedProposalBytes) == proposal)
        #expect(try SignedVote(canonicalBytes: vote.canonicalBytes, limit: ConsensusLimits.signedVoteBytes) == vote)
        for message in [ConsensusMessage.proposal(proposal, block), .vote(vote), .vote(nilVote)] {
            #expect(try ConsensusMessage.decode(message.canonicalBytes) == message)
        }
    }

    @Test("decoders refuse trailing bytes, unknown tags, oversized signatures and a polRound not below the round")
    func rejections() throws {
        let cluster = try TestCluster()
        let vote = try cluster.vote(.prevote, nil, by: cluster.ids[0])
        let bytes = ConsensusMessage.vote(vote).canonicalBytes
        #expect(throws: DecodingError.self) { try ConsensusMessage.decode(bytes + [0]) }
        #expect(throws: DecodingError.self) { try ConsensusMessage.decode([9] + bytes.dropFirst()) }
        var oversized = vote
        oversized.signature = [UInt8](repeating: 1, count: Limits.signatureBytes + 1)
        #expect(throws: DecodingError.self) {
            try SignedVote(canonicalBytes: oversized.canonicalBytes, limit: ConsensusLimits.signedVoteBytes)
        }
        let hash = try #require(self.hash)
        let bad = Proposal(chainID: "c", height: 1, round: 1, blockHash: hash, polRound: 1, proposer: "v")
        do {
            _ = try Proposal(canonicalBytes: bad.canonicalBytes, limit: ConsensusLimits.signedProposalBytes)
            Issue.record("accepted polRound == round")
        } catch {
            #expect(error.code == "invalid_value")
        }
        #expect(throws: DecodingError.self) {
            try ConsensusMessage(canonicalBytes: bytes, limit: bytes.count - 1)
        }
    }
}
