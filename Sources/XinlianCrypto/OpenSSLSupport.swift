import CXinlianOpenSSL

/// Helpers shared by the OpenSSL-backed SM2/SM3 code.
enum OpenSSL {
    /// Drains the thread's OpenSSL error queue into a `CryptoError` with code `openssl`.
    static func error(_ context: String) -> CryptoError {
        var messages: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            messages.append(String(decoding: bytes, as: UTF8.self))
        }
        let detail = messages.isEmpty ? "" : ": " + messages.joined(separator: "; ")
        return CryptoError(code: "openssl", message: context + detail)
    }

    /// Discards queued OpenSSL errors (after an expected failure such as a bad signature).
    static func clearErrors() {
        ERR_clear_error()
    }
}

/// NUL-terminated C string literals with static storage.
///
/// `OSSL_PARAM_BLD` keeps the key and string pointers until `OSSL_PARAM_BLD_to_param`, so they
/// must outlive the builder; Swift's temporary `String` bridging does not guarantee that.
enum CName {
    static let group: StaticString = "group\0"  // OSSL_PKEY_PARAM_GROUP_NAME
    static let publicKey: StaticString = "pub\0"  // OSSL_PKEY_PARAM_PUB_KEY
    static let privateKey: StaticString = "priv\0"  // OSSL_PKEY_PARAM_PRIV_KEY
    static let sm2: StaticString = "SM2\0"
}

extension StaticString {
    /// The literal as a C string pointer, valid for the life of the process.
    var cString: UnsafePointer<CChar> {
        UnsafeRawPointer(utf8Start).assumingMemoryBound(to: CChar.self)
    }
}
