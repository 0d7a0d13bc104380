/// A failure from a crypto suite, with a stable machine-readable ``code``.
///
/// Codes: `invalid_public_key`, `invalid_private_key`, `signing_failed`, `openssl`.
public struct CryptoError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable identifier, safe to match on.
    public let code: String
    /// Human-readable detail (for OpenSSL failures, the error queue text).
    public let message: String

    /// Creates an error with a code and message.
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    static func invalidPublicKey(_ message: String) -> CryptoError {
        CryptoError(code: "invalid_public_key", message: message)
    }

    static func invalidPrivateKey(_ message: String) -> CryptoError {
        CryptoError(code: "invalid_private_key", message: message)
    }

    static func signingFailed(_ message: String) -> CryptoError {
        CryptoError(code: "signing_failed", message: message)
    }
}
