import CXinlianOpenSSL

/// An SM2 `EVP_PKEY` (public, or key pair), parsed once and reused.
///
/// `@unchecked Sendable`: the `EVP_PKEY` is never mutated after creation, and OpenSSL 3 allows
/// concurrent read-only use of one key as long as each operation has its own `EVP_MD_CTX`,
/// which every method here creates and frees.
final class SM2Key: @unchecked Sendable {
    /// The standard default distinguishing ID (GB/T 32918.2), set explicitly on every operation.
    static let distinguishingID: [UInt8] = Array("1234567812345678".utf8)

    private let pkey: OpaquePointer

    private init(pkey: OpaquePointer) {
        self.pkey = pkey
    }

    deinit { EVP_PKEY_free(pkey) }

    /// Parses an uncompressed point `04 || X || Y`; OpenSSL rejects points not on the curve.
    static func publicKey(_ bytes: [UInt8]) throws(CryptoError) -> SM2Key {
        guard bytes.count == 65, bytes[0] == 0x04 else {
            throw .invalidPublicKey("expected an uncompressed SM2 point (65 bytes starting 0x04)")
        }
        guard let pkey = makePKey(publicKey: bytes, privateKey: nil) else {
            throw .invalidPublicKey(OpenSSL.error("not a valid SM2 point").message)
        }
        return SM2Key(pkey: pkey)
    }

    /// Builds a key pair from a 32-byte big-endian scalar in `[1, n-2]`; returns it with its public point.
    static func keyPair(privateKey: [UInt8]) throws(CryptoError) -> (key: SM2Key, publicKey: [UInt8]) {
        guard privateKey.count == 32 else { throw .invalidPrivateKey("expected 32 bytes") }
        guard let scalar = BN_secure_new() else { throw OpenSSL.error("BN_secure_new") }
        defer { BN_clear_free(scalar) }
        guard privateKey.withUnsafeBufferPointer({ BN_bin2bn($0.baseAddress, 32, scalar) }) != nil else {
            throw OpenSSL.error("BN_bin2bn")
        }
        let point = try publicPoint(of: scalar)
        guard let pkey = makePKey(publicKey: point, privateKey: scalar) else {
            throw OpenSSL.error("EVP_PKEY_fromdata")
        }
        return (SM2Key(pkey: pkey), point)
    }

