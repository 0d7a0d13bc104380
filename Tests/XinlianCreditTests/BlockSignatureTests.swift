import Testing
import XinlianCore
import XinlianCredit
import XinlianCrypto

/// `LedgerRules.checkTransactions` checks signatures on several threads: the verdict must be the sequential one.
@Suite struct BlockSignatureTests {
    static func forged(_ transaction: Transaction) -> Transaction {
        var signature = transaction.signature
        signature[0] ^= 0x01
        return Transaction(body: transaction.body, signature: signature, personal: transaction.personal)
    }

    static func failure(_ transactions: [Transaction], _ consortium: Consortium, workers: Int,
                        alreadyChecked: Set<Int> = []) -> VerificationError? {
        let ids = transactions.map { $0.id(consortium.suite) }
        do {
            try LedgerRules.checkTransactions(transactions, consortium: consortium, workers: workers,
                                              alreadyChecked: { id, _ in ids.firstIndex(of: id).map(alreadyChecked.contains) ?? false },
                                              isCommitted: { _ in false }, committed: { _ in nil })
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [1, 2, 5])
    func theLowestForgedIndexIsReportedWithAnyWorkers(workers: Int) throws {
        let chain = try VerifierChain()
        var transactions = try (0..<600).map { nonce in
            let digits = String(nonce)
            let subject = try USCC.withCheckCharacter("91330106MA" + String(repeating: "0", count: 7 - digits.count) + digits)
            let (signed, personal) = try PersonalFields.separate(.object(Examples.payload(.registration)),
                                                                 salt: Array(repeating: 7, count: 32), suite: chain.suite)
            let body = TransactionBody(chainID: chain.consortium.chainID, kind: .registration, reporter: "registry",
                                       subject: subject, timeMs: Fixture.noon(Fixture.today), nonce: UInt64(nonce),
                                       payload: signed)
            return try Transaction.sign(body, with: try #require(chain.institutionKeys["registry"]), personal: personal)
        }
        #expect(Self.failure(transactions, chain.consortium, workers: workers) == nil)
        transactions[420] = Self.forged(transactions[420])
        #expect(Self.failure(transactions, chain.consortium, workers: workers)?.transactionIndex == 420)
        transactions[7] = Self.forged(transactions[7])
        let first = try #require(Self.failure(transactions, chain.consortium, workers: workers))
        #expect(first.code == "bad_signature")
        #expect(first.transactionIndex == 7)
        // A transaction this node admitted itself is not checked again (its signature was).
        #expect(Self.failure(transactions, chain.consortium, workers: workers, alreadyChecked: [7])?.transactionIndex == 420)
    }
}
