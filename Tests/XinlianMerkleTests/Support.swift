import XinlianCrypto

/// SplitMix64: a tiny deterministic PRNG so property tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func hash() -> Hash32 {
        var bytes: [UInt8] = []
        for _ in 0..<4 {
            withUnsafeBytes(of: next().bigEndian) { bytes += $0 }
        }
        return Hash32(bytes: bytes) ?? .zero
    }

    mutating func bytes(count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }
}

extension Hash32 {
    /// A copy with one bit flipped.
    func flipping(bit: Int) -> Hash32 {
        var raw = bytes
        raw[bit / 8] ^= 0x80 >> UInt8(bit % 8)
        return Hash32(bytes: raw) ?? .zero
    }
}
