import Foundation
import XinlianCore
import XinlianCrypto
import XinlianMerkle

/// What a verifiable report carries so that a reader can check it from genesis alone (`docs/credit-model.md`,
/// "Verifiable reports"). Canonical encodings are standard base64; hashes lowercase hex.
public struct ReportProof: Codable, Sendable, Equatable {
    /// A committed header with its commit certificate.
    public struct CertifiedHeader: Codable, Sendable, Equatable {
        /// Base64 of the canonical header.
        public var header: String
        /// Base64 of the canonical commit certificate.
        public var certificate: String

        public init(header: String, certificate: String) {
            self.header = header
            self.certificate = certificate
        }
    }

    /// A transaction with its place: the RFC 6962 audit path to the transactions root of the block at `height`.
    public struct ProvenTransaction: Codable, Sendable, Equatable {
        /// Base64 of the canonical transaction.
        public var transaction: String
        public var height: UInt64
        public var index: Int
        /// Hex hashes from the leaf's sibling up to the root.
        public var path: [String]
        /// Base64 of the personal data the transaction's payload commits to, while the node holds it (absent once
        /// erased); checked against the commitment.
        public var personal: String?

        public init(transaction: String, height: UInt64, index: Int, path: [String], personal: String? = nil) {
            self.transaction = transaction
            self.height = height
            self.index = index
            self.path = path
            self.personal = personal
        }
    }

    /// The header at `asOf.height` and its certificate.
    public var asOf: CertifiedHeader
    /// The sparse Merkle proof of the subject's record head (or its absence) under `asOf`'s state root.
    public var state: SMTProof
    /// Headers and certificates of every other height holding a transaction below, ascending by height.
    public var blocks: [CertifiedHeader]
    /// Every transaction whose subject is the report's, in ledger order: they rebuild the record head.
    public var transactions: [ProvenTransaction]
    /// The counterparty closure (guarantees the subject gave and what names them), in ledger order; proven included,
    /// but their completeness is not committed to by the state root.
    public var counterparty: [ProvenTransaction]

    public init(asOf: CertifiedHeader, state: SMTProof, blocks: [CertifiedHeader], transactions: [ProvenTransaction],
                counterparty: [ProvenTransaction]) {
        self.asOf = asOf
        self.state = state
        self.blocks = blocks
        self.transactions = transactions
        self.counterparty = counterparty
    }
}

/// Why a report failed verification: a stable code and what exactly failed.
public struct ReportVerificationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `malformed_proof`, `wrong_chain`, `bad_validator_set`, `bad_certificate`, `no_quorum`, `as_of_mismatch`,
    /// `missing_block`, `bad_transaction`, `bad_inclusion`, `out_of_order`, `wrong_subject`, `head_mismatch`,
    /// `not_a_counterparty`, `report_mismatch`.
    public let code: String
    public let message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

/// Checks a served report against its proof, from genesis alone. Pure.
public enum ReportVerifier {
    /// Verifies `report` with `proof` for `consortium`: every certificate carries more than two thirds of the voting
    /// power of genesis's validators over a header of this chain; the header at `asOf` is the one the report names;
    /// every transaction is signed and included at its height and index; the subject's transactions, in ledger order,
    /// rebuild the record head the state proof shows under `asOf`'s state root (absence when there are none);
    /// counterparty transactions are guarantees naming the subject as guarantor or name one of those (transitively);
    /// and the report assembled again from exactly these transactions equals `report`.
    public static func verify(_ report: CreditReport, proof: ReportProof,
                              consortium: Consortium) throws(ReportVerificationError) {
        let suite = consortium.suite
        let asOfHeader = try certified(proof.asOf, consortium: consortium)
        guard asOfHeader.height == report.asOf.height, asOfHeader.hash(suite) == report.asOf.blockHash,
              asOfHeader.timeMs == report.asOf.time else {
            throw ReportVerificationError("as_of_mismatch", "the proven header at height \(asOfHeader.height) is not the report's asOf "
                                          + "(height \(report.asOf.height), block \(report.asOf.blockHash))")
        }
        var headers: [UInt64: BlockHeader] = [asOfHeader.height: asOfHeader]
        for block in proof.blocks {
            let header = try certified(block, consortium: consortium)
            guard header.height < asOfHeader.height else {
                throw ReportVerificationError("malformed_proof", "a proven block at height \(header.height) is above asOf")
            }
            headers[header.height] = header
        }
        let own = try proof.transactions.enumerated().map { (position, item) throws(ReportVerificationError) in
            try included(item, what: "transaction \(position)", headers: headers, consortium: consortium)
        }
        let counterparty = try proof.counterparty.enumerated().map { (position, item) throws(ReportVerificationError) in
            try included(item, what: "counterparty transaction \(position)", headers: headers, consortium: consortium)
        }

        // Completeness of the subject's own records: the head chain under the state root.
        var head = Hash32.zero
        for (position, entry) in own.enumerated() {
            guard entry.transaction.body.subject == report.subject else {
                throw ReportVerificationError("wrong_subject", "transaction \(position) (\(entry.id)) is not about \(report.subject)")
            }
            if position > 0, !((own[position - 1].height, own[position - 1].index) < (entry.height, entry.index)) {
                throw ReportVerificationError("out_of_order", "transaction \(position) (\(entry.id)) is not after the one before it")
            }
            head = EnterpriseState.nextHead(head, transactionID: entry.id, suite: suite)
        }
        let key = EnterpriseState.key(report.subject, suite: suite)
        let tree = SparseMerkleTree(suite: suite)
        guard tree.verify(proof: proof.state, root: asOfHeader.stateRoot, key: key, value: own.isEmpty ? nil : head) else {
            let shown: String
            if case .leaf(let leafKey, let value) = proof.state.terminal, leafKey == key {
                shown = "the state root holds head \(value)"
            } else {
                shown = "the state proof does not lead to the header's state root for this enterprise"
            }
            throw ReportVerificationError("head_mismatch", own.isEmpty
                ? "no transactions were given, but \(shown)"
                : "the \(own.count) transactions rebuild head \(head), but \(shown): one was dropped, altered or added")
        }

        // Counterparty statements: relevant to the subject, each found by the closure the node follows.
        var closure = Set<Hash32>()
        for (position, entry) in counterparty.enumerated() {
            guard let statement = try? CreditStatement.decode(kind: entry.transaction.body.kind, payload: entry.transaction.body.payload),
                  statement.counterparties.contains(report.subject) || statement.references.contains(where: closure.contains)
            else {
                throw ReportVerificationError("not_a_counterparty",
                                              "counterparty transaction \(position) (\(entry.id)) neither names \(report.subject) as guarantor "
                                              + "nor names an earlier counterparty statement")
            }
            closure.insert(entry.id)
        }

        let rebuilt = ReportAssembler.assemble(subject: report.subject, entries: own + counterparty, asOf: report.asOf,
                                               parameters: ReportParameters(consortium.genesis))
        guard rebuilt == report else {
            throw ReportVerificationError("report_mismatch", "the report differs from the one assembled from the proven transactions "
                                          + "(\(difference(report, rebuilt)))")
        }
    }

