import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import XinlianConsensus
import XinlianCore
import XinlianCrypto
@testable import XinlianNode
import XinlianMerkle
import XinlianStorage

/// A single-validator node in a temporary directory, driven through its HTTP API in process.
struct TestNode {
    let directory: String
    let consortium: Consortium
    let validatorKey: SigningKey
    let institutionKeys: [InstitutionID: SigningKey]

    init(suite suiteID: CryptoSuiteID) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-node-\(UUID().uuidString)").path
        let suite = CryptoSuite(suiteID)
        validatorKey = suite.generateSigningKey()
        var keys: [InstitutionID: SigningKey] = [:]
        var institutions: [InstitutionRecord] = []
        for (id, role) in [("bank-a", InstitutionRole.member), ("registry", .registry)] {
            let key = suite.generateSigningKey()
            keys[try Name(id)] = key
            institutions.append(InstitutionRecord(id: try Name(id), name: id, roles: [role], publicKey: key.publicKey.bytes.hexString))
        }
        institutionKeys = keys
        consortium = try Consortium(Genesis(
            chainId: "xinlian-test", cryptoSuite: suiteID, genesisTimeMs: 1_764_000_000_000, parameters: .defaults,
            institutions: institutions,
            validators: [ValidatorRecord(id: "node0", institution: "bank-a", publicKey: validatorKey.publicKey.bytes.hexString,
                                         power: 10, p2pAddress: "127.0.0.1:1", apiAddress: "127.0.0.1:2")]))
    }

    func engine(mempool: Mempool = Mempool()) throws -> NodeEngine {
        try NodeEngine(consortium: consortium, validatorID: "node0", validatorKey: validatorKey, dataDirectory: directory + "/data",
                       mempool: mempool, metrics: NodeMetrics(), logger: Logger(label: "test"))
    }

    func transaction(_ n: Int, chain: ChainID? = nil, reporter: InstitutionID = "bank-a", signer: InstitutionID? = nil) throws -> Transaction {
        let body = TransactionBody(chainID: chain ?? consortium.chainID, kind: .facilityOpened, reporter: reporter,
                                   subject: try USCC.withCheckCharacter(String(format: "91310000%09d", n % 7)),
                                   timeMs: 1_764_000_000_000, nonce: UInt64(n),
                                   payload: try Payload.canonicalize(.object([
                                       "facilityId": .string("F-\(n)"), "type": .string("loan"),
                                       "amount": .object(["minor": .integer(Int64(n + 1) * 100_000), "currency": .string("CNY")]),
                                       "openedOn": .string("2025-01-10"), "maturesOn": .string("2027-01-10"),
                                       "security": .string("unsecured"), "classification": .string("normal"),
                                   ])))
        return try Transaction.sign(body, with: try #require(institutionKeys[signer ?? reporter]))
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

/// The `X-Xinlian-Request` header of a read of `target` signed by `institution`.
func signedRead(_ target: String, as institution: InstitutionID, key: SigningKey?, chainID: ChainID,
                timeMs: UInt64 = NodeEngine.wallClockMs()) throws -> HTTPFields {
    let signed = try SignedRequest.sign(chainID: chainID, institution: institution, timeMs: timeMs, method: "GET",
                                        target: target, key: try #require(key))
    var fields = HTTPFields()
    fields[HTTPField.Name(SignedRequest.headerName)!] = signed.headerValue
    return fields
}

func submitBody(_ transactions: [Transaction]) throws -> ByteBuffer {
    ByteBuffer(bytes: try JSONEncoder().encode(SubmitRequest(transactions)))
}

func decode<T: Decodable>(_ type: T.Type, _ buffer: ByteBuffer) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
}

@Suite("Node through the HTTP API")
struct NodeAPITests {
    @Test(arguments: CryptoSuiteID.allCases)
    func submitCommitAndProve(_ suite: CryptoSuiteID) async throws {
        let node = try TestNode(suite: suite)
        defer { node.remove() }
        let engine = try node.engine()
        let api = API(engine: engine)
        let app = Application(router: api.router())
        let transactions = try (0..<10).map { try node.transaction($0) }
        // bank-a runs the validator: it may read whole blocks.
        @Sendable func read(_ target: String) throws -> HTTPFields {
            try signedRead(target, as: "bank-a", key: node.institutionKeys["bank-a"], chainID: node.consortium.chainID)
        }
        try await app.test(.router) { client in
            let submitted = try await client.execute(uri: "/v1/transactions", method: .post, body: try submitBody(transactions))
            #expect(submitted.status == .accepted)
            let results = try decode(SubmitResponse.self, submitted.body).results
            #expect(results.map(\.status) == Array(repeating: "pending", count: 10))

            let header = try #require(try await engine.settle())
            #expect(header.height == 1)
            #expect(header.transactionCount == 10)

            let id = results[3].id
            let status = try decode(TransactionStatusResponse.self,
                                    try await client.execute(uri: "/v1/transactions/\(id)", method: .get,
                                                             headers: try read("/v1/transactions/\(id)")).body)
            #expect(status.status == "committed")
            #expect(status.height == 1)
            let proof = try #require(status.proof)
            let verified = try proof.verify(consortium: node.consortium)
            #expect(verified.transactionID?.hex == id)

            let block = try decode(BlockResponse.self, try await client.execute(uri: "/v1/blocks/1", method: .get,
                                                                                headers: try read("/v1/blocks/1")).body)
            #expect(block.transactions.count == 10)
            #expect(block.header.hash == header.hash(node.consortium.suite).hex)
            let raw = try #require(Data(base64Encoded: block.encoded))
            #expect(try CommittedBlock(canonicalBytes: Array(raw), limit: Limits.recordBytes).block.header == header)

            let nodeStatus = try decode(NodeStatus.self, try await client.execute(uri: "/v1/status", method: .get).body)
            #expect(nodeStatus.height == 1)
            #expect(nodeStatus.lastBlockHash == header.hash(node.consortium.suite).hex)

            let metrics = try await client.execute(uri: "/metrics", method: .get)
            let text = String(buffer: metrics.body)
            #expect(text.contains("xinlian_height 1"))
            #expect(text.contains("xinlian_transactions_committed_total 10"))
        }
        await engine.shutdown()
    }

    @Test func resubmissionIsIdempotent() async throws {
        let node = try TestNode(suite: .ed25519SHA256)
        defer { node.remove() }
        let engine = try node.engine()
        let app = Application(router: API(engine: engine).router())
        let transaction = try node.transaction(1)
        try await app.test(.router) { client in
            _ = try await client.execute(uri: "/v1/transactions", method: .post, body: try submitBody([transaction]))
            try await engine.settle()
            let again = try await client.execute(uri: "/v1/transactions", method: .post, body: try submitBody([transaction]))
            let results = try decode(SubmitResponse.self, again.body).results
            #expect(results.first?.status == "committed")
            #expect(try await engine.settle()?.height == 1)
        }
        await engine.shutdown()
    }

    /// Garbage gets a JSON error with a stable code, and changes nothing.
    @Test func garbageIsRefusedWithStableCodes() async throws {
        let node = try TestNode(suite: .ed25519SHA256)
        defer { node.remove() }
        let engine = try node.engine()
        let app = Application(router: API(engine: engine, bodyLimitBytes: 64 * 1024).router())
        let good = try node.transaction(1)
        var badSubject = good.body.canonicalBytes
        let subjectStart = 1 + (4 + good.body.chainID.value.utf8.count) + 1 + (4 + good.body.reporter.value.utf8.count) + 1
        badSubject[subjectStart + 17] = badSubject[subjectStart + 17] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        var badSignature = good.signature
        badSignature[0] ^= 1
        let cases: [(String, ByteBuffer, String)] = [
            ("bad json", ByteBuffer(string: "{not json"), "invalid_json"),
            ("not base64", ByteBuffer(string: #"{"transactions":["%%%"]}"#), "invalid_encoding"),
            ("wrong signature", try submitBody([Transaction(body: good.body, signature: badSignature)]), "bad_signature"),
            ("signed by another key", try submitBody([try node.transaction(2, reporter: "bank-a", signer: "registry")]), "bad_signature"),
            ("wrong chain", try submitBody([try node.transaction(3, chain: "other-chain")]), "wrong_chain"),
            ("unknown reporter", try submitBody([Transaction(body: TransactionBody(
                chainID: node.consortium.chainID, kind: .registration, reporter: "stranger", subject: good.body.subject,
                timeMs: 1, nonce: 1, payload: Array("{}".utf8)), signature: good.signature)]), "unknown_reporter"),
            ("invalid uscc", ByteBuffer(bytes: try JSONEncoder().encode(SubmitRequest(transactions: [
                Data(badSubject + [0, 0, 0, 0]).base64EncodedString()]))), "invalid_uscc"),
            ("oversized body", ByteBuffer(repeating: UInt8(ascii: " "), count: 70 * 1024), "body_too_large"),
            ("empty batch", ByteBuffer(string: #"{"transactions":[]}"#), "invalid_batch"),
            ("time at the end of the range", try submitBody([Transaction.sign(TransactionBody(
                chainID: node.consortium.chainID, kind: good.body.kind, reporter: "bank-a", subject: good.body.subject,
                timeMs: UInt64.max, nonce: 1, payload: good.body.payload), with: try #require(node.institutionKeys["bank-a"]))]),
             "time_in_future"),
            ("mixed batch", try submitBody([good, Transaction(body: good.body, signature: badSignature)]), "bad_signature"),
        ]
        try await app.test(.router) { client in
            for (name, body, code) in cases {
                let response = try await client.execute(uri: "/v1/transactions", method: .post, body: body)
                #expect(response.status.code >= 400, "\(name)")
                let error = try decode(APIErrorBody.self, response.body)
                #expect(error.error.code == code, "\(name): \(error.error.message)")
            }
            let notFound = try await client.execute(uri: "/v1/nowhere", method: .get)
            #expect(notFound.status == .notFound)
            #expect(try decode(APIErrorBody.self, notFound.body).error.code == "not_found")
            let badHeight = try await client.execute(uri: "/v1/blocks/abc", method: .get,
                                                     headers: try signedRead("/v1/blocks/abc", as: "bank-a",
                                                                             key: node.institutionKeys["bank-a"],
                                                                             chainID: node.consortium.chainID))
            #expect(try decode(APIErrorBody.self, badHeight.body).error.code == "invalid_height")
            let missing = try await client.execute(uri: "/v1/blocks/5", method: .get,
                                                   headers: try signedRead("/v1/blocks/5", as: "bank-a",
                                                                           key: node.institutionKeys["bank-a"],
                                                                           chainID: node.consortium.chainID))
            #expect(try decode(APIErrorBody.self, missing.body).error.code == "not_found")
        }
        // Nothing changed: no block, nothing pending (the good half of the mixed batch was not admitted).
        #expect(try await engine.settle() == nil)
        #expect(await engine.status().height == 0)
        #expect(await engine.status().mempoolSize == 0)
        await engine.shutdown()
    }

    @Test func fullMempoolRefusesTheWholeBatch() async throws {
        let node = try TestNode(suite: .ed25519SHA256)
        defer { node.remove() }
        let engine = try node.engine(mempool: Mempool(transactionLimit: 3, bytesLimit: 1 << 20))
        let app = Application(router: API(engine: engine).router())
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/v1/transactions", method: .post,
                                                     body: try submitBody(try (0..<4).map { try node.transaction($0) }))
            #expect(response.status == .serviceUnavailable)
            #expect(try decode(APIErrorBody.self, response.body).error.code == "mempool_full")
        }
        #expect(await engine.status().mempoolSize == 0)
        await engine.shutdown()
    }

    @Test func restartKeepsCommittedBlocksAndRefusesDoubleSigning() async throws {
        let node = try TestNode(suite: .ed25519SHA256)
        defer { node.remove() }
        var engine = try node.engine()
        for round in 0..<3 {
            _ = try await engine.admit([try node.transaction(round)])
            try await engine.settle()
        }
        let before = await engine.status()
        await engine.shutdown()
        engine = try node.engine()
        let after = await engine.status()
        #expect(after.height == 3)
        #expect(after.lastBlockHash == before.lastBlockHash)
        #expect(after.stateRoot == before.stateRoot)
        await engine.shutdown()

        // The signer refuses a different message at a height it already signed.
        let signer = try SignerState(path: node.directory + "/data/signer-state.json", key: node.validatorKey)
        #expect(throws: SignerState.DoubleSignError.self) {
            try signer.sign([1, 2, 3], height: 3, round: 0, step: .precommit)
        }
        #expect(throws: SignerState.DoubleSignError.self) {
            try signer.sign([1, 2, 3], height: 2, round: 5, step: .precommit)
        }
    }
}

@Suite("Node crash windows")
struct NodeCrashTests {
    /// The double-sign guard recorded a precommit at the next height (its journal was lost): the replica signs
    /// nothing that conflicts with it, and a validator that decides alone halts and says why, instead of waiting
    /// silently for a round that cannot end.
    @Test func guardAheadOfTheJournalSignsNothingConflictingAndSaysSo() async throws {
        let node = try TestNode(suite: .ed25519SHA256)
        defer { node.remove() }
        try FileManager.default.createDirectory(atPath: node.directory + "/data", withIntermediateDirectories: true)
        let signer = try SignerState(path: node.directory + "/data/signer-state.json", key: node.validatorKey)
        _ = try signer.sign([9, 9, 9], height: 1, round: 0, step: .precommit)

        let engine = try node.engine()
        _ = try await engine.admit([try node.transaction(1)])
        try await engine.startConsensus(link: NoPeers(), timeouts: .standard)
        #expect(await engine.height == 0, "round 0 was refused by the guard")
        let after = try SignerState(path: node.directory + "/data/signer-state.json", key: node.validatorKey)
        #expect(after.last == signer.last, "nothing was signed past the guard")
        let halted = try #require(await engine.status().consensus?.halted)
        #expect(halted.contains("double-sign guard refused"), "\(halted)")
        await engine.shutdown()
    }

    /// This node's own storage failing while it checks a certified block is not the block's fault: the error is
    /// not a `VerificationError`, so block sync does not drop the peer that served it.
    @Test func aLocalStorageFailureIsNotBlamedOnTheBlock() async throws {
        let node = try TestNode(suite: .ed25519SHA256)
        defer { node.remove() }
        let engine = try node.engine()
        _ = try await engine.admit([try node.transaction(1)])
        let first = try #require(try await engine.settle())
        await engine.shutdown()
        let store = try LedgerStore(dataDirectory: node.directory + "/data", consortium: node.consortium)
        let ledger = NodeLedger(consortium: node.consortium, store: store, mempool: Mempool(), metrics: NodeMetrics(),
                                logger: Logger(label: "test"), now: NodeEngine.wallClockMs)
        let transaction = try node.transaction(2)
        let suite = node.consortium.suite
        let prepared = try store.prepareState([transaction])
        let header = BlockHeader(chainID: node.consortium.chainID, height: 2, timeMs: first.timeMs + 1,
                                 previousHash: first.hash(suite), transactionsRoot: Block.transactionsRoot([transaction], suite: suite),
                                 stateRoot: prepared.stateRoot, validatorSetHash: node.consortium.validators.hash,
                                 proposer: "node0", transactionCount: 1)
        let vote = Vote(chainID: node.consortium.chainID, kind: .precommit, height: 2, round: 0, blockHash: header.hash(suite),
                        validator: "node0")
        let record = CommittedBlock(block: Block(header: header, transactions: [transaction]), certificate: CommitCertificate(
            height: 2, round: 0, blockHash: header.hash(suite),
            signatures: [CommitSignature(validator: "node0", signature: try node.validatorKey.sign(vote.signingBytes))]))
        store.close()
        do {
            try ledger.commit(record)
            Issue.record("a closed store committed a block")
        } catch is VerificationError {
            Issue.record("a local storage failure was reported as the block's fault")
        } catch {
            // The store's own error: nobody is blamed.
        }
    }

    @Test func commitRefusesReplayedAndUnsignedTransactions() async throws {
        let node = try TestNode(suite: .ed25519SHA256)
        defer { node.remove() }
        let engine = try node.engine()
        let transaction = try node.transaction(1)
        _ = try await engine.admit([transaction])
        let first = try #require(try await engine.settle())
        await engine.shutdown()
        // A properly certified block from elsewhere carrying the same transaction again.
        let suite = node.consortium.suite
        let header = BlockHeader(chainID: node.consortium.chainID, height: 2, timeMs: first.timeMs + 1,
                                 previousHash: first.hash(suite), transactionsRoot: Block.transactionsRoot([transaction], suite: suite),
                                 stateRoot: first.stateRoot, validatorSetHash: node.consortium.validators.hash, proposer: "node0",
                                 transactionCount: 1)
        let vote = Vote(chainID: node.consortium.chainID, kind: .precommit, height: 2, round: 0, blockHash: header.hash(suite),
                        validator: "node0")
        let certificate = CommitCertificate(height: 2, round: 0, blockHash: header.hash(suite), signatures: [
            CommitSignature(validator: "node0", signature: try node.validatorKey.sign(vote.signingBytes)),
        ])
        let replay = CommittedBlock(block: Block(header: header, transactions: [transaction]), certificate: certificate)
        // The one commit path every certified block takes (consensus and sync alike).
        let store = try LedgerStore(dataDirectory: node.directory + "/data", consortium: node.consortium)
        let ledger = NodeLedger(consortium: node.consortium, store: store, mempool: Mempool(), metrics: NodeMetrics(),
                                logger: Logger(label: "test"), now: NodeEngine.wallClockMs)
        let error = try #require(throws: VerificationError.self) { try ledger.commit(replay) }
        #expect(error.code == "duplicate_transaction")
        #expect(ledger.height == 1)
        store.close()
    }
}

/// Issue 9: a web page open on the operator's machine cannot drive the operator API.
@Suite("Operator API refuses browsers")
struct OperatorAPITests {
    @Test func originAndForeignHostAreRefused() async throws {
        let node = try TestNode(suite: .ed25519SHA256)
        defer { node.remove() }
        let engine = try node.engine()
        let app = Application(router: AdminAPI(engine: engine, peers: NoPeerControl()).router(cutState: CutRegistry()))
        try await app.test(.router) { client in
            // The test client's requests name Host localhost.
            let plain = try await client.execute(uri: "/admin/peers", method: .get)
            #expect(plain.status == .ok)
            let browser = try await client.execute(uri: "/admin/peers/node1/cut", method: .post,
                                                   headers: [.origin: "https://evil.example"])
            #expect(browser.status == .forbidden)
            #expect(try decode(APIErrorBody.self, browser.body).error.code == "origin_refused")
        }
        // DNS rebinding: a hostile name resolving to 127.0.0.1 arrives with its own Host.
        for host in ["localhost:8700", "127.0.0.1:8700", "[::1]:8700", "127.0.0.1", "LOCALHOST"] {
            #expect(LoopbackOnlyMiddleware<BasicRequestContext>.isLoopback(host), "\(host)")
        }
        for host in ["evil.example:8700", "127.0.0.1.evil.example", "10.0.0.1:8700", "[::2]:8700", ""] {
            #expect(!LoopbackOnlyMiddleware<BasicRequestContext>.isLoopback(host), "\(host)")
        }
        await engine.shutdown()
    }
}
