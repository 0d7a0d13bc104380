import XinlianCore
import XinlianCrypto

/// The checks every ledger applies, whoever runs it (the node's `NodeLedger`, the simulator's ledger): one
/// admission for pending transactions whatever their origin, and one check of a block's transactions whoever
/// proposed or certified it.
public enum LedgerRules {
    /// What a transaction must meet to become pending, after its signature (`TransactionRules.check`): its time
    /// against this node's clock, then the credit model's rules (payload schema, the reporter's roles, references).
    /// `referenced` resolves a reference to a pending or committed transaction.
    /// Returns the decoded statement (a ledger may keep it for ``creditFailures(_:consortium:personalRequired:decoded:committed:)``).
    @discardableResult
    public static func checkPending(_ transaction: Transaction, consortium: Consortium, clockMs: UInt64,
                                    origin: CreditRules.Origin,
                                    referenced: (Hash32) -> Transaction?) throws(VerificationError) -> CreditStatement {
        try TransactionRules.checkTime(transaction, clockMs: clockMs)
        let roles = consortium.institutionRoles[transaction.body.reporter] ?? []
        do {
            return try CreditRules.check(transaction: transaction, roles: roles, referenced: referenced, origin: origin,
                                         suite: consortium.suite)
        } catch {
            throw VerificationError(code: error.code, message: error.description)
        }
    }

    /// The credit model's rules for each transaction of a block, in order: references resolve to transactions
    /// earlier in the block or committed (never to pending ones). Refused transactions are not referable.
    ///
    /// `personalRequired`: every transaction's personal data must be carried and match its commitment (a proposal,
    /// a block built here); false for a block a quorum certified, which this node may hold without some of it.
    ///
    /// `decoded` gives the statement a transaction decoded to at its admission here, when the ledger kept it and the
    /// transaction (personal data included) is identical: it is not parsed and decoded again.
    public static func creditFailures(_ transactions: [Transaction], consortium: Consortium, personalRequired: Bool = true,
                                      decoded: (Hash32, Transaction) -> CreditStatement? = { _, _ in nil },
                                      committed: (Hash32) -> Transaction?) -> [Int: VerificationError] {
        var earlier: [Hash32: Transaction] = [:]
        var failures: [Int: VerificationError] = [:]
        for (index, transaction) in transactions.enumerated() {
            let roles = consortium.institutionRoles[transaction.body.reporter] ?? []
            let id = transaction.id(consortium.suite)
            do {
                try CreditRules.check(transaction: transaction, roles: roles, referenced: { id in
                    earlier[id] ?? committed(id)
                }, origin: .node, suite: consortium.suite, personalRequired: personalRequired,
                   decoded: decoded(id, transaction))
                earlier[id] = transaction
            } catch {
                failures[index] = VerificationError(code: error.code, message: error.description, transactionIndex: index)
            }
        }
        return failures
    }

    /// A block's transactions, whoever proposed or certified it (its header, limits and times are
    /// `BlockVerifier`'s): each signature (except where `alreadyChecked` says the identical transaction was
    /// admitted here), no transaction twice in the block or already committed (`isCommitted`), and the credit
    /// model's rules in order.
    ///
    /// Signatures are checked on up to `workers` threads, in groups of ``signatureGroup`` (a block whose first
    /// transaction is forged costs at most one group); the error is always the lowest failing index's, whatever
    /// the number of workers.
    public static func checkTransactions(_ transactions: [Transaction], consortium: Consortium, personalRequired: Bool = true,
                                         workers: Int = 1,
                                         decoded: (Hash32, Transaction) -> CreditStatement? = { _, _ in nil },
                                         alreadyChecked: (Hash32, Transaction) -> Bool,
                                         isCommitted: (Hash32) -> Bool,
                                         committed: (Hash32) -> Transaction?) throws(VerificationError) {
        let ids = transactions.map { $0.id(consortium.suite) }
        let unchecked = transactions.indices.filter { !alreadyChecked(ids[$0], transactions[$0]) }
        if let (_, failure) = Parallel.firstFailure(count: unchecked.count, workers: workers, group: signatureGroup, { position -> VerificationError? in
            let index = unchecked[position]
            do throws(VerificationError) {
                try TransactionRules.check(transactions[index], consortium: consortium, index: index)
            } catch {
                return error
            }
            return nil
        }) {
            throw failure
        }
        try checkUnique(ids, isCommitted: isCommitted)
        if let (index, failure) = creditFailures(transactions, consortium: consortium, personalRequired: personalRequired,
                                                 decoded: decoded, committed: committed)
            .min(by: { $0.key < $1.key }) {
            throw VerificationError(code: failure.code, message: "transaction \(index): \(failure.message)",
                                    transactionIndex: index)
        }
    }

    /// Signatures checked together before the first failure among them ends the check (``checkTransactions``).
    public static let signatureGroup = 256

    /// No transaction twice among `ids`, none already committed.
    public static func checkUnique(_ ids: [Hash32], isCommitted: (Hash32) -> Bool) throws(VerificationError) {
        guard Set(ids).count == ids.count else {
            throw VerificationError(code: "duplicate_transaction", message: "a transaction appears twice in the block")
        }
        for (index, id) in ids.enumerated() where isCommitted(id) {
            throw VerificationError(code: "duplicate_transaction", message: "transaction \(id) is already committed",
                                    transactionIndex: index)
        }
    }
}
