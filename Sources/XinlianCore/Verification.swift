import XinlianCrypto
import XinlianMerkle

/// Why a block, certificate, transaction or genesis failed verification.
public struct VerificationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable code, e.g. `bad_signature`, `bad_link`, `bad_transactions_root`, `no_quorum`.
    public let code: String
    public let message: String
    /// Index of the offending transaction inside its block, when there is one.
    public let transactionIndex: Int?

    public init(code: String, message: String, transactionIndex: Int? = nil) {
        self.code = code
        self.message = message
        self.transactionIndex = transactionIndex
    }

    public var description: String { "\(code): \(message)" }
}

/// The rules a transaction must satisfy to enter a block, independent of the credit model.
public enum TransactionRules {
    /// How far a transaction's claimed time may be ahead of the clock it is judged by: the node's clock while it
    /// is pending (API, gossip, a proposal), its block's time once certified (block sync, replay, audit).
    public static let clockSkewLimitMs: UInt64 = 5 * 60 * 1000

    /// The latest transaction time acceptable against a clock reading of `clockMs` (saturating, never trapping).
    public static func latestTimeMs(clockMs: UInt64) -> UInt64 {
        let (latest, overflow) = clockMs.addingReportingOverflow(clockSkewLimitMs)
        return overflow ? .max : latest
    }

    /// The transaction's time is at most ``clockSkewLimitMs`` past `clockMs`.
    public static func checkTime(_ transaction: Transaction, clockMs: UInt64, clock: String = "the node's clock",
                                 index: Int? = nil) throws(VerificationError) {
        guard transaction.body.timeMs <= latestTimeMs(clockMs: clockMs) else {
            throw VerificationError(code: "time_in_future",
                                    message: "transaction time \(transaction.body.timeMs) is more than \(clockSkewLimitMs / 1000) s ahead of \(clock)",
                                    transactionIndex: index)
        }
    }

    public static func check(_ transaction: Transaction, consortium: Consortium, index: Int? = nil) throws(VerificationError) {
        let body = transaction.body
        guard body.chainID == consortium.chainID else {
            throw VerificationError(code: "wrong_chain", message: "transaction is for chain \(body.chainID), not \(consortium.chainID)",
                                    transactionIndex: index)
        }
        guard let key = consortium.institutionKeys[body.reporter] else {
            throw VerificationError(code: "unknown_reporter", message: "reporter \(body.reporter) is not a member",
                                    transactionIndex: index)
        }
        guard transaction.hasValidSignature(key) else {
            throw VerificationError(code: "bad_signature", message: "signature does not verify with \(body.reporter)'s key",
                                    transactionIndex: index)
        }
        guard Payload.isCanonical(body.payload) else {
            throw VerificationError(code: "invalid_payload",
                                    message: "payload must be the canonical text of a JSON object (see docs/formats.md)",
                                    transactionIndex: index)
        }
    }

    /// Who may submit what through a node's API, until the credit model's role rules land: nobody submits
    /// `queryRecord` (the node writes it when it serves a report) or `governance` (it needs two thirds of
    /// the validators' signatures); auditors submit nothing.
    public static func checkSubmission(_ transaction: Transaction, consortium: Consortium) throws(VerificationError) {
        let body = transaction.body
        guard body.kind != .queryRecord, body.kind != .governance else {
            throw VerificationError(code: "kind_not_submittable",
                                    message: "\(body.kind.rawValue) transactions are not accepted through the API")
        }
        let roles = consortium.institutionRoles[body.reporter] ?? []
        guard !roles.isEmpty, roles != [.auditor] else {
            throw VerificationError(code: "role_not_permitted", message: "\(body.reporter) has no role that may submit")
        }
    }
}

/// Pure checks of committed blocks, shared by the node, block sync and the offline auditor.
public enum BlockVerifier {
    /// Everything about `record` except transaction signatures (see `checkSignatures`), given the hash of the
    /// block before it (the genesis hash for height 1).
    public static func checkStructure(_ record: CommittedBlock, height: UInt64, previousHash: Hash32,
                                      previousTimeMs: UInt64? = nil, consortium: Consortium) throws(VerificationError) {
        // A certified block's limits are on its signed bytes: personal data a peer attaches (or a proposer left
        // out) must not turn a decided block into one this node cannot commit.
        try checkBlock(record.block, height: height, previousHash: previousHash, previousTimeMs: previousTimeMs,
                       consortium: consortium, countingPersonalData: false)
        try checkCertificate(record.certificate, header: record.block.header, consortium: consortium)
    }

