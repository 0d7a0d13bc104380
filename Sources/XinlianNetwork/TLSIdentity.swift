import Crypto
import Foundation
import NIOSSL
import XinlianCrypto

/// Why a TLS identity could not be made, read or written.
public struct TLSIdentityError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// A node's TLS key and self-signed certificate. Peers pin the certificate's public key: genesis holds
/// ``publicKeySHA256`` as the validator's `tlsKeySHA256`.
public struct TLSIdentity: Sendable {
    /// The private key, PEM (PKCS#8 `PRIVATE KEY` when generated here).
    public private(set) var keyPEM: String
    /// The certificate, PEM.
    public private(set) var certificatePEM: String
    /// Lowercase hex SHA-256 of the certificate's SubjectPublicKeyInfo DER.
    public private(set) var publicKeySHA256: String

    /// Checks that the key and certificate parse and belong together (TLS refuses a key that does not
    /// match its certificate), and computes the pin.
    public init(keyPEM: String, certificatePEM: String) throws {
        let certificate: NIOSSLCertificate
        do {
            certificate = try NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem)
            let key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
            _ = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: [.certificate(certificate)],
                                                                          privateKey: .privateKey(key)))
        } catch {
            throw TLSIdentityError("TLS key and certificate do not parse or do not belong together: \(error)")
        }
        self.keyPEM = keyPEM
        self.certificatePEM = certificatePEM
        self.publicKeySHA256 = try Self.pin(certificate)
    }

    /// A new P-256 key and a self-signed certificate for `commonName` (ECDSA-SHA256), valid from an hour
    /// ago for 100 years. Peers check the key by pinning, not the certificate's dates or names.
    public static func generate(commonName: String) throws -> TLSIdentity {
        let key = P256.Signing.PrivateKey()
        let now = Date()
        let der = try SelfSignedCertificate.make(key: key, commonName: commonName,
                                                 notBefore: now.addingTimeInterval(-3600),
                                                 notAfter: now.addingTimeInterval(100 * 365 * 86_400))
        return try TLSIdentity(keyPEM: key.pemRepresentation,
                               certificatePEM: SelfSignedCertificate.pem(der, label: "CERTIFICATE"))
    }

    public static func load(keyPEMPath: String, certificatePEMPath: String) throws -> TLSIdentity {
        let key: String, certificate: String
        do {
            key = try String(contentsOfFile: keyPEMPath, encoding: .utf8)
            certificate = try String(contentsOfFile: certificatePEMPath, encoding: .utf8)
        } catch {
            throw TLSIdentityError("cannot read TLS identity: \(error)")
        }
        return try TLSIdentity(keyPEM: key, certificatePEM: certificate)
    }

    /// Writes both files; the key file gets mode 0600 (set before the key is written).
    public func write(keyPEMPath: String, certificatePEMPath: String) throws {
        let files = FileManager.default
        do {
            if files.fileExists(atPath: keyPEMPath) {
                try files.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyPEMPath)
            } else {
                guard files.createFile(atPath: keyPEMPath, contents: Data(), attributes: [.posixPermissions: 0o600]) else {
                    throw TLSIdentityError("cannot create \(keyPEMPath)")
                }
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: keyPEMPath))
            defer { try? handle.close() }
            try handle.truncate(atOffset: 0)
            try handle.write(contentsOf: Data(keyPEM.utf8))
            try Data(certificatePEM.utf8).write(to: URL(fileURLWithPath: certificatePEMPath), options: .atomic)
        } catch let error as TLSIdentityError {
            throw error
        } catch {
            throw TLSIdentityError("cannot write TLS identity: \(error)")
        }
    }

    /// Lowercase hex SHA-256 of a certificate's SubjectPublicKeyInfo DER.
    public static func pin(_ certificate: NIOSSLCertificate) throws -> String {
        let spki = try certificate.extractPublicKey().toSPKIBytes()
        return Array(SHA256.hash(data: spki)).hexString
    }

    /// The node's HTTPS server configuration: TLS 1.2 or later with this certificate and key. Clients check the
    /// certificate's key against genesis (the validator's `tlsKeySHA256`), not against a certificate authority.
    public func apiServerConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: [.certificate(try sslCertificate())],
                                                                     privateKey: .privateKey(try sslPrivateKey()))
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }

    func sslCertificate() throws -> NIOSSLCertificate {
        try NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem)
    }

    func sslPrivateKey() throws -> NIOSSLPrivateKey {
        try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
    }
}
