import Testing
import XinlianCore
import XinlianCrypto

@Suite("Canonical codec")
struct CodecTests {
    @Test(arguments: CryptoSuiteID.allCases)
    func committedBlockRoundTrips(_ suite: CryptoSuiteID) throws {
        let fixture = try TestConsortium(suite: suite)
        let transactions = try (0..<5).map { try fixture.transaction($0) }
        let record = try fixture.committedBlock(height: 1, previousHash: fixture.consortium.genesisHash, transactions: transactions)
        let bytes = record.canonicalBytes
        let decoded = try CommittedBlock(canonicalBytes: bytes, limit: Limits.recordBytes)
        #expect(decoded == record)
        #expect(decoded.canonicalBytes == bytes)
        try BlockVerifier.checkStructure(decoded, height: 1, previousHash: fixture.consortium.genesisHash,
                                         consortium: fixture.consortium)
        try BlockVerifier.checkSignatures(decoded.block.transactions[...], consortium: fixture.consortium)
    }

    /// A transaction keeps its body's bytes as it read them: they must be the body's canonical encoding, so that
    /// its id and signature check are the ones of a transaction built from the same body.
    @Test(arguments: CryptoSuiteID.allCases)
    func aDecodedTransactionKeepsItsBodysCanonicalBytes(_ suite: CryptoSuiteID) throws {
        let fixture = try TestConsortium(suite: suite)
        for n in 0..<5 {
            let built = try fixture.transaction(n)
            let decoded = try Transaction(canonicalBytes: built.canonicalBytes, limit: Limits.recordBytes)
            #expect(decoded.bodyBytes == built.body.canonicalBytes)
            #expect(decoded.id(fixture.consortium.suite) == built.id(fixture.consortium.suite))
            #expect(decoded.signingBytes == built.body.signingBytes)
            #expect(decoded == built)
            #expect(decoded.canonicalBytes == built.canonicalBytes)
            // Built again from the decoded fields, it is the same transaction.
            #expect(Transaction(body: decoded.body, signature: decoded.signature) == decoded)
        }
    }

    @Test func governanceHasNoSubjectAndOthersNeedOne() throws {
        let body = TransactionBody(chainID: "c", kind: .governance, reporter: "r", subject: nil, timeMs: 1, nonce: 2, payload: [])
        #expect(try TransactionBody(canonicalBytes: body.canonicalBytes, limit: 1024) == body)
        var wrong = body
        wrong.kind = .registration
        #expect(throws: DecodingError.self) { try TransactionBody(canonicalBytes: wrong.canonicalBytes, limit: 1024) }
    }

    @Test func everyTruncationIsRejected() throws {
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let record = try fixture.committedBlock(height: 1, previousHash: .zero, transactions: [try fixture.transaction(1)])
        let bytes = record.canonicalBytes
        for length in 0..<bytes.count {
            #expect(throws: DecodingError.self) { try CommittedBlock(canonicalBytes: Array(bytes[0..<length]), limit: 1 << 20) }
        }
    }

    @Test func trailingBytesAreRejected() throws {
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let bytes = try fixture.transaction(1).canonicalBytes + [0]
        let error = try #require(throws: DecodingError.self) { try Transaction(canonicalBytes: bytes, limit: 1 << 20) }
        #expect(error.code == "trailing_bytes")
    }

