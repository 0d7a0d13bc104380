import Foundation
import Testing
@testable import XinlianNetwork
import XinlianConsensus
import XinlianCore
import XinlianCrypto

/// SplitMix64: reproducible values for the property tests.
struct SeededRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random wire values, valid for the canonical decoders.
struct Gen {
    var rng: SeededRNG

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func u64() -> UInt64 { UInt64.random(in: 0...UInt64.max, using: &rng) }
    mutating func u32(_ range: ClosedRange<UInt32> = 0...UInt32.max) -> UInt32 { UInt32.random(in: range, using: &rng) }
    mutating func bool() -> Bool { Bool.random(using: &rng) }
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) } }

    mutating func name() -> Name {
        let first = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        let rest = Array("abcdefghijklmnopqrstuvwxyz0123456789-._")
        var text = String(first[int(0...first.count - 1)])
        for _ in 0..<int(0...20) { text.append(rest[int(0...rest.count - 1)]) }
        return (try? Name(text)) ?? "fallback"
    }

    mutating func hash() -> Hash32 { Hash32(bytes: bytes(32)) ?? .zero }

    mutating func transaction() -> Transaction {
        let kind = TransactionKind.allCases[int(0...TransactionKind.allCases.count - 1)]
        let subject = kind.hasSubject ? try? USCC("91440300TFHKYQRREP") : nil
        let body = TransactionBody(chainID: name(), kind: kind, reporter: name(), subject: subject, timeMs: u64(),
                                   nonce: u64(), payload: bytes(int(0...200)))
        return Transaction(body: body, signature: bytes(int(0...Limits.signatureBytes)))
    }

    mutating func block(height: UInt64) -> Block {
        let transactions = (0..<int(0...3)).map { _ in transaction() }
        let header = BlockHeader(chainID: name(), height: height, timeMs: u64(), previousHash: hash(),
                                 transactionsRoot: hash(), stateRoot: hash(), validatorSetHash: hash(), proposer: name(),
                                 transactionCount: UInt32(transactions.count))
        return Block(header: header, transactions: transactions)
    }

    mutating func committed(height: UInt64) -> CommittedBlock {
        let signers = (0..<int(0...5)).map { try? Name("v\($0)") }.compactMap { $0 }
        let certificate = CommitCertificate(height: height, round: u32(0...9), blockHash: hash(),
                                            signatures: signers.map { CommitSignature(validator: $0, signature: bytes(64)) })
        return CommittedBlock(block: block(height: height), certificate: certificate)
    }

    mutating func consensus() -> ConsensusMessage {
        if bool() {
            let round = u32(0...50)
            let proposal = Proposal(chainID: name(), height: u64(), round: round, blockHash: hash(),
                                    polRound: round > 0 && bool() ? u32(0...round - 1) : nil, proposer: name())
            return .proposal(SignedProposal(proposal: proposal, signature: bytes(64)), block(height: u64()))
        }
        let vote = Vote(chainID: name(), kind: bool() ? .prevote : .precommit, height: u64(), round: u32(),
                        blockHash: bool() ? hash() : nil, validator: name())
        return .vote(SignedVote(vote: vote, signature: bytes(int(0...Limits.signatureBytes))))
    }

    mutating func message(kind: Int) -> WireMessage {
        switch kind {
        case 0:
            return .hello(PeerHello(protocolVersion: UInt16(truncatingIfNeeded: u64()), chainID: name(), genesisHash: hash(),
                                    validator: name(), height: u64(), lastBlockHash: hash()))
        case 1: return .status(PeerStatus(height: u64(), lastBlockHash: hash()))
        case 2: return .transactions((0..<int(0...8)).map { _ in transaction() })
        case 3: return .consensus(consensus())
        case 4: return .syncRequest(fromHeight: u64(), count: u32(1...UInt32(WireLimits.syncBlocksPerRequest)))
        default:
            let from = UInt64(int(1...1_000_000))
            return .syncResponse(fromHeight: from, blocks: (0..<int(0...4)).map { committed(height: from + UInt64($0)) })
        }
    }
}

