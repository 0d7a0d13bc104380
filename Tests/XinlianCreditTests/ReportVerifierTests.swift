import Foundation
import Testing
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianMerkle

/// `ReportVerifier` over a chain built by hand: four validators of equal power, so that a certificate with two
/// signatures is short of two thirds and one with three is enough.
struct VerifierChain {
    let suite = CryptoSuite(.ed25519SHA256)
    let consortium: Consortium
    let validatorKeys: [SigningKey]
    let institutionKeys: [InstitutionID: SigningKey]
    var store = InMemorySMTStore()
    var records: [CommittedBlock] = []
    var heads: [USCC: Hash32] = [:]

    init(chain: ChainID = "xinlian-test") throws {
        let suite = CryptoSuite(.ed25519SHA256)
        validatorKeys = (0..<4).map { _ in suite.generateSigningKey() }
        var keys: [InstitutionID: SigningKey] = [:]
        var institutions: [InstitutionRecord] = []
        for (id, role) in [("bank-a", InstitutionRole.member), ("registry", .registry), ("regulator", .regulator)] {
            let key = suite.generateSigningKey()
            keys[try Name(id)] = key
            institutions.append(InstitutionRecord(id: try Name(id), name: id, roles: [role], publicKey: key.publicKey.bytes.hexString))
        }
        institutionKeys = keys
        consortium = try Consortium(Genesis(
            chainId: chain, cryptoSuite: .ed25519SHA256, genesisTimeMs: Fixture.noon(Fixture.day("2024-01-01")),
            parameters: .defaults, institutions: institutions,
            validators: try validatorKeys.enumerated().map { index, key in
                ValidatorRecord(id: try Name("v\(index)"), institution: "bank-a", publicKey: key.publicKey.bytes.hexString,
                                power: 10, p2pAddress: "127.0.0.1:1", apiAddress: "127.0.0.1:2")
            }))
    }

    func sign(_ kind: TransactionKind, _ payload: [String: JSONValue], by reporter: InstitutionID, nonce: UInt64,
              subject: USCC = Fixture.subject) throws -> Transaction {
        let body = TransactionBody(chainID: consortium.chainID, kind: kind, reporter: reporter, subject: subject,
                                   timeMs: Fixture.noon(Fixture.today), nonce: nonce,
                                   payload: try Payload.canonicalize(.object(payload)))
        return try Transaction.sign(body, with: try #require(institutionKeys[reporter]))
    }

    /// Commits a block certified by the first `signers` validators.
    mutating func commit(_ transactions: [Transaction], signers: Int = 3) throws {
        let height = UInt64(records.count + 1)
        let newHeads = EnterpriseState.heads(after: transactions, suite: suite) { heads[$0] }
        let tree = SparseMerkleTree(suite: suite)
        let update = try tree.update(root: records.last?.block.header.stateRoot ?? .zero,
                                     changes: newHeads.map { (EnterpriseState.key($0.key, suite: suite), $0.value) }, source: store)
        store.insert(update.newNodes)
        heads.merge(newHeads) { _, new in new }
        let header = BlockHeader(chainID: consortium.chainID, height: height, timeMs: Fixture.noon(Fixture.today) + height,
                                 previousHash: records.last?.block.header.hash(suite) ?? consortium.genesisHash,
                                 transactionsRoot: Block.transactionsRoot(transactions, suite: suite), stateRoot: update.root,
                                 validatorSetHash: consortium.validators.hash, proposer: "v0",
                                 transactionCount: UInt32(transactions.count))
        let hash = header.hash(suite)
        let signatures = try (0..<signers).map { index in
            let id = try Name("v\(index)")
            let vote = Vote(chainID: consortium.chainID, kind: .precommit, height: height, round: 0, blockHash: hash, validator: id)
            return CommitSignature(validator: id, signature: try validatorKeys[index].sign(vote.signingBytes))
        }
        records.append(CommittedBlock(block: Block(header: header, transactions: transactions),
                                      certificate: CommitCertificate(height: height, round: 0, blockHash: hash, signatures: signatures)))
    }

    /// The report of `subject` as of the last block, and its proof (own transactions only).
    func served(_ subject: USCC = Fixture.subject) throws -> (CreditReport, ReportProof) {
        let last = try #require(records.last)
        let hasher = MerkleHasher(suite: suite)
        var entries: [LedgerEntry] = []
        var proven: [ReportProof.ProvenTransaction] = []
        var blocks: [ReportProof.CertifiedHeader] = []
        for record in records {
            let leaves = Block.leafHashes(record.block.transactions, suite: suite)
            var used = false
            for (index, transaction) in record.block.transactions.enumerated() where transaction.body.subject == subject {
                used = true
                entries.append(LedgerEntry(id: transaction.id(suite), transaction: transaction, height: record.block.header.height,
                                           index: UInt32(index), blockTimeMs: record.block.header.timeMs))
                let path = try MerkleTree.inclusionProof(index: index, leafHashes: leaves, hasher: hasher)
                proven.append(.init(transaction: Data(transaction.canonicalBytes).base64EncodedString(),
                                    height: record.block.header.height, index: index, path: path.map(\.hex)))
            }
            if used, record != last { blocks.append(Self.certified(record)) }
        }
        let asOf = ReportAsOf(height: last.block.header.height, blockHash: last.block.header.hash(suite), time: last.block.header.timeMs)
        let report = ReportAssembler.assemble(subject: subject, entries: entries, asOf: asOf,
                                              parameters: ReportParameters(consortium.genesis))
        let state = try SparseMerkleTree(suite: suite).prove(root: last.block.header.stateRoot,
                                                             key: EnterpriseState.key(subject, suite: suite), source: store)
        return (report, ReportProof(asOf: Self.certified(last), state: state, blocks: blocks, transactions: proven, counterparty: []))
    }

    static func certified(_ record: CommittedBlock) -> ReportProof.CertifiedHeader {
        .init(header: Data(record.block.header.canonicalBytes).base64EncodedString(),
              certificate: Data(record.certificate.canonicalBytes).base64EncodedString())
    }
}

@Suite struct ReportVerifierTests {
    static func registration(_ chain: VerifierChain, nonce: UInt64) throws -> Transaction {
        try chain.sign(.registration, Examples.payload(.registration), by: "registry", nonce: nonce)
    }

