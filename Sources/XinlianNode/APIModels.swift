import Foundation
import XinlianCore
import XinlianCrypto

/// The JSON error body every failing request gets: `{"error": {"code": ..., "message": ...}}`.
public struct APIErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var code: String
        public var message: String
        /// Per-item errors of a rejected batch, by position.
        public var items: [ItemError]?
    }

    public struct ItemError: Error, Codable, Sendable, Equatable {
        public var index: Int
        public var code: String
        public var message: String
    }

    public var error: Detail
}

/// `POST /v1/transactions` body: base64 of each transaction's canonical encoding, and, at the same positions, base64
/// of the personal data (``PersonalData``) its payload commits to (null or absent for those without).
public struct SubmitRequest: Codable, Sendable {
    public var transactions: [String]
    public var personal: [String?]?

    public init(transactions: [String], personal: [String?]? = nil) {
        self.transactions = transactions
        self.personal = personal
    }

    /// The request for `transactions`, each with the personal data it carries.
    public init(_ transactions: [Transaction]) {
        self.transactions = transactions.map { Data($0.canonicalBytes).base64EncodedString() }
        let personal = transactions.map { $0.personal.map { Data($0.canonicalBytes).base64EncodedString() } }
        self.personal = personal.contains { $0 != nil } ? personal : nil
    }
}

public struct SubmitResponse: Codable, Sendable, Equatable {
    public struct Item: Codable, Sendable, Equatable {
        public var id: String
        /// `pending` or `committed`.
        public var status: String
        public var height: UInt64?
    }
    public var results: [Item]
}

/// A transaction as JSON, for reading.
public struct TransactionView: Codable, Sendable, Equatable {
    public var id: String
    public var chainId: String
    public var kind: String
    public var reporter: String
    public var subject: String?
    public var time: String
    public var timeMs: UInt64
    public var nonce: UInt64
    public var payload: JSONValue?
    public var signature: String

    public init(_ transaction: Transaction, suite: CryptoSuite) {
        let body = transaction.body
        id = transaction.id(suite).hex
        chainId = body.chainID.value
        kind = body.kind.rawValue
        reporter = body.reporter.value
        subject = body.subject?.code
        timeMs = body.timeMs
        time = Timestamps.iso8601(body.timeMs)
        nonce = body.nonce
        payload = try? JSONParser.parse(body.payload)
        signature = transaction.signature.hexString
    }
}

public struct HeaderView: Codable, Sendable, Equatable {
    public var hash: String
    public var chainId: String
    public var height: UInt64
    public var time: String
    public var timeMs: UInt64
    public var previousHash: String
    public var transactionsRoot: String
    public var stateRoot: String
    public var validatorSetHash: String
    public var proposer: String
    public var transactionCount: UInt32

    public init(_ header: BlockHeader, suite: CryptoSuite) {
        hash = header.hash(suite).hex
        chainId = header.chainID.value
        height = header.height
        timeMs = header.timeMs
        time = Timestamps.iso8601(header.timeMs)
        previousHash = header.previousHash.hex
        transactionsRoot = header.transactionsRoot.hex
        stateRoot = header.stateRoot.hex
        validatorSetHash = header.validatorSetHash.hex
        proposer = header.proposer.value
        transactionCount = header.transactionCount
    }
}

public struct CertificateView: Codable, Sendable, Equatable {
    public struct Signature: Codable, Sendable, Equatable {
        public var validator: String
        public var signature: String
    }
    public var height: UInt64
    public var round: UInt32
    public var blockHash: String
    public var signatures: [Signature]

    public init(_ certificate: CommitCertificate) {
        height = certificate.height
        round = certificate.round
        blockHash = certificate.blockHash.hex
        signatures = certificate.signatures.map { Signature(validator: $0.validator.value, signature: $0.signature.hexString) }
    }
}

/// `GET /v1/headers/{height}`.
public struct HeaderResponse: Codable, Sendable, Equatable {
    public var header: HeaderView
    public var certificate: CertificateView
}

/// `GET /v1/blocks/{height}`: the JSON view plus `encoded`, base64 of the canonical record
/// (block and certificate) exactly as the block log stores it.
public struct BlockResponse: Codable, Sendable, Equatable {
    public var header: HeaderView
    public var transactions: [TransactionView]
    public var certificate: CertificateView
    public var encoded: String
}

/// `GET /v1/transactions/{id}`.
public struct TransactionStatusResponse: Codable, Sendable, Equatable {
    public var id: String
    /// `pending`, `committed` or `rejected`.
    public var status: String
    public var height: UInt64?
    public var index: Int?
    public var error: APIErrorBody.Detail?
    public var transaction: TransactionView?
    public var proof: InclusionProof?
}

public enum Timestamps {
    /// RFC 3339 UTC with milliseconds.
    public static func iso8601(_ ms: UInt64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}
