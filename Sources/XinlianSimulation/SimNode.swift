import XinlianConsensus
import XinlianCore
import XinlianCrypto

/// The last (height, round, step) a simulated validator signed: the in-memory double-sign guard, with the
/// rules of the storage `SignerState` (never sign a different message at or before that position).
struct SignedPosition: Sendable, Hashable {
    var height: UInt64
    var round: UInt32
    var step: ConsensusStep
    var bytes: [UInt8]
    var signature: [UInt8]
}

/// What flows over the simulated network.
enum NetworkMessage: Sendable {
    case consensus(ConsensusMessage)
    case status(height: UInt64)
    case syncRequest(fromHeight: UInt64)
    case syncResponse([CommittedBlock])
}

/// One simulated validator: durable state (chain, signer position) survives a crash; the core does not.
struct SimNode: Sendable {
    let index: Int
    let id: ValidatorID
    let key: SigningKey
    let behaviour: ByzantineBehaviour?
    // Durable.
    var chain: [CommittedBlock] = []
    var lastSigned: SignedPosition?
    /// Votes signed at the height being decided (a consensus write-ahead log): after a crash they are fed back
    /// to the new core, or a vote lost in flight could leave a round short of its quorum forever.
    var ownVotes: [SignedVote] = []
    // Volatile.
    var core: ConsensusCore?
    /// The node's peer gate (``PeerGate``, the node's own), fresh with each core.
    var gate: PeerGate?
    /// Messages of decided heights, kept by a `replayer` to send again.
    var replay: [ConsensusMessage] = []
    var incarnation: UInt64 = 0
    var syncRequestedAtMs: UInt64?

    init(index: Int, id: ValidatorID, key: SigningKey, behaviour: ByzantineBehaviour?) {
        self.index = index
        self.id = id
        self.key = key
        self.behaviour = behaviour
    }

    var isHonest: Bool { behaviour == nil }
    var isUp: Bool { core != nil }

    /// Signs unless that would conflict with what was signed before; records the position first.
    mutating func guardedSign(_ request: SignRequest) -> [UInt8]? {
        let bytes = request.signingBytes
        if let last = lastSigned {
            let position = (last.height, last.round, last.step.rawValue)
            let requested = (request.height, request.round, request.step.rawValue)
            if requested == position { return last.bytes == bytes ? last.signature : nil }
            guard requested > position else { return nil }
        }
        guard let signature = try? key.sign(bytes) else { return nil }
        lastSigned = SignedPosition(height: request.height, round: request.round, step: request.step, bytes: bytes,
                                    signature: signature)
        return signature
    }

    /// Keeps `vote` in the durable log of this height's own votes (bounded: the oldest go first).
    mutating func remember(_ vote: SignedVote) {
        ownVotes.removeAll { $0.vote.height != vote.vote.height }
        if ownVotes.count >= Self.ownVotesLimit { ownVotes.removeFirst() }
        ownVotes.append(vote)
    }

    /// Own votes kept: two per round for every round the core retains.
    static let ownVotesLimit = 2 * Int(ConsensusCore.retainedPastRounds + ConsensusCore.futureRoundsLimit + 1)

    /// Signs without the guard: what a Byzantine validator does.
    func rawSign(_ bytes: [UInt8]) -> [UInt8] {
        (try? key.sign(bytes)) ?? []
    }
}

/// The fixed parts of a simulated consortium: genesis, keys and a pool of signed transactions.
struct SimulatedConsortium: Sendable {
    static let chainID: ChainID = "xinlian-sim"
    static let genesisTimeMs: UInt64 = 1_764_000_000_000
    static let transactionPoolSize = 4
    /// Genesis's `maxBlockTransactions` in simulations: honest blocks take at most this many of the pool; an
    /// `oversizedBlock` proposer takes them all.
    static let maxBlockTransactions: UInt32 = 3

    let consortium: Consortium
    let keys: [SigningKey]
    let transactions: [Transaction]
    /// Signed by a member institution, dated past `Int64.max`: what a `poisonedTransactions` proposer includes.
    let poisoned: Transaction

    var suite: CryptoSuite { consortium.suite }
    var validators: ValidatorSet { consortium.validators }

