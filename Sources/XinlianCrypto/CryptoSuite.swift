import Crypto
import Foundation

/// Identifies one of the two supported crypto suites; fixed per consortium in genesis.
public enum CryptoSuiteID: String, Sendable, Codable, CaseIterable, Hashable, NamedValue {
    /// Ed25519 signatures with SHA-256 hashing (swift-crypto). The default.
    case ed25519SHA256 = "ed25519-sha256"
    /// SM2 signatures with SM3 hashing (GB/T 32918, GB/T 32905; system OpenSSL).
    case sm2SM3 = "sm2-sm3"

    /// One-byte code used in binary encodings: 1 for Ed25519/SHA-256, 2 for SM2/SM3.
    public var code: UInt8 {
        switch self {
        case .ed25519SHA256: 1
        case .sm2SM3: 2
        }
    }

    /// Looks up a suite by its binary ``code``; `nil` for unknown codes.
    public init?(code: UInt8) {
        guard let match = Self.allCases.first(where: { $0.code == code }) else { return nil }
        self = match
    }

    /// The binary codes and what they stand for, for messages: `1 (ed25519-sha256), 2 (sm2-sm3)`.
    public static var acceptedCodes: String {
        allCases.map { "\($0.code) (\($0.rawValue))" }.joined(separator: ", ")
    }

    public static let valueName = "suite"

    /// A misspelt suite is refused with the list of suites.
    public init(from decoder: any Decoder) throws {
        try self.init(decodingFrom: decoder)
    }
}

/// The single interface to hashing and signatures; all code goes through it.
public struct CryptoSuite: Sendable, Hashable {
    /// Which suite this is.
    public let id: CryptoSuiteID

    /// Creates the suite for an identifier.
    public init(_ id: CryptoSuiteID) {
        self.id = id
    }

    /// Ed25519 with SHA-256.
    public static let ed25519SHA256 = CryptoSuite(.ed25519SHA256)
    /// SM2 with SM3.
    public static let sm2SM3 = CryptoSuite(.sm2SM3)

    /// Ed25519 public key length in bytes.
    public static let publicKeyLengthEd25519 = 32
    /// SM2 public key length in bytes (uncompressed `04 || X || Y`).
    public static let publicKeyLengthSM2 = 65
    /// Digest length in bytes, for both suites.
    public static let digestLength = 32

    /// Public key length: 32 for Ed25519, 65 for SM2 (uncompressed point).
    public var publicKeyLength: Int {
        switch id {
        case .ed25519SHA256: Self.publicKeyLengthEd25519
        case .sm2SM3: Self.publicKeyLengthSM2
        }
    }

    /// Private key length: 32 for both (Ed25519 seed; SM2 big-endian scalar).
    public var privateKeyLength: Int { 32 }

    /// Signature length: 64 for both (Ed25519 `R || S`; SM2 fixed `r || s`, big-endian).
    public var signatureLength: Int { 64 }

    /// Hashes `data` with SHA-256 or SM3.
    public func hash(_ data: [UInt8]) -> Hash32 {
        switch id {
        case .ed25519SHA256: Hash32(unchecked: Array(SHA256.hash(data: data)))
        case .sm2SM3: SM3.hash(data)
        }
    }

    /// Returns `H(tag || parts[0] || parts[1] || ...)`, hashed incrementally without concatenating.
    public func hash(tag: UInt8, _ parts: [UInt8]...) -> Hash32 {
        var hasher = makeHasher()
        hasher.update(byte: tag)
        for part in parts {
            hasher.update(part)
        }
        return hasher.finalize()
    }

    /// A fresh incremental hasher for this suite.
    public func makeHasher() -> IncrementalHasher {
        IncrementalHasher(suite: id)
    }

    /// Generates a new signing key from system randomness.
    public func generateSigningKey() -> SigningKey {
        switch id {
        case .ed25519SHA256:
            SigningKey(ed25519: Curve25519.Signing.PrivateKey())
        case .sm2SM3:
            SigningKey.generateSM2()
        }
    }

    /// Restores a signing key from its 32 private key bytes.
    ///
    /// - Throws: `invalid_private_key` for a wrong length or (SM2) a scalar outside `[1, n-2]`.
    public func signingKey(privateKey: [UInt8]) throws(CryptoError) -> SigningKey {
        guard privateKey.count == privateKeyLength else {
            throw .invalidPrivateKey("expected \(privateKeyLength) bytes, got \(privateKey.count)")
        }
        switch id {
        case .ed25519SHA256:
            do {
                return SigningKey(ed25519: try Curve25519.Signing.PrivateKey(rawRepresentation: privateKey))
            } catch {
                throw .invalidPrivateKey("\(error)")
            }
        case .sm2SM3:
            return try SigningKey(sm2PrivateKey: privateKey)
        }
    }

    /// Parses and validates public key bytes (SM2: the point must be on the curve).
    ///
    /// - Throws: `invalid_public_key`.
    public func publicKey(_ bytes: [UInt8]) throws(CryptoError) -> PublicKey {
        guard bytes.count == publicKeyLength else {
            throw .invalidPublicKey("expected \(publicKeyLength) bytes, got \(bytes.count)")
        }
        return try PublicKey(suite: id, bytes: bytes)
    }
}
