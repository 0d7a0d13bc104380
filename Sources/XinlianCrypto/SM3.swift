import CXinlianOpenSSL

/// SM3 (GB/T 32905) through the system OpenSSL.
enum SM3 {
    /// The fetched `EVP_MD` for SM3, shared by all threads (fetched algorithms are immutable).
    private final class FetchedDigest: @unchecked Sendable {
        let md: OpaquePointer

        init() {
            guard let md = EVP_MD_fetch(nil, "SM3", nil) else {
                preconditionFailure("OpenSSL does not provide SM3: \(OpenSSL.error("EVP_MD_fetch"))")
            }
            self.md = md
        }

        deinit { EVP_MD_free(md) }
    }

    private static let fetched = FetchedDigest()

    /// The shared SM3 `EVP_MD`.
    static var md: OpaquePointer { fetched.md }

    /// One-shot SM3 digest.
    static func hash(_ data: [UInt8]) -> Hash32 {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let ok = data.withUnsafeBytes { input in
            EVP_Digest(input.baseAddress, input.count, &out, &length, md, nil)
        }
        precondition(ok == 1 && length == 32, "SM3 digest failed: \(OpenSSL.error("EVP_Digest"))")
        return Hash32(unchecked: out)
    }
}

/// An SM3 `EVP_MD_CTX` owned by one ``IncrementalHasher`` value (copied on write).
///
/// `@unchecked Sendable`: the context is only mutated through `IncrementalHasher`'s mutating
/// methods after an `isKnownUniquelyReferenced` check, so no two threads ever touch it at once.
final class SM3Context: @unchecked Sendable {
    private let ctx: OpaquePointer

    init() {
        guard let ctx = EVP_MD_CTX_new() else { preconditionFailure("EVP_MD_CTX_new: out of memory") }
        self.ctx = ctx
        precondition(EVP_DigestInit_ex(ctx, SM3.md, nil) == 1, "\(OpenSSL.error("EVP_DigestInit_ex"))")
    }

    init(copying other: SM3Context) {
        guard let ctx = EVP_MD_CTX_new() else { preconditionFailure("EVP_MD_CTX_new: out of memory") }
        self.ctx = ctx
        precondition(EVP_MD_CTX_copy_ex(ctx, other.ctx) == 1, "\(OpenSSL.error("EVP_MD_CTX_copy_ex"))")
    }

    deinit { EVP_MD_CTX_free(ctx) }

    func update(_ buffer: UnsafeRawBufferPointer) {
        guard buffer.count > 0 else { return }
        let ok = EVP_DigestUpdate(ctx, buffer.baseAddress, buffer.count)
        precondition(ok == 1, "\(OpenSSL.error("EVP_DigestUpdate"))")
    }

    func finalize() -> Hash32 {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let ok = EVP_DigestFinal_ex(ctx, &out, &length)
        precondition(ok == 1 && length == 32, "\(OpenSSL.error("EVP_DigestFinal_ex"))")
        return Hash32(unchecked: out)
    }
}
