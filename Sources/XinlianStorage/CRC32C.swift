/// CRC-32C (Castagnoli, reflected polynomial `0x82F63B78`), table-driven, slice-by-8.
///
/// Used to checksum block-log frames. `checksum("123456789".utf8) == 0xE3069283`.
public enum CRC32C {
    /// The reflected Castagnoli polynomial.
    public static let polynomial: UInt32 = 0x82F6_3B78

    /// Number of bytes consumed per iteration of the slice-by-8 loop.
    private static let sliceWidth = 8
    /// Bytes folded into the running CRC state per slice (its width).
    private static let stateWidth = 4
    private static let bitsPerByte = 8
    private static let byteMask: UInt32 = 0xFF
    /// Entries per lookup table (one per byte value).
    private static let tableSize = 256

    /// `sliceWidth` tables of `tableSize` entries, flattened: table `k` starts at `k * tableSize`.
    private static let tables: [UInt32] = makeTables()

    /// The CRC-32C of `bytes`.
    public static func checksum(_ bytes: some Collection<UInt8>) -> UInt32 {
        update(0, with: bytes)
    }

    /// Continues a checksum: `update(checksum(a), with: b) == checksum(a + b)`.
    public static func update(_ crc: UInt32, with bytes: some Collection<UInt8>) -> UInt32 {
        let fast = bytes.withContiguousStorageIfAvailable { buffer in
            update(crc, buffer: UnsafeRawBufferPointer(buffer))
        }
        if let fast { return fast }
        return Array(bytes).withUnsafeBytes { update(crc, buffer: $0) }
    }

    private static func update(_ crc: UInt32, buffer: UnsafeRawBufferPointer) -> UInt32 {
        tables.withUnsafeBufferPointer { table in
            var state = ~crc
            var index = 0
            while buffer.count - index >= sliceWidth {
                state = sliceStep(state, buffer: buffer, at: index, table: table)
                index += sliceWidth
            }
            while index < buffer.count {
                state = table[Int((state ^ UInt32(buffer[index])) & byteMask)] ^ (state >> bitsPerByte)
                index += 1
            }
            return ~state
        }
    }

    /// Folds 8 bytes starting at `index` into `state`.
    private static func sliceStep(
        _ state: UInt32, buffer: UnsafeRawBufferPointer, at index: Int, table: UnsafeBufferPointer<UInt32>
    ) -> UInt32 {
        var low = state
        for byte in 0..<stateWidth { low ^= UInt32(buffer[index + byte]) << (bitsPerByte * byte) }
        var result: UInt32 = 0
        for byte in 0..<stateWidth {
            let value = Int((low >> (bitsPerByte * byte)) & byteMask)
            result ^= table[(sliceWidth - 1 - byte) * tableSize + value]
        }
        for byte in stateWidth..<sliceWidth {
            result ^= table[(sliceWidth - 1 - byte) * tableSize + Int(buffer[index + byte])]
        }
        return result
    }

    private static func makeTables() -> [UInt32] {
        var tables = [UInt32](repeating: 0, count: sliceWidth * tableSize)
        for value in 0..<tableSize {
            var crc = UInt32(value)
            for _ in 0..<bitsPerByte { crc = (crc & 1) != 0 ? (crc >> 1) ^ polynomial : crc >> 1 }
            tables[value] = crc
        }
        for slice in 1..<sliceWidth {
            for value in 0..<tableSize {
                let previous = tables[(slice - 1) * tableSize + value]
                tables[slice * tableSize + value] = tables[Int(previous & byteMask)] ^ (previous >> bitsPerByte)
            }
        }
        return tables
    }
}