    init(powers: [UInt64]) throws {
        let suite = CryptoSuite.ed25519SHA256
        func key(_ n: Int) throws -> SigningKey {
            try suite.signingKey(privateKey: [UInt8](repeating: 0, count: 30) + [UInt8(n >> 8), UInt8(n & 0xFF)])
        }
        let institution = try key(1_000)
        var records: [ValidatorRecord] = []
        var keys: [SigningKey] = []
        for (index, power) in powers.enumerated() {
            let signing = try key(index + 1)
            keys.append(signing)
            records.append(ValidatorRecord(id: try Self.validatorID(index), institution: "bank-a",
                                           publicKey: signing.publicKey.bytes.hexString, power: power,
                                           p2pAddress: "sim:\(index)", apiAddress: "sim:\(index)"))
        }
        var parameters = ConsensusParameters.defaults
        parameters.maxBlockTransactions = Self.maxBlockTransactions
        let genesis = Genesis(chainId: Self.chainID, cryptoSuite: .ed25519SHA256, genesisTimeMs: Self.genesisTimeMs,
                              parameters: parameters,
                              institutions: [InstitutionRecord(id: "bank-a", name: "Bank A", roles: [.member],
                                                               publicKey: institution.publicKey.bytes.hexString)],
                              validators: records)
        consortium = try Consortium(genesis)
        self.keys = keys
        transactions = try (0..<Self.transactionPoolSize).map { n in
            let body = TransactionBody(chainID: Self.chainID, kind: .facilityOpened, reporter: "bank-a",
                                       subject: try USCC.withCheckCharacter("91310000" + String(String(1_000_000_000 + n).dropFirst())),
                                       timeMs: Self.genesisTimeMs, nonce: UInt64(n),
                                       payload: Array("{\"amount\":\(n + 1)}".utf8))
            return try Transaction.sign(body, with: institution)
        }
        poisoned = try Transaction.sign(TransactionBody(chainID: Self.chainID, kind: .facilityOpened, reporter: "bank-a",
                                                        subject: try USCC.withCheckCharacter("91310000999999999"),
                                                        timeMs: UInt64(Int64.max) + 1, nonce: 99,
                                                        payload: Array("{\"amount\":1}".utf8)),
                                        with: institution)
    }

    /// `v00`, `v01`, ...: zero-padded so the validator set's id order is the index order.
    static func validatorID(_ index: Int) throws -> ValidatorID {
        try Name(index < 10 ? "v0\(index)" : "v\(index)")
    }

    /// A block on top of `chain`, with a few pool transactions; `variant` makes a different block (equivocation).
    func block(on chain: [CommittedBlock], proposer: ValidatorID, nowMs: UInt64, variant: UInt64) -> Block {
        let height = UInt64(chain.count + 1)
        let previous = chain.last?.block.header
        let included = Array(transactions.prefix(Int((height + variant) % UInt64(Self.maxBlockTransactions + 1))))
        let time = max(Self.genesisTimeMs + nowMs, previous?.timeMs ?? Self.genesisTimeMs) + variant
        let header = BlockHeader(chainID: Self.chainID, height: height, timeMs: time,
                                 previousHash: previous?.hash(suite) ?? consortium.genesisHash,
                                 transactionsRoot: Block.transactionsRoot(included, suite: suite), stateRoot: .zero,
                                 validatorSetHash: validators.hash, proposer: proposer,
                                 transactionCount: UInt32(included.count))
        return Block(header: header, transactions: included)
    }

    /// A block like ``block(on:proposer:nowMs:variant:)`` but over `transactions`.
    func block(on chain: [CommittedBlock], proposer: ValidatorID, nowMs: UInt64, transactions included: [Transaction]) -> Block {
        let honest = block(on: chain, proposer: proposer, nowMs: nowMs, variant: 0)
        var header = honest.header
        header.transactionsRoot = Block.transactionsRoot(included, suite: suite)
        header.transactionCount = UInt32(included.count)
        return Block(header: header, transactions: included)
    }

    /// The shell's validation: the real block rules (`BlockVerifier.checkBlock`: links, genesis's limits, times),
    /// and a well-formed header linked to `chain`, with a matching transactions root.
    func isValid(_ block: Block, on chain: [CommittedBlock]) -> Bool {
        let header = block.header
        let previous = chain.last?.block.header
        do {
            try BlockVerifier.checkBlock(block, height: UInt64(chain.count + 1),
                                         previousHash: previous?.hash(suite) ?? consortium.genesisHash,
                                         previousTimeMs: previous?.timeMs ?? Self.genesisTimeMs, consortium: consortium)
        } catch {
            return false
        }
        return header.chainID == Self.chainID && header.height == UInt64(chain.count + 1)
            && header.previousHash == (previous?.hash(suite) ?? consortium.genesisHash)
            && header.validatorSetHash == validators.hash && validators.member(header.proposer) != nil
            && header.timeMs >= (previous?.timeMs ?? Self.genesisTimeMs)
            && Int(header.transactionCount) == block.transactions.count
            && header.transactionsRoot == Block.transactionsRoot(block.transactions, suite: suite)
    }
}