    static func code(_ report: CreditReport, _ proof: ReportProof, _ consortium: Consortium) -> String? {
        do {
            try ReportVerifier.verify(report, proof: proof, consortium: consortium)
            return nil
        } catch {
            return error.code
        }
    }

    static func chain(lastSigners: Int = 3) throws -> VerifierChain {
        var chain = try VerifierChain()
        try chain.commit([try registration(chain, nonce: 1),
                          try chain.sign(.facilityOpened, Examples.payload(.facilityOpened), by: "bank-a", nonce: 2)])
        try chain.commit([try chain.sign(.facilityUpdated, Examples.payload(.facilityUpdated), by: "bank-a", nonce: 3),
                          try registration(chain, nonce: 4)], signers: lastSigners)
        return chain
    }

    @Test func threeOfFourVerifiesTwoOfFourDoesNot() throws {
        let honest = try Self.chain()
        let (report, proof) = try honest.served()
        #expect(proof.transactions.count == 4)
        #expect(Self.code(report, proof, honest.consortium) == nil)

        let short = try Self.chain(lastSigners: 2)
        let (shortReport, shortProof) = try short.served()
        #expect(Self.code(shortReport, shortProof, short.consortium) == "no_quorum")
    }

    @Test func droppedAlteredAddedAndForeignFail() throws {
        let chain = try Self.chain()
        let (report, proof) = try chain.served()

        var dropped = proof
        dropped.transactions.removeLast()
        #expect(Self.code(report, dropped, chain.consortium) == "head_mismatch")

        var altered = proof
        let fake = try Self.registration(chain, nonce: 99)
        altered.transactions[3].transaction = Data(fake.canonicalBytes).base64EncodedString()
        #expect(Self.code(report, altered, chain.consortium) == "bad_inclusion")

        var added = proof
        added.transactions.insert(proof.transactions[0], at: 1)
        #expect(Self.code(report, added, chain.consortium) == "out_of_order")

        var reordered = proof
        reordered.transactions.swapAt(0, 1)
        #expect(Self.code(report, reordered, chain.consortium) == "out_of_order")

        var claimed = report
        claimed.facilities = []
        #expect(Self.code(claimed, proof, chain.consortium) == "report_mismatch")

        let absent = try chain.served(Fixture.other)
        #expect(absent.1.transactions.isEmpty)
        #expect(Self.code(absent.0, absent.1, chain.consortium) == nil)
        var hiding = proof
        hiding.transactions = []
        hiding.state = absent.1.state
        #expect(Self.code(absent.0, proof, chain.consortium) != nil)
        #expect(Self.code(report, hiding, chain.consortium) == "head_mismatch")

        let elsewhere = try Self.chain()
        var foreign = proof
        foreign.asOf = try elsewhere.served().1.asOf
        #expect(Self.code(report, foreign, chain.consortium) == "bad_validator_set")
        var renamed = try VerifierChain(chain: "another-chain")
        try renamed.commit([try Self.registration(renamed, nonce: 1)])
        var otherChain = proof
        otherChain.asOf = try renamed.served().1.asOf
        #expect(Self.code(report, otherChain, chain.consortium) == "wrong_chain")
    }
}
