import Testing
import XinlianConsensus
import XinlianCore
import XinlianCrypto

/// A consortium of `powers.count` validators (`v0`, `v1`, ...) with deterministic Ed25519 keys.
struct TestCluster {
    static let chainID: ChainID = "xinlian-test"
    let consortium: Consortium
    let keys: [ValidatorID: SigningKey]
    let ids: [ValidatorID]
    let outsiderKey: SigningKey

    init(powers: [UInt64] = [10, 10, 10, 10]) throws {
        let suite = CryptoSuite.ed25519SHA256
        func key(_ n: Int) throws -> SigningKey {
            try suite.signingKey(privateKey: [UInt8](repeating: 0, count: 31) + [UInt8(n)])
        }
        let institution = try key(100)
        var records: [ValidatorRecord] = []
        var keys: [ValidatorID: SigningKey] = [:]
        for (index, power) in powers.enumerated() {
            let id = try Name("v\(index)")
            let signing = try key(index + 1)
            keys[id] = signing
            records.append(ValidatorRecord(id: id, institution: "bank-a", publicKey: signing.publicKey.bytes.hexString,
                                           power: power, p2pAddress: "x:\(index)", apiAddress: "x:\(index)"))
        }
        let genesis = Genesis(chainId: Self.chainID, cryptoSuite: .ed25519SHA256, genesisTimeMs: 1_764_000_000_000,
                              parameters: .defaults,
                              institutions: [InstitutionRecord(id: "bank-a", name: "Bank A", roles: [.member],
                                                               publicKey: institution.publicKey.bytes.hexString)],
                              validators: records)
        consortium = try Consortium(genesis)
        self.keys = keys
        ids = consortium.validators.members.map(\.id)
        outsiderKey = try key(99)
    }

    var suite: CryptoSuite { consortium.suite }
    var validators: ValidatorSet { consortium.validators }
    var schedule: ProposerSchedule { ProposerSchedule(validators) }

    func proposer(height: UInt64 = 1, round: UInt32) -> ValidatorID { schedule.proposer(height: height, round: round) }

    /// A validator that does not propose in `round` of height 1.
    func nonProposer(round: UInt32 = 0) -> ValidatorID {
        ids.first { $0 != proposer(round: round) } ?? ids[0]
    }

    func core(for local: ValidatorID?, timeouts: TimeoutConfig = .standard) -> ConsensusCore {
        ConsensusCore(configuration: ConsensusConfiguration(chainID: Self.chainID, suite: suite, localValidator: local,
                                                            timeouts: timeouts))
    }

    var start: ConsensusEvent {
        .start(height: 1, validators: validators, previousBlockHash: consortium.genesisHash)
    }

    func block(height: UInt64 = 1, proposer: ValidatorID, time: UInt64 = 0) -> Block {
        let header = BlockHeader(chainID: Self.chainID, height: height, timeMs: 1_764_000_000_000 + time,
                                 previousHash: consortium.genesisHash,
                                 transactionsRoot: Block.transactionsRoot([], suite: suite), stateRoot: .zero,
                                 validatorSetHash: validators.hash, proposer: proposer, transactionCount: 0)
        return Block(header: header, transactions: [])
    }

    func hash(_ block: Block) -> Hash32 { block.header.hash(suite) }

    func signedProposal(_ block: Block, round: UInt32, polRound: UInt32? = nil, height: UInt64 = 1,
                        by signer: ValidatorID? = nil) throws -> SignedProposal {
        let proposer = signer ?? self.proposer(height: height, round: round)
        let proposal = Proposal(chainID: Self.chainID, height: height, round: round, blockHash: hash(block),
                                polRound: polRound, proposer: proposer)
        let key = try #require(keys[proposer])
        return SignedProposal(proposal: proposal, signature: try key.sign(proposal.signingBytes))
    }

    func vote(_ kind: VoteKind, _ blockHash: Hash32?, by validator: ValidatorID, round: UInt32 = 0,
              height: UInt64 = 1, key: SigningKey? = nil) throws -> SignedVote {
        let vote = Vote(chainID: Self.chainID, kind: kind, height: height, round: round, blockHash: blockHash,
                        validator: validator)
        let signer = try #require(key ?? keys[validator])
        return SignedVote(vote: vote, signature: try signer.sign(vote.signingBytes))
    }

    /// Signs whatever the core asked to be signed, as a shell would.
    func answer(_ request: SignRequest, as validator: ValidatorID) throws -> ConsensusEvent {
        let key = try #require(keys[validator])
        let signature = try key.sign(request.signingBytes)
        switch request {
        case .proposal(let proposal): return .signed(.proposal(SignedProposal(proposal: proposal, signature: signature)))
        case .vote(let vote): return .signed(.vote(SignedVote(vote: vote, signature: signature)))
        }
    }
}

extension Array where Element == ConsensusAction {
    var signRequests: [SignRequest] {
        compactMap { if case .sign(let request) = $0 { request } else { nil } }
    }

    var votesToSign: [Vote] {
        signRequests.compactMap { if case .vote(let vote) = $0 { vote } else { nil } }
    }

    var timeouts: [(Timeout, UInt64)] {
        compactMap { if case .scheduleTimeout(let timeout, let duration) = $0 { (timeout, duration) } else { nil } }
    }

    var commits: [(Block, CommitCertificate)] {
        compactMap { if case .commit(let block, let certificate) = $0 { (block, certificate) } else { nil } }
    }

    var evidence: [Equivocation] {
        compactMap { if case .evidence(let equivocation) = $0 { equivocation } else { nil } }
    }
}

/// A core under test plus the cluster's keys: drives it like a shell that answers every request at once.
struct Harness {
    let cluster: TestCluster
    let local: ValidatorID
    var core: ConsensusCore
    var log: [ConsensusAction] = []

    init(_ cluster: TestCluster, local: ValidatorID, timeouts: TimeoutConfig = .standard) {
        self.cluster = cluster
        self.local = local
        core = cluster.core(for: local, timeouts: timeouts)
    }

    /// Steps the core; validation requests are answered `valid` and sign requests are signed and fed back.
    @discardableResult
    mutating func feed(_ event: ConsensusEvent, valid: Bool = true) throws -> [ConsensusAction] {
        var pending = [event]
        var all: [ConsensusAction] = []
        while !pending.isEmpty {
            let actions = core.step(pending.removeFirst())
            all += actions
            for action in actions {
                switch action {
                case .sign(let request): pending.append(try cluster.answer(request, as: local))
                case .validateBlock(let block): pending.append(.blockValidated(hash: cluster.hash(block), valid: valid))
                default: break
                }
            }
        }
        log += all
        return all
    }

    /// Feeds votes of `kind` for `blockHash` from `voters`.
    @discardableResult
    mutating func votes(_ kind: VoteKind, _ blockHash: Hash32?, from voters: [ValidatorID],
                        round: UInt32 = 0) throws -> [ConsensusAction] {
        var all: [ConsensusAction] = []
        for voter in voters { all += try feed(.vote(try cluster.vote(kind, blockHash, by: voter, round: round))) }
        return all
    }

    var others: [ValidatorID] { cluster.ids.filter { $0 != local } }
}
