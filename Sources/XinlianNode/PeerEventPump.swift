import Foundation
import Synchronization
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
    /// Proposals and votes already checked recently: a duplicate (re-gossip, or a peer replaying) is dropped
    /// here without a second signature check.
    private let recent = RecentBox()
    /// The proposer schedule and genesis's block limits: checked before a proposal's signature, so that an
    /// off-schedule or oversized proposal costs nothing but this lookup.
    private let rules: PeerGate.Rules

    final class RecentBox: Sendable {
        let state = Mutex(RecentMessages())
    }

    struct RecentMessages {
        var keys: Set<[UInt8]> = []
        var order: [[UInt8]] = []
        var next = 0

        func contains(_ key: [UInt8]) -> Bool { keys.contains(key) }

        /// Remembers `key`, forgetting the oldest past the limit.
        mutating func insert(_ key: [UInt8]) {
            guard keys.insert(key).inserted else { return }
            if order.count < PeerEventPump.recentLimit {
                order.append(key)
            } else {
                keys.remove(order[next])
                order[next] = key
                next = (next + 1) % PeerEventPump.recentLimit
            }
        }
    }

    /// Signed proposals and votes remembered for duplicate dropping.
    static let recentLimit = 65_536

    public init(engine: NodeEngine, link: any PeerLink) {
        self.engine = engine
        self.link = link
        self.rules = PeerGate.Rules(chainID: engine.consortium.chainID, validators: engine.consortium.validators,
                                    parameters: engine.consortium.genesis.parameters)
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
        // The signed part identifies a proposal or vote (a proposal's block is bound to it by its hash). It is
        // remembered only once the engine took it, so neither a forged copy nor a message that came too early
        // can shadow a later genuine one. Heights the engine cannot use are dropped before any signature check.
        var key: [UInt8]?
        if case .consensus(let consensus) = message {
            let next = engine.tip.withLock { $0.height } + 1
            guard consensus.height >= next, consensus.height <= next + ConsensusCore.futureHeightsLimit else { return }
            let signed: [UInt8] = switch consensus {
            case .proposal(let signed, _): [1] + signed.canonicalBytes
            case .vote(let signed): [2] + signed.canonicalBytes
            }
            guard !recent.state.withLock({ $0.contains(signed) }) else { return }
            key = signed
        }
        if let reason = refusal(message) {
            await engine.dropPeer(peer, reason: reason)
            return
        }
        if await engine.handle(event), let key { recent.state.withLock { $0.insert(key) } }
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
            if let reason = rules.refusal(.vote(signed)) { return reason }
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
            // Cheap checks first: the proposer schedule and genesis's block limits, before any signature or hash.
            if let reason = rules.refusal(.proposal(signed, block)) { return reason }
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
