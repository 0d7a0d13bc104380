import Testing
import XinlianCore
import XinlianCrypto

/// Block rules every validator, block sync and the auditor apply to every block, whoever proposed it (issue 8,
/// attacks 1 and 4: they used to hold only for the blocks a node built itself).
@Suite("Block rules for others' blocks")
struct BlockRuleTests {
    static func block(_ fixture: TestConsortium, _ transactions: [Transaction], timeMs: UInt64 = 1_764_000_000_001) -> Block {
        Block(header: BlockHeader(chainID: fixture.consortium.chainID, height: 1, timeMs: timeMs,
                                  previousHash: fixture.consortium.genesisHash,
                                  transactionsRoot: Block.transactionsRoot(transactions, suite: fixture.consortium.suite),
                                  stateRoot: .zero, validatorSetHash: fixture.consortium.validators.hash, proposer: "node0",
                                  transactionCount: UInt32(transactions.count)),
              transactions: transactions)
    }

    static func code(_ body: () throws -> Void) -> String? {
        do { try body() } catch let error as VerificationError { return error.code } catch { return "\(error)" }
        return nil
    }

    @Test func genesisBlockLimitsHoldForEveryBlock() throws {
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let transactions = try (0..<4).map { try fixture.transaction($0) }
        let block = Self.block(fixture, transactions)
        var parameters = fixture.consortium.genesis.parameters
        #expect(Self.code { try BlockVerifier.checkLimits(block, parameters: parameters) } == nil)
        parameters.maxBlockTransactions = 3
        #expect(Self.code { try BlockVerifier.checkLimits(block, parameters: parameters) } == "block_too_large")
        parameters.maxBlockTransactions = 4
        parameters.maxBlockBytes = UInt32(transactions.prefix(3).reduce(0) { $0 + $1.canonicalBytes.count })
        #expect(Self.code { try BlockVerifier.checkLimits(block, parameters: parameters) } == "block_too_large")
    }

    @Test func noTransactionIsDatedPastItsBlockTimeAndTheSkew() throws {
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let honest = try fixture.transaction(1)
        let key = try #require(fixture.institutionKeys["bank-a"])
        var body = honest.body
        body.timeMs = UInt64(Int64.max) + 1
        let poisoned = try Transaction.sign(body, with: key)
        let consortium = fixture.consortium
        #expect(Self.code {
            try BlockVerifier.checkBlock(Self.block(fixture, [honest, poisoned]), height: 1, previousHash: consortium.genesisHash,
                                         consortium: consortium)
        } == "time_in_future")
        #expect(Self.code {
            try BlockVerifier.checkBlock(Self.block(fixture, [honest]), height: 1, previousHash: consortium.genesisHash,
                                         consortium: consortium)
        } == nil)
        // A block as late as time goes is still judged without trapping.
        #expect(Self.code {
            try BlockVerifier.checkBlock(Self.block(fixture, [honest, poisoned], timeMs: .max), height: 1,
                                         previousHash: consortium.genesisHash, consortium: consortium)
        } == nil)
        // A block older than its parent is refused when the parent's time is known.
        #expect(Self.code {
            try BlockVerifier.checkBlock(Self.block(fixture, [honest]), height: 1, previousHash: consortium.genesisHash,
                                         previousTimeMs: 1_764_000_000_002, consortium: consortium)
        } == "bad_time")
    }
}
