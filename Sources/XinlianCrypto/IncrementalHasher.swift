import Crypto

/// Incremental SHA-256 or SM3 hashing with value semantics.
///
/// ```swift
/// var h = suite.makeHasher()
/// h.update(bytes)
/// h.update(byte: 0x01)
/// let digest = h.finalize()
/// ```
/// Copies are independent (the SM3 state is copied on write).
public struct IncrementalHasher: Sendable {
    /// The suite whose hash function this is.
    public let suite: CryptoSuiteID
    private var sha256 = SHA256()
    /// Non-nil exactly for the SM3 suite; copied on write.
    private var sm3: SM3Context?

    init(suite: CryptoSuiteID) {
        self.suite = suite
        if suite == .sm2SM3 {
            sm3 = SM3Context()
        }
    }

    /// Feeds bytes into the hash.
    public mutating func update(_ bytes: some Sequence<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            update(raw: UnsafeRawBufferPointer(buffer))
        }
        if done == nil {
            Array(bytes).withUnsafeBytes { update(raw: $0) }
        }
    }

    /// Feeds one byte into the hash.
    public mutating func update(byte: UInt8) {
        withUnsafeBytes(of: byte) { update(raw: $0) }
    }

    /// Feeds the 32 bytes of a digest into the hash.
    public mutating func update(_ hash: Hash32) {
        hash.bytes.withUnsafeBytes { update(raw: $0) }
    }

    /// Feeds raw memory into the hash.
    public mutating func update(raw buffer: UnsafeRawBufferPointer) {
        makeSM3Unique()
        if let context = sm3 {
            context.update(buffer)
        } else {
            sha256.update(bufferPointer: buffer)
        }
    }

    /// Returns the digest of everything fed so far. The hasher is consumed.
    public consuming func finalize() -> Hash32 {
        makeSM3Unique()
        if let context = sm3 {
            return context.finalize()
        }
        return Hash32(unchecked: Array(sha256.finalize()))
    }

    private mutating func makeSM3Unique() {
        if !isKnownUniquelyReferenced(&sm3), let shared = sm3 {
            sm3 = SM3Context(copying: shared)
        }
    }
}