@Suite struct WireCodecTests {
    @Test(arguments: 0..<6)
    func roundTripsEveryKind(kind: Int) throws {
        var gen = Gen(rng: SeededRNG(seed: UInt64(kind) &* 7919 &+ 1))
        for _ in 0..<150 {
            let message = gen.message(kind: kind)
            let bytes = WireCodec.encode(message)
            #expect(bytes.first == message.typeByte)
            #expect(try WireCodec.decode(bytes) == message)
            let framed = WireCodec.frame(message)
            #expect(Array(framed.dropFirst(4)) == bytes)
            let length = framed.prefix(4).reduce(0) { $0 << 8 | Int($1) }
            #expect(length == bytes.count)
        }
    }

    @Test(arguments: 0..<6)
    func truncatedAndTrailingBytesAreRejected(kind: Int) throws {
        var gen = Gen(rng: SeededRNG(seed: UInt64(kind) &+ 100))
        for _ in 0..<10 {
            let bytes = WireCodec.encode(gen.message(kind: kind))
            for cut in 0..<bytes.count {
                #expect(throws: WireError.self) { try WireCodec.decode(Array(bytes.prefix(cut))) }
            }
            #expect(code(bytes + [0]) == "trailing_bytes")
        }
    }

    func code(_ bytes: [UInt8]) -> String? {
        do { _ = try WireCodec.decode(bytes); return nil } catch { return error.code }
    }

    @Test func goldenBytes() throws {
        // The example in docs/protocol.md.
        let status = WireCodec.frame(.status(PeerStatus(height: 5, lastBlockHash: .zero)))
        #expect(status == [0, 0, 0, 41, 0x02, 0, 0, 0, 0, 0, 0, 0, 5] + [UInt8](repeating: 0, count: 32))
        let genesis = try #require(Hash32(bytes: [UInt8](repeating: 0x11, count: 32)))
        let last = try #require(Hash32(bytes: [UInt8](repeating: 0x22, count: 32)))
        let hello = WireCodec.encode(.hello(PeerHello(chainID: "c", genesisHash: genesis, validator: "v0", height: 7,
                                                      lastBlockHash: last)))
        let expected: [UInt8] = [0x01, 0x00, 0x02, 0, 0, 0, 1, 0x63] + genesis.bytes + [0, 0, 0, 2, 0x76, 0x30]
            + [0, 0, 0, 0, 0, 0, 0, 7] + last.bytes
        #expect(hello == expected)
        #expect(WireCodec.encode(.syncRequest(fromHeight: 258, count: 3)) == [0x05, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 3])
    }

