import Foundation
import Testing
import XinlianCrypto

@Suite("Sign, verify and hash under both suites")
struct SuiteTests {
    private let message = Array("xinlian ledger entry".utf8)

    @Test(arguments: CryptoSuiteID.allCases)
    func roundTrip(id: CryptoSuiteID) throws {
        let suite = CryptoSuite(id)
        let key = suite.generateSigningKey()
        #expect(key.suite == id)
        #expect(key.publicKey.suite == id)
        #expect(key.publicKey.bytes.count == suite.publicKeyLength)
        #expect(key.privateKeyBytes.count == suite.privateKeyLength)
        let signature = try key.sign(message)
        #expect(signature.count == suite.signatureLength)
        #expect(key.publicKey.isValidSignature(signature, for: message))
        #expect(key.publicKey.isValidSignature(try key.sign([]), for: []))

        let restored = try suite.signingKey(privateKey: key.privateKeyBytes)
        #expect(restored.publicKey == key.publicKey)
        let parsed = try suite.publicKey(key.publicKey.bytes)
        #expect(parsed == key.publicKey)
        #expect(parsed.isValidSignature(try restored.sign(message), for: message))
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func rejectsBadSignatures(id: CryptoSuiteID) throws {
        let suite = CryptoSuite(id)
        let key = suite.generateSigningKey()
        let other = suite.generateSigningKey()
        let signature = try key.sign(message)
        let publicKey = key.publicKey

        #expect(!publicKey.isValidSignature(signature, for: message + [0]))
        #expect(!publicKey.isValidSignature(signature, for: []))
        #expect(!other.publicKey.isValidSignature(signature, for: message))
        for bit in stride(from: 0, to: 512, by: 7) {
            var flipped = signature
            flipped[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(!publicKey.isValidSignature(flipped, for: message), "bit \(bit)")
        }
        #expect(!publicKey.isValidSignature(Array(signature.dropLast()), for: message))
        #expect(!publicKey.isValidSignature(signature + [0], for: message))
        #expect(!publicKey.isValidSignature([], for: message))
        #expect(!publicKey.isValidSignature([UInt8](repeating: 0, count: 64), for: message))
        #expect(!publicKey.isValidSignature([UInt8](repeating: 0xff, count: 64), for: message))
        #expect(!publicKey.isValidDERSignature([], for: message))
        #expect(!publicKey.isValidDERSignature([0x30, 0x00], for: message))
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func rejectsInvalidPublicKeys(id: CryptoSuiteID) {
        let suite = CryptoSuite(id)
        var candidates: [[UInt8]] = [
            [],
            [UInt8](repeating: 1, count: suite.publicKeyLength - 1),
            [UInt8](repeating: 1, count: suite.publicKeyLength + 1),
        ]
        if id == .sm2SM3 {
            var offCurve = suite.generateSigningKey().publicKey.bytes
            offCurve[64] ^= 1
            var compressedPrefix = suite.generateSigningKey().publicKey.bytes
            compressedPrefix[0] = 0x02
            candidates += [offCurve, compressedPrefix, [0x04] + [UInt8](repeating: 0, count: 64)]
        }
        for bytes in candidates {
            #expect(throws: CryptoError.self) { try suite.publicKey(bytes) }
            do {
                _ = try suite.publicKey(bytes)
            } catch {
                #expect(error.code == "invalid_public_key", "\(error)")
            }
        }
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func rejectsInvalidPrivateKeys(id: CryptoSuiteID) throws {
        let suite = CryptoSuite(id)
        var candidates: [[UInt8]] = [[], [UInt8](repeating: 7, count: 31), [UInt8](repeating: 7, count: 33)]
        if id == .sm2SM3 {
            let order = try #require([UInt8](
                hex: "fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123"))
            var orderMinusOne = order
            orderMinusOne[31] -= 1
            candidates += [[UInt8](repeating: 0, count: 32), orderMinusOne, order, [UInt8](repeating: 0xff, count: 32)]
            var orderMinusTwo = order
            orderMinusTwo[31] -= 2
            #expect(throws: Never.self) { try suite.signingKey(privateKey: orderMinusTwo) }
        }
        for bytes in candidates {
            do {
                _ = try suite.signingKey(privateKey: bytes)
                Issue.record("accepted invalid private key \(bytes.hexString)")
            } catch {
                #expect(error.code == "invalid_private_key", "\(error)")
            }
        }
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func concurrentVerification(id: CryptoSuiteID) async throws {
        let key = CryptoSuite(id).generateSigningKey()
        let signature = try key.sign(message)
        let publicKey = key.publicKey
        let message = message
        let results = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<64 {
                group.addTask {
                    let tampered = index % 2 == 1
                    let ok = publicKey.isValidSignature(signature, for: tampered ? message + [1] : message)
                    return ok != tampered
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.count == 64 && results.allSatisfy { $0 })
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func taggedHashEqualsConcatenation(id: CryptoSuiteID) {
        let suite = CryptoSuite(id)
        let a: [UInt8] = [1, 2, 3]
        let b = [UInt8](repeating: 0xab, count: 100)
        #expect(suite.hash(tag: 0x07, a, [], b) == suite.hash([0x07] + a + b))
        #expect(suite.hash(tag: 0x00) == suite.hash([0x00]))
        #expect(suite.hash(tag: 0x01, a) != suite.hash(tag: 0x02, a))
        #expect(suite.hash([]) != suite.hash([0]))
    }

    @Test(arguments: CryptoSuiteID.allCases)
    func hasherCopiesAreIndependent(id: CryptoSuiteID) {
        let suite = CryptoSuite(id)
        var first = suite.makeHasher()
        first.update([1, 2, 3][...])
        var second = first
        second.update(byte: 4)
        first.update(byte: 5)
        let third = second
        #expect(third.finalize() == suite.hash([1, 2, 3, 4]))
        #expect(second.finalize() == suite.hash([1, 2, 3, 4]))
        #expect(first.finalize() == suite.hash([1, 2, 3, 5]))
        var h = suite.makeHasher()
        h.update(Hash32.zero)
        h.update(AnySequence([9, 9] as [UInt8]))
        #expect(h.finalize() == suite.hash(Hash32.zero.bytes + [9, 9]))
    }

    @Test func suiteIDs() {
        #expect(CryptoSuiteID.ed25519SHA256.code == 1)
        #expect(CryptoSuiteID.sm2SM3.code == 2)
        for id in CryptoSuiteID.allCases {
            #expect(CryptoSuiteID(code: id.code) == id)
            #expect(CryptoSuiteID(rawValue: id.rawValue) == id)
        }
        #expect(CryptoSuiteID(code: 0) == nil)
        #expect(CryptoSuiteID(code: 3) == nil)
        #expect(CryptoSuite.ed25519SHA256.publicKeyLength == 32)
        #expect(CryptoSuite.sm2SM3.publicKeyLength == 65)
    }
}

@Suite("Hash32 and hex")
struct Hash32Tests {
    @Test func hexRoundTrip() throws {
        let bytes = (0..<32).map { UInt8($0 * 7 & 0xff) }
        let hash = try #require(Hash32(bytes: bytes))
        #expect(hash.bytes == bytes)
        #expect(Hash32(hex: hash.hex) == hash)
        #expect(Hash32(hex: hash.hex.uppercased()) == hash)
        #expect(hash.description == hash.hex)
        #expect(hash.hex == bytes.hexString)
        #expect(Hash32(bytes: bytes.dropLast()) == nil)
        #expect(Hash32(bytes: bytes + [0]) == nil)
        #expect(Hash32(hex: String(hash.hex.dropLast(2))) == nil)
        #expect(Hash32(hex: String(hash.hex.dropLast()) + "g") == nil)
        #expect(Hash32.zero.hex == String(repeating: "0", count: 64))
    }

    @Test func ordering() throws {
        let low = try #require(Hash32(hex: "00" + String(repeating: "ff", count: 31)))
        let high = try #require(Hash32(hex: "01" + String(repeating: "00", count: 31)))
        #expect(Hash32.zero < low && low < high)
        #expect([high, low, .zero].sorted() == [.zero, low, high])
    }

    @Test func codableAsHexString() throws {
        let hash = CryptoSuite.ed25519SHA256.hash([1])
        let data = try JSONEncoder().encode([hash])
        #expect(String(decoding: data, as: UTF8.self) == "[\"\(hash.hex)\"]")
        #expect(try JSONDecoder().decode([Hash32].self, from: data) == [hash])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([Hash32].self, from: Data("[\"abcd\"]".utf8)) }
    }

    @Test func byteArrayHex() {
        #expect([UInt8](hex: "") == [])
        #expect([UInt8](hex: "00ffA0") == [0x00, 0xff, 0xa0])
        #expect([UInt8](hex: "0") == nil)
        #expect([UInt8](hex: "zz") == nil)
        #expect([UInt8](hex: "0x00") == nil)
        #expect([0x00, 0xff, 0xa0].hexString == "00ffa0")
    }
}
