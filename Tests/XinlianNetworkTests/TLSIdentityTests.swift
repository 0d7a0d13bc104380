import Crypto
import Foundation
import NIOSSL
import Testing
@testable import XinlianNetwork

@Suite struct TLSIdentityTests {
    @Test func generateWriteLoadRoundTrip() throws {
        let identity = try TLSIdentity.generate(commonName: "v0")
        #expect(identity.publicKeySHA256.count == 64)
        #expect(identity.publicKeySHA256 == identity.publicKeySHA256.lowercased())
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyPath = directory.appendingPathComponent("p2p.key").path
        let certificatePath = directory.appendingPathComponent("p2p.crt").path
        try identity.write(keyPEMPath: keyPath, certificatePEMPath: certificatePath)
        let mode = try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        let loaded = try TLSIdentity.load(keyPEMPath: keyPath, certificatePEMPath: certificatePath)
        #expect(loaded.publicKeySHA256 == identity.publicKeySHA256)
        #expect(loaded.keyPEM == identity.keyPEM)
        // Two generated identities never share a pin.
        #expect(try TLSIdentity.generate(commonName: "v0").publicKeySHA256 != identity.publicKeySHA256)
    }

    @Test func keyAndCertificateMustMatch() throws {
        let one = try TLSIdentity.generate(commonName: "one")
        let two = try TLSIdentity.generate(commonName: "two")
        #expect(throws: TLSIdentityError.self) { try TLSIdentity(keyPEM: one.keyPEM, certificatePEM: two.certificatePEM) }
        #expect(throws: TLSIdentityError.self) { try TLSIdentity(keyPEM: "junk", certificatePEM: one.certificatePEM) }
    }

    @Test func pinIsSHA256OfSubjectPublicKeyInfo() throws {
        let identity = try TLSIdentity.generate(commonName: "pin")
        let certificate = try NIOSSLCertificate(bytes: Array(identity.certificatePEM.utf8), format: .pem)
        #expect(try TLSIdentity.pin(certificate) == identity.publicKeySHA256)
        // Independently: swift-crypto's SPKI DER of the same key hashes to the same value.
        let key = try P256.Signing.PrivateKey(pemRepresentation: identity.keyPEM)
        let expected = SHA256.hash(data: key.publicKey.derRepresentation).map { String(format: "%02x", $0) }.joined()
        #expect(identity.publicKeySHA256 == expected)
    }
}
