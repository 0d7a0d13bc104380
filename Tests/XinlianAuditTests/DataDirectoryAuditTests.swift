import Foundation
import Testing
import XinlianAudit
import XinlianCore
import XinlianCrypto
import XinlianStorage

@Suite struct DataDirectoryAuditTests {
    static let blocks = 20

    @Test(arguments: CryptoSuiteID.allCases)
    func intactLedgerVerifiesWithCountsAndHead(suite: CryptoSuiteID) throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: suite)
        let data = scratch.sub("data")
        let facts = try LedgerBuilder(fixture: fixture).build(dataDirectory: data, blocks: Self.blocks)
        let expected = AuditReport(blocks: facts.height, transactions: facts.transactions, height: facts.height, head: facts.head)
        #expect(facts.height == UInt64(Self.blocks))
        #expect(facts.transactions > 0)
        let variants = [AuditOptions(), AuditOptions(workers: 1), AuditOptions(workers: 2, windowBlocks: 3),
                        AuditOptions(workers: 2, windowBytes: 1)]
        for options in variants {
            #expect(try AuditVerifier.verify(dataDirectory: data, consortium: fixture.consortium, options: options) == expected)
        }
    }

    @Test func emptyLedgerVerifiesAsGenesisAndMissingDirectoryIsAFault() throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let data = scratch.sub("data")
        try FileManager.default.createDirectory(atPath: LedgerStore.blocksDirectory(data), withIntermediateDirectories: true)
        let report = try AuditVerifier.verify(dataDirectory: data, consortium: fixture.consortium)
        #expect(report == AuditReport(blocks: 0, transactions: 0, height: 0, head: fixture.consortium.genesisHash))
        let missing = auditFault { () throws(AuditFault) in
            try AuditVerifier.verify(dataDirectory: scratch.sub("nowhere"), consortium: fixture.consortium)
        }
        #expect(missing?.code == AuditFaultCode.io)
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func flippedByteInMiddleSegmentNamesFileAndOffset(suite: CryptoSuiteID) throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: suite)
        try LedgerBuilder(fixture: fixture).build(dataDirectory: scratch.sub("source"), blocks: Self.blocks)
        let data = scratch.sub("data")
        let locations = try LogTools.write(try LogTools.payloads(dataDirectory: scratch.sub("source")),
                                           dataDirectory: data, segmentBytes: 2_048)
        let segments = Array(Set(locations.map(\.file))).sorted()
        try #require(segments.count >= 3)
        let middle = try #require(locations.first { $0.file == segments[segments.count / 2] })
        try LogTools.flip(LedgerStore.blocksDirectory(data) + "/" + middle.file,
                          at: middle.payloadOffset + UInt64(middle.payloadLength / 2))
        let before = try LogTools.snapshot(data)
        let fault = try #require(auditFault { () throws(AuditFault) in
            try AuditVerifier.verify(dataDirectory: data, consortium: fixture.consortium)
        })
        #expect(fault.code == AuditFaultCode.corruptRecord)
        #expect(fault.file == "blocks/" + middle.file)
        #expect(fault.offset == middle.offset)
        #expect(fault.height == UInt64(middle.index) + 1)
        #expect(fault.description.hasPrefix("height \(middle.index + 1): blocks/\(middle.file) at byte \(middle.offset): corrupt_record: "))
        #expect(try LogTools.snapshot(data) == before)
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func tornTailIsAFaultAndLeftOnDisk(suite: CryptoSuiteID) throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: suite)
        let data = scratch.sub("data")
        try LedgerBuilder(fixture: fixture).build(dataDirectory: data, blocks: 5)
        let blocks = LedgerStore.blocksDirectory(data)
        let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: blocks).filter { $0.hasSuffix(".log") }.max())
        let handle = try #require(FileHandle(forUpdatingAtPath: blocks + "/" + segment))
        let end = try handle.seekToEnd()
        try handle.write(contentsOf: Data([0, 0, 1, 0, 0xAB, 0xCD, 0xEF, 0x01, 1, 2, 3]))
        try handle.close()
        let before = try LogTools.snapshot(data)
        for _ in 0..<2 {
            let fault = try #require(auditFault { () throws(AuditFault) in
                try AuditVerifier.verify(dataDirectory: data, consortium: fixture.consortium)
            })
            #expect(fault.code == AuditFaultCode.tornTail)
            #expect(fault.file == "blocks/" + segment)
            #expect(fault.offset == end)
            #expect(fault.height == 6)
            #expect(try LogTools.snapshot(data) == before)
        }
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func forgedTransactionWithOldRootIsBadTransactionsRoot(suite: CryptoSuiteID) throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: suite)
        try LedgerBuilder(fixture: fixture).build(dataDirectory: scratch.sub("source"), blocks: Self.blocks)
        var payloads = try LogTools.payloads(dataDirectory: scratch.sub("source"))
        let height = 10
        let original = try CommittedBlock(canonicalBytes: payloads[height - 1], limit: Limits.recordBytes)
        var transactions = original.block.transactions
        try #require(!transactions.isEmpty)
        transactions[0] = try fixture.transaction(9_999, payload: "{\"amount\":1}")
        let forged = CommittedBlock(block: Block(header: original.block.header, transactions: transactions),
                                    certificate: original.certificate)
        payloads[height - 1] = forged.canonicalBytes
        let data = scratch.sub("data")
        let locations = try LogTools.write(payloads, dataDirectory: data)
        let fault = try #require(auditFault { () throws(AuditFault) in
            try AuditVerifier.verify(dataDirectory: data, consortium: fixture.consortium)
        })
        #expect(fault.code == "bad_transactions_root")
        #expect(fault.height == UInt64(height))
        #expect(fault.offset == locations[height - 1].offset)
        #expect(fault.file == "blocks/" + locations[height - 1].file)
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func certificateSignedByForeignKeyIsAFault(suite: CryptoSuiteID) throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: suite)
        try LedgerBuilder(fixture: fixture).build(dataDirectory: scratch.sub("source"), blocks: Self.blocks)
        var payloads = try LogTools.payloads(dataDirectory: scratch.sub("source"))
        let height = 7
        let original = try CommittedBlock(canonicalBytes: payloads[height - 1], limit: Limits.recordBytes)
        let rogue = try TestConsortium(suite: suite, seed: 99).validatorKey
        let forged = CommittedBlock(block: original.block,
                                    certificate: try fixture.certificate(for: original.block.header, signer: rogue))
        payloads[height - 1] = forged.canonicalBytes
        let data = scratch.sub("data")
        try LogTools.write(payloads, dataDirectory: data)
        let fault = try #require(auditFault { () throws(AuditFault) in
            try AuditVerifier.verify(dataDirectory: data, consortium: fixture.consortium)
        })
        #expect(fault.code == "bad_certificate")
        #expect(fault.height == UInt64(height))
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func wrongGenesisFailsAtHeightOne(suite: CryptoSuiteID) throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: suite)
        let data = scratch.sub("data")
        try LedgerBuilder(fixture: fixture).build(dataDirectory: data, blocks: 3)
        let otherChain = try TestConsortium(suite: suite, chainID: "other-chain").consortium
        let sameNameOtherKeys = try TestConsortium(suite: suite, seed: 42).consortium
        for (consortium, code) in [(otherChain, "wrong_chain"), (sameNameOtherKeys, "bad_link")] {
            let fault = try #require(auditFault { () throws(AuditFault) in
                try AuditVerifier.verify(dataDirectory: data, consortium: consortium)
            })
            #expect(fault.height == 1)
            #expect(fault.code == code)
            #expect(fault.file == "blocks/segment-00000000000000000000.log")
        }
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func badSignatureReportsTheFirstFaultInChainOrder(suite: CryptoSuiteID) throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: suite)
        let data = scratch.sub("data")
        let tampered: Set<UInt64> = [6, 5, 13]
        try LedgerBuilder(fixture: fixture).build(dataDirectory: data, blocks: Self.blocks,
                                                  transactionsPerBlock: { Int($0 % 3) + 1 }) { height, index, transaction in
            guard tampered.contains(height), index == Int(height % 3) else { return transaction }
            var signature = transaction.signature
            signature[0] ^= 0x01
            return Transaction(body: transaction.body, signature: signature)
        }
        var faults: [AuditFault] = []
        for options in [AuditOptions(workers: 2), AuditOptions(workers: 1, windowBlocks: 1), AuditOptions(workers: 2, windowBlocks: 5)] {
            faults.append(try #require(auditFault { () throws(AuditFault) in
                try AuditVerifier.verify(dataDirectory: data, consortium: fixture.consortium, options: options)
            }))
        }
        #expect(faults.allSatisfy { $0 == faults[0] })
        #expect(faults[0].code == "bad_signature")
        #expect(faults[0].height == 5)
        #expect(faults[0].reason.hasPrefix("transaction 2: "))
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func replayedTransactionIsRejected(suite: CryptoSuiteID) throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: suite)
        let source = scratch.sub("source")
        let facts = try LedgerBuilder(fixture: fixture).build(dataDirectory: source, blocks: 5)
        var payloads = try LogTools.payloads(dataDirectory: source)
        let first = try CommittedBlock(canonicalBytes: payloads[0], limit: Limits.recordBytes)
        let last = try CommittedBlock(canonicalBytes: payloads[payloads.count - 1], limit: Limits.recordBytes)
        let replayed = try #require(first.block.transactions.first)
        let block = try fixture.committedBlock(height: facts.height + 1, previousHash: facts.head,
                                               transactions: [try fixture.transaction(500), replayed],
                                               stateRoot: last.block.header.stateRoot)
        payloads.append(block.canonicalBytes)
        let data = scratch.sub("data")
        try LogTools.write(payloads, dataDirectory: data)
        let fault = try #require(auditFault { () throws(AuditFault) in
            try AuditVerifier.verify(dataDirectory: data, consortium: fixture.consortium)
        })
        #expect(fault.code == AuditFaultCode.duplicateTransaction)
        #expect(fault.height == facts.height + 1)
        #expect(fault.reason.hasPrefix("transaction 1: "))
    }

    /// A five-block ledger's records, then block 6: a valid transaction committed under the old state root (a replay
    /// fault only), already appended.
    static func ledgerWithWrongRoot(_ fixture: TestConsortium, _ scratch: ScratchDirectory) throws
        -> (payloads: [[UInt8]], facts: LedgerFacts, block: CommittedBlock) {
        let source = scratch.sub("source")
        let facts = try LedgerBuilder(fixture: fixture).build(dataDirectory: source, blocks: 5)
        let payloads = try LogTools.payloads(dataDirectory: source)
        let last = try CommittedBlock(canonicalBytes: payloads[payloads.count - 1], limit: Limits.recordBytes)
        let block = try fixture.committedBlock(height: facts.height + 1, previousHash: facts.head,
                                               transactions: [try fixture.transaction(500)],
                                               stateRoot: last.block.header.stateRoot)
        return (payloads + [block.canonicalBytes], facts, block)
    }

    /// The audit checks signatures of a whole window at once and replays it afterwards: a fault of the replay (a wrong
    /// state root) must still come before a signature fault of the block after it, with any window size.
    @Test func aReplayFaultComesBeforeTheNextWindowsSignatureFault() throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        var (payloads, facts, wrongRoot) = try Self.ledgerWithWrongRoot(fixture, scratch)
        // Block 7: a transaction whose signature does not verify (a fault of the concurrent part).
        let signed = try fixture.transaction(501)
        var signature = signed.signature
        signature[0] ^= 0x01
        let badSignature = try fixture.committedBlock(height: facts.height + 2, previousHash: wrongRoot.block.header.hash(fixture.consortium.suite),
                                                      transactions: [Transaction(body: signed.body, signature: signature)],
                                                      stateRoot: wrongRoot.block.header.stateRoot)
        payloads.append(badSignature.canonicalBytes)
        let data = scratch.sub("data")
        try LogTools.write(payloads, dataDirectory: data)
        for options in [AuditOptions(workers: 2, windowBlocks: 1), AuditOptions(workers: 1, windowBlocks: 1),
                        AuditOptions(workers: 2, windowBlocks: 6), AuditOptions(workers: 2)] {
            let fault = try #require(auditFault { () throws(AuditFault) in
                try AuditVerifier.verify(dataDirectory: data, consortium: fixture.consortium, options: options)
            })
            #expect(fault.code == AuditFaultCode.badStateRoot)
            #expect(fault.height == facts.height + 1)
        }
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func wrongStateRootIsCaughtUnlessDisabled(suite: CryptoSuiteID) throws {
        let scratch = try ScratchDirectory()
        let fixture = try TestConsortium(suite: suite)
        let (payloads, facts, block) = try Self.ledgerWithWrongRoot(fixture, scratch)
        let data = scratch.sub("data")
        try LogTools.write(payloads, dataDirectory: data)
        let fault = try #require(auditFault { () throws(AuditFault) in
            try AuditVerifier.verify(dataDirectory: data, consortium: fixture.consortium)
        })
        #expect(fault.code == AuditFaultCode.badStateRoot)
        #expect(fault.height == facts.height + 1)
        let report = try AuditVerifier.verify(dataDirectory: data, consortium: fixture.consortium,
                                              options: AuditOptions(checkStateRoots: false))
        #expect(report.height == facts.height + 1)
        #expect(report.head == block.block.header.hash(fixture.consortium.suite))
    }

    @Test func faultDescriptionNamesHeightFileOffsetCodeAndReason() {
        let fault = AuditFault(height: 17, file: "blocks/segment-00000000000000000000.log", offset: 123_456,
                               reason: "transaction 3: signature does not verify", code: "bad_signature")
        #expect(fault.description
            == "height 17: blocks/segment-00000000000000000000.log at byte 123456: bad_signature: transaction 3: signature does not verify")
        let headerFault = AuditFault(height: nil, file: "x.xlnexp", offset: 0, reason: "bad magic", code: "bad_export_header")
        #expect(headerFault.description == "x.xlnexp at byte 0: bad_export_header: bad magic")
    }
}