    /// The first top-level section where two reports differ.
    static func difference(_ served: CreditReport, _ rebuilt: CreditReport) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard case .object(let a)? = try? JSONDecoder().decode(JSONValue.self, from: (try? encoder.encode(served)) ?? Data()),
              case .object(let b)? = try? JSONDecoder().decode(JSONValue.self, from: (try? encoder.encode(rebuilt)) ?? Data())
        else { return "unreadable" }
        let keys = Set(a.keys).union(b.keys).sorted().filter { a[$0] != b[$0] }
        return "differs in " + keys.joined(separator: ", ")
    }

    /// Decodes a header and certificate and checks them against genesis: chain, validator set, certificate quorum.
    static func certified(_ item: ReportProof.CertifiedHeader,
                          consortium: Consortium) throws(ReportVerificationError) -> BlockHeader {
        let header = try decode(BlockHeader.self, item.header, "header", limit: 4096)
        let certificate = try decode(CommitCertificate.self, item.certificate, "certificate", limit: Limits.recordBytes)
        guard header.chainID == consortium.chainID else {
            throw ReportVerificationError("wrong_chain", "the header at height \(header.height) is for chain \(header.chainID), not \(consortium.chainID)")
        }
        guard header.validatorSetHash == consortium.validators.hash else {
            throw ReportVerificationError("bad_validator_set", "the header at height \(header.height) names another validator set than genesis")
        }
        do { try BlockVerifier.checkCertificate(certificate, header: header, consortium: consortium) } catch {
            throw ReportVerificationError(error.code == "no_quorum" ? "no_quorum" : "bad_certificate",
                                          "height \(header.height): \(error.message)")
        }
        return header
    }

    static func included(_ item: ReportProof.ProvenTransaction, what: String, headers: [UInt64: BlockHeader],
                         consortium: Consortium) throws(ReportVerificationError) -> LedgerEntry {
        let suite = consortium.suite
        var transaction = try decode(Transaction.self, item.transaction, what, limit: Limits.transactionBytes)
        // Personal data is joined only if it matches the signed commitment (the report assembly checks it): a node
        // cannot put a name into a verified report that the reporter did not sign.
        transaction.personal = try item.personal.map { (text: String) throws(ReportVerificationError) in
            try decode(PersonalData.self, text, "\(what) personal data", limit: PersonalData.encodedLimit)
        }
        let id = transaction.id(suite)
        do { try TransactionRules.check(transaction, consortium: consortium) } catch {
            throw ReportVerificationError("bad_transaction", "\(what) (\(id)): \(error.message)")
        }
        guard let header = headers[item.height] else {
            throw ReportVerificationError("missing_block", "\(what) (\(id)) is at height \(item.height), whose header is not in the proof")
        }
        let path = item.path.compactMap { Hash32(hex: $0) }
        let hasher = MerkleHasher(suite: suite)
        guard path.count == item.path.count, item.index >= 0,
              MerkleTree.verifyInclusion(index: item.index, treeSize: Int(header.transactionCount),
                                         leafHash: hasher.leafHash(transaction.canonicalBytes), proof: path,
                                         root: header.transactionsRoot, hasher: hasher) else {
            throw ReportVerificationError("bad_inclusion", "\(what) (\(id)) is not at index \(item.index) of the block at height \(item.height)")
        }
        return LedgerEntry(id: id, transaction: transaction, height: item.height, index: UInt32(item.index),
                           blockTimeMs: header.timeMs)
    }

    static func decode<T: CanonicalCodable>(_ type: T.Type, _ base64: String, _ field: String,
                                            limit: Int) throws(ReportVerificationError) -> T {
        guard let data = Data(base64Encoded: base64) else {
            throw ReportVerificationError("malformed_proof", "\(field) is not base64")
        }
        do { return try T(canonicalBytes: Array(data), limit: limit) } catch {
            throw ReportVerificationError("malformed_proof", "\(field): \(error)")
        }
    }
}