    @Test func oversizedInputAndFieldsAreRejected() throws {
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let bytes = try fixture.transaction(1).canonicalBytes
        let error = try #require(throws: DecodingError.self) { try Transaction(canonicalBytes: bytes, limit: bytes.count - 1) }
        #expect(error.code == "too_large")
        let body = TransactionBody(chainID: "c", kind: .registration, reporter: "r", subject: try USCC("91440300TFHKYQRREP"),
                                   timeMs: 1, nonce: 1, payload: [UInt8](repeating: 0x20, count: Limits.payloadBytes + 1))
        let fieldError = try #require(throws: DecodingError.self) {
            try TransactionBody(canonicalBytes: body.canonicalBytes, limit: 1 << 20)
        }
        #expect(fieldError.code == "too_large")
        #expect(fieldError.field == "transaction.payload")
    }

    @Test func nonCanonicalTagsAreRejected() throws {
        let vote = Vote(chainID: "c", kind: .prevote, height: 3, round: 1, blockHash: nil, validator: "v")
        var bytes = vote.canonicalBytes
        // The option tag of blockHash sits right before the validator name; make it 2.
        let tagIndex = bytes.count - (4 + 1) - 1
        #expect(bytes[tagIndex] == 0)
        bytes[tagIndex] = 2
        let error = try #require(throws: DecodingError.self) { try Vote(canonicalBytes: bytes, limit: 1024) }
        #expect(error.code == "invalid_tag")
    }

    @Test func unsortedCertificateIsRejected() throws {
        var encoder = CanonicalEncoder()
        encoder.u64(1)
        encoder.u32(0)
        encoder.hash(.zero)
        encoder.u32(2)
        for name in ["b", "a"] {
            encoder.string(name)
            encoder.byteString([1, 2])
        }
        let error = try #require(throws: DecodingError.self) {
            try CommitCertificate(canonicalBytes: encoder.bytes, limit: 1024)
        }
        #expect(error.code == "non_canonical")
    }

    @Test func invalidNamesAndCodesInsideRecordsAreRejected() throws {
        let body = TransactionBody(chainID: "c", kind: .registration, reporter: "r", subject: try USCC("91440300TFHKYQRREP"),
                                   timeMs: 1, nonce: 1, payload: [])
        var bytes = body.canonicalBytes
        // Corrupt the USCC's check character (after version, chain id, kind, reporter, option tag).
        let uscсStart = 1 + 5 + 1 + 5 + 1
        bytes[uscсStart + 17] = UInt8(ascii: "A")
        #expect(throws: DecodingError.self) { try TransactionBody(canonicalBytes: bytes, limit: 1024) }
        var upper = body.canonicalBytes
        upper[1 + 4] = UInt8(ascii: "C")
        #expect(throws: DecodingError.self) { try TransactionBody(canonicalBytes: upper, limit: 1024) }
    }

    /// Thousands of random and mutated inputs to every decoder: each either throws a
    /// `DecodingError` (the only error type the decoders can throw) or decodes to a value
    /// whose encoding is exactly the input (canonical: one value, one encoding).
    @Test(arguments: [UInt64(1), 2, 3])
    func fuzzDecodersSeeOnlyTypedErrors(_ seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let record = try fixture.committedBlock(height: 2, previousHash: .zero,
                                                transactions: try (0..<3).map { try fixture.transaction($0) })
        let seeds: [[UInt8]] = [
            record.canonicalBytes, record.block.header.canonicalBytes, record.certificate.canonicalBytes,
            try fixture.transaction(7).canonicalBytes,
            Vote(chainID: "c", kind: .precommit, height: 1, round: 0, blockHash: .zero, validator: "v").canonicalBytes,
        ]
        var decodedCount = 0
        for iteration in 0..<2_000 {
            var input: [UInt8]
            if iteration % 4 == 0 {
                input = (0..<Int.random(in: 0..<200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                input = seeds[iteration % seeds.count]
                for _ in 0..<Int.random(in: 1...4, using: &rng) where !input.isEmpty {
                    let position = Int.random(in: 0..<input.count, using: &rng)
                    switch Int.random(in: 0..<3, using: &rng) {
                    case 0: input[position] = UInt8.random(in: 0...255, using: &rng)
                    case 1: input.remove(at: position)
                    default: input.insert(UInt8.random(in: 0...255, using: &rng), at: position)
                    }
                }
            }
            decodedCount += check(CommittedBlock.self, input) + check(Block.self, input) + check(BlockHeader.self, input)
                + check(CommitCertificate.self, input) + check(Transaction.self, input) + check(Vote.self, input)
        }
        // Mutations can land in payloads and signatures, which still decode: the check above saw those too.
        #expect(decodedCount > 0)
    }

    private func check<T: CanonicalCodable>(_ type: T.Type, _ input: [UInt8]) -> Int {
        do {
            let value = try T(canonicalBytes: input, limit: Limits.recordBytes)
            #expect(value.canonicalBytes == input, "\(T.self) decoded a non-canonical input")
            return 1
        } catch {
            #expect(!error.code.isEmpty)
            return 0
        }
    }
}

@Suite("Payload canonical JSON")
struct PayloadTests {
    @Test func sortsKeysAndStripsWhitespace() throws {
        let text = try Payload.canonicalize(Array(#"{ "b": 1, "a": {"z": [true, null, "x\n"], "y": -5} }"#.utf8))
        #expect(String(decoding: text, as: UTF8.self) == #"{"a":{"y":-5,"z":[true,null,"x\n"]},"b":1}"#)
        #expect(Payload.isCanonical(text))
    }

    @Test(arguments: [#"[1]"#, #"{"a":1.5}"#, #"not json"#, #"{"a":9007199254740993}"#, #""s""#])
    func rejectsNonObjectsFractionsAndHugeIntegers(_ text: String) {
        #expect(throws: VerificationError.self) { try Payload.canonicalize(Array(text.utf8)) }
    }
}

@Suite("Verification rules")
struct VerificationRuleTests {
    /// A certificate assembled in memory (as consensus will) with one signer twice must not count it twice.
    @Test func repeatedSignerIsRefused() throws {
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let record = try fixture.committedBlock(height: 1, previousHash: fixture.consortium.genesisHash, transactions: [])
        var certificate = record.certificate
        certificate.signatures.append(certificate.signatures[0])
        let error = try #require(throws: VerificationError.self) {
            try BlockVerifier.checkCertificate(certificate, header: record.block.header, consortium: fixture.consortium)
        }
        #expect(error.code == "bad_certificate")
    }

    @Test func transactionCountMustMatchTheBody() throws {
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        var record = try fixture.committedBlock(height: 1, previousHash: fixture.consortium.genesisHash,
                                                transactions: [try fixture.transaction(1)])
        record.block.transactions.append(try fixture.transaction(2))
        let error = try #require(throws: VerificationError.self) {
            try BlockVerifier.checkStructure(record, height: 1, previousHash: fixture.consortium.genesisHash,
                                             consortium: fixture.consortium)
        }
        #expect(error.code == "bad_transaction_count")
    }

    @Test(arguments: [TransactionKind.queryRecord, .governance])
    func nodeWrittenKindsAreNotSubmittable(_ kind: TransactionKind) throws {
        let fixture = try TestConsortium(suite: .ed25519SHA256)
        let key = try #require(fixture.institutionKeys["bank-a"])
        let body = TransactionBody(chainID: fixture.consortium.chainID, kind: kind, reporter: "bank-a",
                                   subject: kind.hasSubject ? try USCC("91440300TFHKYQRREP") : nil, timeMs: 1, nonce: 1,
                                   payload: Array("{}".utf8))
        let error = try #require(throws: VerificationError.self) {
            try TransactionRules.checkSubmission(try Transaction.sign(body, with: key), consortium: fixture.consortium)
        }
        #expect(error.code == "kind_not_submittable")
    }
}

@Suite("Payload edge cases")
struct PayloadEdgeTests {
    @Test(arguments: ["{\"a\":-9223372036854775808}", "{\"a\":9223372036854775807}", "{\"a\":-9007199254740993}"])
    func extremeIntegersAreRefusedWithoutTrapping(_ text: String) {
        #expect(throws: VerificationError.self) { try Payload.canonicalize(Array(text.utf8)) }
    }

    @Test func deepNestingIsRefused() {
        let text = String(repeating: "{\"a\":", count: 40) + "1" + String(repeating: "}", count: 40)
        #expect(throws: VerificationError.self) { try Payload.canonicalize(Array(text.utf8)) }
    }

    /// Random and mutated payload texts: canonicalization either refuses with a typed error or gives text
    /// that is itself canonical (a fixed point).
    @Test func fuzzCanonicalization() {
        var rng = SplitMix64(seed: 9)
        let seeds = [#"{"b":[1,2,{"c":"x"}],"a":-5,"t":true,"n":null}"#, #"{"amount":{"minor":500,"currency":"CNY"}}"#]
        var canonical = 0
        for iteration in 0..<3_000 {
            var bytes = Array(seeds[iteration % seeds.count].utf8)
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let position = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[position] = UInt8.random(in: 0x20...0x7E, using: &rng)
            }
            if let text = try? Payload.canonicalize(bytes) {
                #expect(Payload.isCanonical(text))
                canonical += 1
            }
        }
        #expect(canonical > 0)
    }
}
