import Testing
import XinlianCrypto

@Suite("Published vectors")
struct VectorTests {
    @Test("SM3 digests of GB/T 32905 examples")
    func sm3Vectors() throws {
        let vectors = try #require(try TestData.json("crypto-vectors.json")["sm3"] as? [[String: String]])
        #expect(vectors.count == 2)
        for vector in vectors {
            let message = Array(try #require(vector["message_ascii"]).utf8)
            let expected = try #require(vector["digest"])
            #expect(CryptoSuite.sm2SM3.hash(message).hex == expected)
            var hasher = CryptoSuite.sm2SM3.makeHasher()
            for byte in message { hasher.update(byte: byte) }
            #expect(hasher.finalize().hex == expected)
        }
    }

    @Test("SHA-256 of \"abc\" (FIPS 180-2)")
    func sha256Vector() {
        #expect(CryptoSuite.ed25519SHA256.hash(Array("abc".utf8)).hex
            == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("OpenSSL command-line SM2 signature verifies")
    func sm2Interop() throws {
        let vector = try #require(try TestData.json("crypto-vectors.json")["sm2_openssl_interop"] as? [String: String])
        #expect(vector["distinguishing_id"] == "1234567812345678")
        let key = try CryptoSuite.sm2SM3.publicKey(try bytes(try #require(vector["public_key_uncompressed"])))
        let der = try bytes(try #require(vector["signature_der"]))
        let message = Array(try #require(vector["message_ascii"]).utf8)
        #expect(key.isValidDERSignature(der, for: message))
        #expect(!key.isValidDERSignature(der, for: message + [0x21]))
        #expect(!key.isValidDERSignature(der, for: Array(message.dropLast())))
        #expect(!key.isValidDERSignature(der + [0x00], for: message))

        // The same signature converted to fixed r || s.
        let r = der[4..<37].dropFirst()  // 0x02 0x21 0x00 r(32)
        let s = der[39..<71]  // 0x02 0x20 s(32)
        #expect(key.isValidSignature(Array(r) + Array(s), for: message))
    }

    @Test("Non-canonical DER is rejected")
    func sm2NonCanonicalDER() throws {
        let key = CryptoSuite.sm2SM3.generateSigningKey()
        let message = Array("der".utf8)
        let fixed = try key.sign(message)
        let r = [0x00] + fixed[0..<32]
        let s = [0x00] + fixed[32..<64]
        let padded: [UInt8] = [0x30, UInt8(4 + r.count + s.count), 0x02, UInt8(r.count)] + r + [0x02, UInt8(s.count)] + s
        // Only a minimal encoding is accepted: at most one of the padded integers may be canonical.
        let canonicalR = fixed[0] >= 0x80
        let canonicalS = fixed[32] >= 0x80
        #expect(key.publicKey.isValidDERSignature(padded, for: message) == (canonicalR && canonicalS))
        // Long-form length is not DER for short content.
        let minimal = try #require(derOf(fixed))
        let longForm = [0x30, 0x81] + minimal.dropFirst()
        #expect(key.publicKey.isValidDERSignature(minimal, for: message))
        #expect(!key.publicKey.isValidDERSignature(longForm, for: message))
    }

    @Test("RFC 8032 section 7.1 test 1")
    func ed25519RFC8032() throws {
        let vectors = try #require(try TestData.json("crypto-vectors.json")["ed25519"] as? [[String: String]])
        let vector = try #require(vectors.first)
        let key = try CryptoSuite.ed25519SHA256.signingKey(privateKey: try bytes(try #require(vector["secret_key"])))
        let message = try bytes(try #require(vector["message"]))
        let expected = try bytes(try #require(vector["signature"]))
        #expect(key.publicKey.bytes.hexString == vector["public_key"])
        #expect(key.privateKeyBytes.hexString == vector["secret_key"])
        #expect(key.publicKey.isValidSignature(expected, for: message))
        #expect(!key.publicKey.isValidDERSignature(expected, for: message))
        #if os(Linux)
            // swift-crypto on Linux (BoringSSL) signs deterministically per RFC 8032; CryptoKit randomizes.
            #expect(try key.sign(message) == expected)
        #endif
    }
}

/// Minimal DER for fixed r || s, written independently of the library.
private func derOf(_ fixed: [UInt8]) -> [UInt8]? {
    guard fixed.count == 64 else { return nil }
    func integer(_ value: ArraySlice<UInt8>) -> [UInt8] {
        var content = Array(value.drop { $0 == 0 })
        if content.isEmpty || content[0] >= 0x80 { content.insert(0, at: 0) }
        return [0x02, UInt8(content.count)] + content
    }
    let body = integer(fixed[0..<32]) + integer(fixed[32..<64])
    return [0x30, UInt8(body.count)] + body
}
