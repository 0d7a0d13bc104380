import Crypto
import Foundation

/// A private signing key of one suite.
public struct SigningKey: Sendable {
    private enum Backing: Sendable {
        case ed25519(Curve25519.Signing.PrivateKey)
        case sm2(SM2Key, privateKey: [UInt8])
    }

    /// The suite this key belongs to.
    public let suite: CryptoSuiteID
    /// The matching public key.
    public let publicKey: PublicKey
    private let backing: Backing

    init(ed25519 key: Curve25519.Signing.PrivateKey) {
        suite = .ed25519SHA256
        backing = .ed25519(key)
        publicKey = PublicKey(ed25519: key.publicKey)
    }

    init(sm2PrivateKey bytes: [UInt8]) throws(CryptoError) {
        let pair = try SM2Key.keyPair(privateKey: bytes)
        suite = .sm2SM3
        backing = .sm2(pair.key, privateKey: bytes)
        publicKey = try PublicKey(suite: .sm2SM3, bytes: pair.publicKey)
    }

    /// Draws a uniformly random scalar in `[1, n-2]` by rejection sampling.
    static func generateSM2() -> SigningKey {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<64 {
            let candidate = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
            if let key = try? SigningKey(sm2PrivateKey: candidate) {
                return key
            }
        }
        preconditionFailure("SM2 key generation failed repeatedly: \(OpenSSL.error("keygen"))")
    }

    /// The 32 private key bytes (Ed25519 seed, or SM2 big-endian scalar). Handle with care.
    public var privateKeyBytes: [UInt8] {
        switch backing {
        case .ed25519(let key): Array(key.rawRepresentation)
        case .sm2(_, let bytes): bytes
        }
    }

    /// Signs `message`, returning 64 bytes (Ed25519 `R || S`, or SM2 `r || s` over SM3 with the default ID).
    ///
    /// - Throws: `signing_failed` or `openssl`.
    public func sign(_ message: [UInt8]) throws(CryptoError) -> [UInt8] {
        switch backing {
        case .ed25519(let key):
            do {
                return Array(try key.signature(for: message))
            } catch {
                throw .signingFailed("\(error)")
            }
        case .sm2(let key, _):
            let der = try key.signDER(message)
            guard let fixed = SM2SignatureEncoding.fixed(fromDER: der) else {
                throw .signingFailed("OpenSSL returned a malformed SM2 signature")
            }
            return fixed
        }
    }
}

/// A validated public key of one suite. Equality and hashing use ``suite`` and ``bytes`` only.
public struct PublicKey: Sendable, Hashable {
    private enum Backing: Sendable {
        case ed25519(Curve25519.Signing.PublicKey)
        case sm2(SM2Key)
    }

    /// The suite this key belongs to.
    public let suite: CryptoSuiteID
    /// Encoded key: 32 bytes (Ed25519) or 65 bytes `04 || X || Y` (SM2).
    public let bytes: [UInt8]
    private let backing: Backing

    init(ed25519 key: Curve25519.Signing.PublicKey) {
        suite = .ed25519SHA256
        bytes = Array(key.rawRepresentation)
        backing = .ed25519(key)
    }

    init(suite: CryptoSuiteID, bytes: [UInt8]) throws(CryptoError) {
        self.suite = suite
        self.bytes = bytes
        switch suite {
        case .ed25519SHA256:
            do {
                backing = .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: bytes))
            } catch {
                throw .invalidPublicKey("\(error)")
            }
        case .sm2SM3:
            backing = .sm2(try SM2Key.publicKey(bytes))
        }
    }

    /// Checks a 64-byte signature; returns `false` (never throws or traps) for any malformed input.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == 64 else { return false }
        switch backing {
        case .ed25519(let key):
            return key.isValidSignature(signature, for: message)
        case .sm2(let key):
            guard let der = SM2SignatureEncoding.der(fromFixed: signature) else { return false }
            return key.verifyDER(der, message: message)
        }
    }

    /// Checks an SM2 DER signature `SEQUENCE { r, s }` (strict DER only); always `false` for Ed25519.
    public func isValidDERSignature(_ der: [UInt8], for message: [UInt8]) -> Bool {
        guard case .sm2(let key) = backing,
            let fixed = SM2SignatureEncoding.fixed(fromDER: der),
            SM2SignatureEncoding.der(fromFixed: fixed) == der
        else { return false }
        return key.verifyDER(der, message: message)
    }

    public static func == (lhs: PublicKey, rhs: PublicKey) -> Bool {
        lhs.suite == rhs.suite && lhs.bytes == rhs.bytes
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(suite)
        hasher.combine(bytes)
    }
}
