import Testing
import XinlianStorage

@Suite struct CRC32CTests {
    /// Bit-at-a-time reference implementation.
    private func reference(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ CRC32C.polynomial : crc >> 1 }
        }
        return ~crc
    }

    @Test func standardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum("123456789".utf8) == 0xE306_9283)
    }

    @Test func rfc3720Vectors() {
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
    }

    @Test func emptyInputIsZero() {
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test func sliceBy8MatchesReferenceAtEveryLengthAndAlignment() {
        var rng = SplitMix64(seed: 7)
        let data = rng.bytes(200)
        for start in 0..<9 {
            for end in start...data.count {
                let slice = data[start..<end]
                #expect(CRC32C.checksum(slice) == reference(Array(slice)))
            }
        }
    }

    @Test func nonContiguousCollectionAndIncrementalUpdate() {
        var rng = SplitMix64(seed: 11)
        let data = rng.bytes(1_000)
        let whole = CRC32C.checksum(data)
        #expect(CRC32C.checksum(data.reversed().reversed()) == whole)
        for split in [0, 1, 7, 8, 9, 500, 1_000] {
            let first = CRC32C.checksum(data[..<split])
            #expect(CRC32C.update(first, with: data[split...]) == whole)
        }
    }
}
