import XinlianCore
import XinlianCrypto

extension PeerGate.Rules {
    /// Why a peer's frame must be refused (and the peer disconnected) before a replica sees it, or nil: what can be
    /// checked without the ledger. Gossiped transactions must be signed by their reporters; a vote or proposal must
    /// pass ``refusal(_:)`` (cheap, first) and carry its signer's signature; a proposal's block must be the one
    /// proposed and its transactions the ones its header commits to. Validators verify what they relay, so even a
    /// relayed forgery is the relayer's fault. The node runs this off its engine's thread; the simulator runs it
    /// on every delivery.
    public func frameRefusal(_ message: WireMessage, consortium: Consortium,
                             verifier: any SignatureVerifier) -> String? {
        switch message {
        case .transactions(let transactions):
            for (index, transaction) in transactions.enumerated() {
                do { try TransactionRules.check(transaction, consortium: consortium) } catch {
                    return "gossiped transaction \(index) refused: \(error)"
                }
                // An honest node forwards a statement with exactly the personal data its reporter committed to; a
                // relayer that strips or swaps it would otherwise have the reporter's statement refused as its own.
                guard transaction.carriesMatchingPersonalData(consortium.suite) else {
                    return "gossiped transaction \(index) carries personal data that does not match its commitment"
                }
            }
            return nil
        case .consensus(.vote(let signed)):
            if let reason = refusal(.vote(signed)) { return reason }
            let vote = signed.vote
            guard let member = validators.member(vote.validator) else {
                return "vote from \(vote.validator), who is not a validator"
            }
            guard verifier.isValid(signature: signed.signature, message: vote.signingBytes, key: member.publicKey) else {
                return "vote of \(vote.validator) at height \(vote.height) round \(vote.round) has a wrong signature"
            }
            return nil
        case .consensus(.proposal(let signed, let block)):
            let proposal = signed.proposal
            guard let member = validators.member(proposal.proposer) else {
                return "proposal from \(proposal.proposer), who is not a validator"
            }
            // Cheap checks first: the proposer schedule and genesis's block limits, before any signature or hash.
            if let reason = refusal(.proposal(signed, block)) { return reason }
            guard verifier.isValid(signature: signed.signature, message: proposal.signingBytes, key: member.publicKey) else {
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
            // And the personal data beside them must be what the proposer signed.
            guard proposal.carriesSignedPersonalData(block, suite: consortium.suite) else {
                return "proposal at height \(proposal.height) carries personal data its proposer did not sign"
            }
            return nil
        case .hello, .status, .syncRequest, .syncResponse:
            return nil
        }
    }
}