    /// Signs with SM3 and the default distinguishing ID; returns OpenSSL's DER `SEQUENCE { r, s }`.
    func signDER(_ message: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard let mctx = EVP_MD_CTX_new() else { throw OpenSSL.error("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(mctx) }
        var pctx: OpaquePointer?
        guard EVP_DigestSignInit(mctx, &pctx, SM3.md, nil, pkey) == 1, Self.setID(pctx) else {
            throw OpenSSL.error("EVP_DigestSignInit")
        }
        var signature = [UInt8](repeating: 0, count: 128)
        var length = signature.count
        let ok = message.withUnsafeBufferPointer { msg in
            EVP_DigestSign(mctx, &signature, &length, msg.baseAddress, msg.count)
        }
        guard ok == 1 else { throw OpenSSL.error("EVP_DigestSign") }
        return Array(signature.prefix(length))
    }

    /// Verifies a DER signature with SM3 and the default distinguishing ID.
    func verifyDER(_ der: [UInt8], message: [UInt8]) -> Bool {
        defer { OpenSSL.clearErrors() }
        guard let mctx = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(mctx) }
        var pctx: OpaquePointer?
        guard EVP_DigestVerifyInit(mctx, &pctx, SM3.md, nil, pkey) == 1, Self.setID(pctx) else {
            return false
        }
        let ok = der.withUnsafeBufferPointer { sig in
            message.withUnsafeBufferPointer { msg in
                EVP_DigestVerify(mctx, sig.baseAddress, sig.count, msg.baseAddress, msg.count)
            }
        }
        return ok == 1
    }

    /// Sets the distinguishing ID on the `EVP_PKEY_CTX` owned by the digest context.
    private static func setID(_ pctx: OpaquePointer?) -> Bool {
        guard let pctx else { return false }
        return distinguishingID.withUnsafeBytes {
            EVP_PKEY_CTX_set1_id(pctx, $0.baseAddress, Int32($0.count))
        } == 1
    }

    /// Creates an `EVP_PKEY` of type SM2 from raw components; `nil` (errors queued) on failure.
    private static func makePKey(publicKey: [UInt8], privateKey: OpaquePointer?) -> OpaquePointer? {
        publicKey.withUnsafeBytes { pub -> OpaquePointer? in
            guard let builder = OSSL_PARAM_BLD_new() else { return nil }
            defer { OSSL_PARAM_BLD_free(builder) }
            guard OSSL_PARAM_BLD_push_utf8_string(builder, CName.group.cString, CName.sm2.cString, 0) == 1,
                OSSL_PARAM_BLD_push_octet_string(builder, CName.publicKey.cString, pub.baseAddress, pub.count) == 1,
                privateKey.map({ OSSL_PARAM_BLD_push_BN(builder, CName.privateKey.cString, $0) == 1 }) ?? true,
                let params = OSSL_PARAM_BLD_to_param(builder)
            else { return nil }
            defer { OSSL_PARAM_free(params) }
            guard let ctx = EVP_PKEY_CTX_new_from_name(nil, CName.sm2.cString, nil) else { return nil }
            defer { EVP_PKEY_CTX_free(ctx) }
            // EVP_PKEY_PUBLIC_KEY / EVP_PKEY_KEYPAIR are compound macros Swift cannot import.
            let publicSelection = OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS | OSSL_KEYMGMT_SELECT_OTHER_PARAMETERS
                | OSSL_KEYMGMT_SELECT_PUBLIC_KEY
            let selection = publicSelection | (privateKey == nil ? 0 : OSSL_KEYMGMT_SELECT_PRIVATE_KEY)
            var pkey: OpaquePointer?
            guard EVP_PKEY_fromdata_init(ctx) == 1,
                EVP_PKEY_fromdata(ctx, &pkey, Int32(selection), params) == 1
            else { return nil }
            return pkey
        }
    }

    /// Computes `d·G` as an uncompressed point after checking `1 <= d <= n-2`.
    private static func publicPoint(of scalar: OpaquePointer) throws(CryptoError) -> [UInt8] {
        guard let group = EC_GROUP_new_by_curve_name(NID_sm2) else { throw OpenSSL.error("EC_GROUP_new") }
        defer { EC_GROUP_free(group) }
        guard let order = EC_GROUP_get0_order(group), let limit = BN_dup(order) else {
            throw OpenSSL.error("EC_GROUP_get0_order")
        }
        defer { BN_free(limit) }
        guard BN_sub_word(limit, 1) == 1 else { throw OpenSSL.error("BN_sub_word") }
        guard BN_is_zero(scalar) == 0, BN_cmp(scalar, limit) < 0 else {
            throw .invalidPrivateKey("SM2 private key must be in [1, n-2]")
        }
        guard let point = EC_POINT_new(group) else { throw OpenSSL.error("EC_POINT_new") }
        defer { EC_POINT_free(point) }
        var out = [UInt8](repeating: 0, count: 65)
        guard EC_POINT_mul(group, point, scalar, nil, nil, nil) == 1,
            EC_POINT_point2oct(group, point, POINT_CONVERSION_UNCOMPRESSED, &out, out.count, nil) == 65
        else { throw OpenSSL.error("EC_POINT_mul") }
        return out
    }
}

/// Conversion between DER `SEQUENCE { INTEGER r, INTEGER s }` and fixed 64-byte `r || s`.
enum SM2SignatureEncoding {
    /// Encodes fixed `r || s` (32 bytes each, big-endian) as minimal DER; `nil` unless 64 bytes.
    static func der(fromFixed signature: [UInt8]) -> [UInt8]? {
        guard signature.count == 64 else { return nil }
        let r = derInteger(signature[0..<32])
        let s = derInteger(signature[32..<64])
        return [0x30, UInt8(r.count + s.count)] + r + s
    }

    /// Decodes strict DER into fixed `r || s`; `nil` if malformed, non-minimal, negative,
    /// longer than 32 bytes per integer, or followed by trailing bytes.
    static func fixed(fromDER der: [UInt8]) -> [UInt8]? {
        guard der.count >= 2, der[0] == 0x30, Int(der[1]) == der.count - 2, der[1] < 0x80 else { return nil }
        var index = 2
        guard let r = parseInteger(der, &index), let s = parseInteger(der, &index), index == der.count else {
            return nil
        }
        return r + s
    }

    private static func derInteger(_ value: ArraySlice<UInt8>) -> [UInt8] {
        var content = Array(value.drop { $0 == 0 })
        if content.first.map({ $0 >= 0x80 }) ?? true {
            content.insert(0, at: 0)
        }
        return [0x02, UInt8(content.count)] + content
    }

    /// Parses one minimal non-negative INTEGER at `index`, returning it left-padded to 32 bytes.
    private static func parseInteger(_ der: [UInt8], _ index: inout Int) -> [UInt8]? {
        guard index + 2 <= der.count, der[index] == 0x02 else { return nil }
        let length = Int(der[index + 1])
        let start = index + 2
        guard length >= 1, length <= 33, start + length <= der.count else { return nil }
        let content = der[start..<start + length]
        let first = content[start]
        guard first < 0x80 else { return nil }  // negative
        if length > 1, first == 0, content[start + 1] < 0x80 { return nil }  // non-minimal
        let magnitude = content.drop { $0 == 0 }
        guard magnitude.count <= 32 else { return nil }
        index = start + length
        return [UInt8](repeating: 0, count: 32 - magnitude.count) + magnitude
    }
}
