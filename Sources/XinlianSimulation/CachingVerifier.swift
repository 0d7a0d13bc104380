import Synchronization
import XinlianConsensus
import XinlianCrypto

/// A signature verifier shared by every simulated node of one run: each (key, message, signature) is checked
/// once, however many nodes receive it. Verification is a pure function, so caching cannot change a run.
public final class CachingVerifier: SignatureVerifier {
    /// Entries kept before the cache is emptied and starts over.
    public static let entryLimit = 200_000

    private struct Key: Hashable {
        var key: [UInt8]
        var message: [UInt8]
        var signature: [UInt8]
    }

    private let cache = Mutex<[Key: Bool]>([:])

    public init() {}

    public func isValid(signature: [UInt8], message: [UInt8], key: PublicKey) -> Bool {
        let entry = Key(key: key.bytes, message: message, signature: signature)
        if let known = cache.withLock({ $0[entry] }) { return known }
        let result = key.isValidSignature(signature, for: message)
        cache.withLock { table in
            if table.count >= Self.entryLimit { table.removeAll(keepingCapacity: true) }
            table[entry] = result
        }
        return result
    }
}
