import Foundation
import XinlianConsensus
import XinlianCore
import XinlianCrypto
import XinlianNetwork

/// Carries network events into the engine in arrival order, checking on the way (off the engine's thread) what
/// can be checked without the ledger: transaction signatures and the signatures of proposals and votes. A
/// peer that sends something signed wrongly is disconnected; validators verify what they relay, so even a
/// relayed forgery is the relayer's fault.
public struct PeerEventPump: Sendable {
    public let engine: NodeEngine
    public let link: any PeerLink

    public init(engine: NodeEngine, link: any PeerLink) {
        self.engine = engine
        self.link = link
    }

    /// Consumes `events` until the stream ends or the task is cancelled.
    public func run(_ events: AsyncStream<NetworkEvent>) async {
        for await event in events {
            await process(event)
        }
    }

    public func process(_ event: NetworkEvent) async {
        guard case .message(let peer, let message) = event else {
            await engine.handle(event)
            return
        }
        if let reason = refusal(message) {
            await engine.dropPeer(peer, reason: reason)
            return
        }
        await engine.handle(event)
    }

    /// Why `message` must be refused before it reaches the engine, or nil.
    func refusal(_ message: WireMessage) -> String? {
        let consortium = engine.consortium
        switch message {
        case .transactions(let transactions):
            for (index, transaction) in transactions.enumerated() {
                do { try TransactionRules.check(transaction, consortium: consortium) } catch {
                    return "gossiped transaction \(index) refused: \(error)"
                }
            }
            return nil
        case .consensus(.vote(let signed)):
            let vote = signed.vote
            guard let member = consortium.validators.member(vote.validator) else {
                return "vote from \(vote.validator), who is not a validator"
            }
            guard member.publicKey.isValidSignature(signed.signature, for: vote.signingBytes) else {
                return "vote of \(vote.validator) at height \(vote.height) round \(vote.round) has a wrong signature"
            }
            return nil
        case .consensus(.proposal(let signed, let block)):
            let proposal = signed.proposal
            guard let member = consortium.validators.member(proposal.proposer) else {
                return "proposal from \(proposal.proposer), who is not a validator"
            }
            guard member.publicKey.isValidSignature(signed.signature, for: proposal.signingBytes) else {
                return "proposal of \(proposal.proposer) at height \(proposal.height) has a wrong signature"
            }
            guard block.header.hash(consortium.suite) == proposal.blockHash else {
                return "proposal at height \(proposal.height) carries a block that is not the one proposed"
            }
            // The header is signed; the transactions travel beside it and must be the ones it commits to, or a
            // relayer could swap them and have an honest proposal refused.
            guard block.transactions.count == Int(block.header.transactionCount),
                Block.transactionsRoot(block.transactions, suite: consortium.suite) == block.header.transactionsRoot
            else {
                return "proposal at height \(proposal.height) carries transactions that are not the block's"
            }
            return nil
        case .hello, .status, .syncRequest, .syncResponse:
            return nil
        }
    }
}

extension NodeEngine {
    /// Disconnects a peer that broke the protocol (see ``PeerEventPump``).
    public func dropPeer(_ peer: ValidatorID, reason: String) {
        drop(peer, reason: reason)
    }
}