    @Test func unknownAndEmptyFramesAreRejected() {
        #expect(code([]) == "empty_frame")
        for type: UInt8 in [0x00, 0x07, 0x7F, 0xFF] { #expect(code([type, 0, 0, 0]) == "unknown_type") }
    }

    @Test func oversizedCountsAreRejectedBeforeAllocating() {
        func u32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32($0))) } }
        let u64zero = [UInt8](repeating: 0, count: 8)
        // Transactions: over the per-frame limit, and a count larger than the bytes that follow.
        #expect(code([WireType.transactions] + u32(UInt32(WireLimits.transactionsPerFrame + 1))) == "count_out_of_range")
        #expect(code([WireType.transactions] + u32(UInt32.max)) == "count_out_of_range")
        #expect(code([WireType.transactions] + u32(1000) + [1, 2, 3]) == "count_mismatch")
        // Sync request: count 0 and over the limit.
        #expect(code([WireType.syncRequest] + u64zero + u32(0)) == "count_out_of_range")
        #expect(code([WireType.syncRequest] + u64zero + u32(UInt32(WireLimits.syncBlocksPerRequest + 1)))
                == "count_out_of_range")
        // Sync response: too many blocks, or more than the bytes left.
        #expect(code([WireType.syncResponse] + u64zero + u32(UInt32(WireLimits.syncBlocksPerRequest + 1)))
                == "count_out_of_range")
        #expect(code([WireType.syncResponse] + u64zero + u32(3)) == "count_mismatch")
    }

    @Test func syncResponseMustBeConsecutive() throws {
        var gen = Gen(rng: SeededRNG(seed: 42))
        let blocks = [gen.committed(height: 5), gen.committed(height: 7)]
        let bytes = WireCodec.encode(.syncResponse(fromHeight: 5, blocks: blocks))
        #expect(code(bytes) == "malformed")
        #expect(code(WireCodec.encode(.syncResponse(fromHeight: 9, blocks: []))) == nil)
    }

    @Test func syncResponseFitsTheFrameBudget() throws {
        var gen = Gen(rng: SeededRNG(seed: 7))
        let blocks = (0..<80).map { gen.committed(height: 100 + UInt64($0)) }
        let all = WireCodec.syncResponse(fromHeight: 100, blocks: blocks, maxFrameBytes: .max)
        guard case .syncResponse(_, let capped) = all else { Issue.record("not a sync response"); return }
        #expect(capped.count == WireLimits.syncBlocksPerRequest)
        let budget = WireCodec.encode(.syncResponse(fromHeight: 100, blocks: Array(blocks.prefix(5)))).count
        let fitted = WireCodec.syncResponse(fromHeight: 100, blocks: blocks, maxFrameBytes: budget)
        #expect(fitted == .syncResponse(fromHeight: 100, blocks: Array(blocks.prefix(5))))
        #expect(WireCodec.encode(fitted).count <= budget)
        #expect(WireCodec.syncResponse(fromHeight: 100, blocks: blocks, maxFrameBytes: 20)
                == .syncResponse(fromHeight: 100, blocks: []))
    }

    @Test func malformedBodiesAreRejected() {
        // A status whose hash is short, a hello whose name is not a valid name, a bad consensus tag.
        #expect(code([WireType.status] + [UInt8](repeating: 0, count: 8 + 31)) == "malformed")
        #expect(code([WireType.hello, 0, 1, 0, 0, 0, 1, 0x41]) == "malformed")
        #expect(code([WireType.consensus, 9]) == "malformed")
    }

    @Test func configDecodesMissingKeysAsDefaults() throws {
        let decoded = try JSONDecoder().decode(NetworkConfig.self, from: Data(#"{"maxInboundConnections": 5}"#.utf8))
        var expected = NetworkConfig()
        expected.maxInboundConnections = 5
        #expect(decoded == expected)
        #expect(try JSONDecoder().decode(NetworkConfig.self, from: Data("{}".utf8)) == NetworkConfig())
        #expect(NetworkConfig().maxFrameBytes == Limits.recordBytes + 64 * 1024)
        #expect(NetworkConfig().problems.isEmpty)
        var broken = NetworkConfig()
        broken.idleTimeoutMs = broken.statusIntervalMs
        #expect(!broken.problems.isEmpty)
        let again = try JSONDecoder().decode(NetworkConfig.self, from: try JSONEncoder().encode(decoded))
        #expect(again == decoded)
    }

    @Test func inboundLimitsDecodeAndAreChecked() throws {
        let json = #"{"maxHandshakesPerAddress": 2, "peerInboundBytes": 33554432, "peerInboundEvents": 100}"#
        let decoded = try JSONDecoder().decode(NetworkConfig.self, from: Data(json.utf8))
        #expect(decoded.maxHandshakesPerAddress == 2)
        #expect(decoded.peerInboundBytes == 32 * 1024 * 1024)
        #expect(decoded.peerInboundEvents == 100)
        let defaults = NetworkConfig()
        #expect(defaults.maxHandshakesPerAddress == 4)
        #expect(defaults.handshakeTimeoutMs == 3000)
        #expect(defaults.peerInboundBytes == 64 * 1024 * 1024)
        #expect(defaults.peerInboundEvents == 8192)
        // A budget that cannot hold one frame would stall a peer for ever.
        var small = defaults
        small.peerInboundBytes = small.maxFrameBytes - 1
        #expect(small.problems == ["peerInboundBytes must be at least maxFrameBytes"])
        var none = defaults
        none.maxHandshakesPerAddress = 0
        none.peerInboundEvents = 0
        #expect(none.problems.count == 2)
    }

    @Test func helloFrameBoundIsTheLargestHello() throws {
        let longest = try Name(String(repeating: "a", count: Name.lengthLimit))
        let hello = WireMessage.hello(PeerHello(chainID: longest, genesisHash: .zero, validator: longest,
                                                height: .max, lastBlockHash: .zero))
        #expect(WireCodec.frame(hello).count - WireLimits.lengthPrefixBytes == WireLimits.helloFrameBytes)
    }
}