    /// The block's header and transaction list, without a certificate: what a validator checks in a proposal
    /// (before it has one) and block sync checks before the certificate. Genesis's block limits hold for every
    /// block, whoever proposed it; no transaction is dated more than ``TransactionRules/clockSkewLimitMs`` after
    /// its block; with `previousTimeMs` (the parent's time), the block is not older than its parent.
    public static func checkBlock(_ block: Block, height: UInt64, previousHash: Hash32, previousTimeMs: UInt64? = nil,
                                  consortium: Consortium, countingPersonalData: Bool = true) throws(VerificationError) {
        let header = block.header
        guard header.chainID == consortium.chainID else {
            throw VerificationError(code: "wrong_chain", message: "header chain id \(header.chainID)")
        }
        guard header.height == height else {
            throw VerificationError(code: "bad_height", message: "expected height \(height), found \(header.height)")
        }
        guard header.previousHash == previousHash else {
            throw VerificationError(code: "bad_link",
                                    message: "previous hash \(header.previousHash) does not match \(previousHash)")
        }
        guard header.validatorSetHash == consortium.validators.hash else {
            throw VerificationError(code: "bad_validator_set", message: "validator set hash does not match genesis")
        }
        guard block.transactions.count == Int(header.transactionCount) else {
            throw VerificationError(code: "bad_transaction_count",
                                    message: "header says \(header.transactionCount) transactions, block has \(block.transactions.count)")
        }
        try checkLimits(block, parameters: consortium.genesis.parameters, countingPersonalData: countingPersonalData)
        if let previousTimeMs, header.timeMs < previousTimeMs {
            throw VerificationError(code: "bad_time", message: "block time \(header.timeMs) is before its parent's \(previousTimeMs)")
        }
        for (index, transaction) in block.transactions.enumerated() {
            try TransactionRules.checkTime(transaction, clockMs: header.timeMs, clock: "its block's time", index: index)
        }
        guard consortium.validators.member(header.proposer) != nil else {
            throw VerificationError(code: "unknown_proposer", message: "proposer \(header.proposer) is not a validator")
        }
        let root = Block.transactionsRoot(block.transactions, suite: consortium.suite)
        guard root == header.transactionsRoot else {
            throw VerificationError(code: "bad_transactions_root",
                                    message: "transactions root \(header.transactionsRoot) but transactions hash to \(root)")
        }
    }

    /// At most `maxBlockTransactions` transactions holding at most `maxBlockBytes` bytes (their canonical
    /// encodings, and with `countingPersonalData` the personal data carried with them: a proposal's), as genesis
    /// sets them. Counted before anything about the transactions is checked.
    public static func checkLimits(_ block: Block, parameters: ConsensusParameters,
                                   countingPersonalData: Bool = true) throws(VerificationError) {
        guard block.transactions.count <= Int(parameters.maxBlockTransactions) else {
            throw VerificationError(code: "block_too_large",
                                    message: "\(block.transactions.count) transactions, limit \(parameters.maxBlockTransactions)")
        }
        var bytes = 0
        for transaction in block.transactions {
            bytes += countingPersonalData ? transaction.carriedBytes : transaction.canonicalBytes.count
            guard bytes <= Int(parameters.maxBlockBytes) else {
                throw VerificationError(code: "block_too_large",
                                        message: "transactions exceed \(parameters.maxBlockBytes) bytes")
            }
        }
    }

    /// Chain id, reporter and signature of every transaction in `transactions`, numbered from `firstIndex`.
    public static func checkSignatures(_ transactions: ArraySlice<Transaction>, consortium: Consortium) throws(VerificationError) {
        for index in transactions.indices {
            try TransactionRules.check(transactions[index], consortium: consortium, index: index)
        }
    }

    /// The certificate is for this header and carries precommits from more than two thirds of the voting power.
    public static func checkCertificate(_ certificate: CommitCertificate, header: BlockHeader,
                                        consortium: Consortium) throws(VerificationError) {
        let blockHash = header.hash(consortium.suite)
        guard certificate.height == header.height, certificate.blockHash == blockHash else {
            throw VerificationError(code: "bad_certificate", message: "certificate is for another block")
        }
        var power: UInt64 = 0
        var previous: ValidatorID?
        for item in certificate.signatures {
            // Strictly increasing ids: no signer counted twice, whether decoded or assembled in memory.
            guard previous.map({ $0 < item.validator }) ?? true else {
                throw VerificationError(code: "bad_certificate", message: "signers must be sorted with no repeats")
            }
            previous = item.validator
            guard let member = consortium.validators.member(item.validator) else {
                throw VerificationError(code: "bad_certificate", message: "signer \(item.validator) is not a validator")
            }
            let vote = certificate.vote(chainID: consortium.chainID, validator: item.validator)
            guard member.publicKey.isValidSignature(item.signature, for: vote.signingBytes) else {
                throw VerificationError(code: "bad_certificate", message: "precommit of \(item.validator) does not verify")
            }
            power += member.power
        }
        guard consortium.validators.isQuorum(power) else {
            throw VerificationError(code: "no_quorum",
                                    message: "precommits hold \(power) of \(consortium.validators.totalPower) voting power")
        }
    }
}

/// The state-root rules: each enterprise has its own hash chain of transactions.
public enum EnterpriseState {
    /// The sparse Merkle key of an enterprise: `H(0x15 || USCC)`.
    public static func key(_ subject: USCC, suite: CryptoSuite) -> Hash32 {
        suite.hash(tag: Domain.enterpriseKey, Array(subject.code.utf8))
    }

    /// `head' = H(0x14 || head || transaction id)`; an enterprise with no records has no leaf.
    public static func nextHead(_ head: Hash32, transactionID: Hash32, suite: CryptoSuite) -> Hash32 {
        suite.hash(tag: Domain.enterpriseHead, head.bytes, transactionID.bytes)
    }

    /// New heads for every enterprise `transactions` touch, given the heads before them.
    public static func heads(after transactions: [Transaction], suite: CryptoSuite,
                             currentHead: (USCC) throws -> Hash32?) rethrows -> [USCC: Hash32] {
        var heads: [USCC: Hash32] = [:]
        for transaction in transactions {
            guard let subject = transaction.body.subject else { continue }
            let previous = try heads[subject] ?? currentHead(subject) ?? .zero
            heads[subject] = nextHead(previous, transactionID: transaction.id(suite), suite: suite)
        }
        return heads
    }
}
