import Foundation
import Testing
import XinlianAudit
import XinlianCore
import XinlianCrypto
import XinlianStorage

/// The offline audit applies the block rules every validator applies (issue 8): a certified block older than its
/// parent, or over genesis's limits, is a fault even though a quorum signed it.
@Suite("Audit of the block rules")
struct AuditBlockRuleTests {
    @Test func aCertifiedBlockOlderThanItsParentIsAFault() throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let data = scratch.sub("data")
        try LedgerBuilder(fixture: fixture).build(dataDirectory: data, blocks: 2)
        let store = try LedgerStore(dataDirectory: data, consortium: fixture.consortium)
        let transactions: [Transaction] = []
        let prepared = try store.prepareState(transactions)
        let header = BlockHeader(chainID: fixture.consortium.chainID, height: 3, timeMs: TestConsortium.baseTimeMs,
                                 previousHash: store.lastBlockHash,
                                 transactionsRoot: Block.transactionsRoot(transactions, suite: fixture.consortium.suite),
                                 stateRoot: prepared.stateRoot, validatorSetHash: fixture.consortium.validators.hash,
                                 proposer: "node0", transactionCount: 0)
        try store.append(CommittedBlock(block: Block(header: header, transactions: transactions),
                                        certificate: try fixture.certificate(for: header, signer: fixture.validatorKey)),
                         prepared: prepared)
        store.close()
        let fault = try #require(auditFault { () throws(AuditFault) in
            try AuditVerifier.verify(dataDirectory: data, consortium: fixture.consortium)
        })
        #expect(fault.code == "bad_time")
        #expect(fault.height == 3)
    }
}
