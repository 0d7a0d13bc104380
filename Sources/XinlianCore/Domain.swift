import XinlianCrypto

/// Domain-separation tags: the first byte of every hashed or signed byte string,
/// so that no byte string is valid in two roles. RFC 6962 owns `0x00` (leaf) and
/// `0x01` (node); the sparse Merkle tree owns `0x05` (leaf) and `0x06` (node).
public enum Domain {
    public static let transactionID: UInt8 = 0x10
    public static let blockHeader: UInt8 = 0x11
    public static let validatorSet: UInt8 = 0x12
    public static let genesis: UInt8 = 0x13
    public static let enterpriseHead: UInt8 = 0x14
    public static let enterpriseKey: UInt8 = 0x15
    public static let exportFile: UInt8 = 0x16
    public static let personalData: UInt8 = 0x17
    public static let personalSidecars: UInt8 = 0x18

    public static let signTransaction: UInt8 = 0x20
    public static let signVote: UInt8 = 0x22
    public static let signProposal: UInt8 = 0x23
    public static let signRequest: UInt8 = 0x24
}

/// Size limits enforced by every decoder (bytes unless named otherwise).
public enum Limits {
    public static let payloadBytes = 64 * 1024
    public static let signatureBytes = 128
    public static let publicKeyBytes = 128
    public static let transactionBytes = payloadBytes + 1024
    public static let blockTransactions = 10_000
    public static let blockBytes = 16 * 1024 * 1024
    public static let certificateSignatures = 1_000
    public static let recordBytes = blockBytes + 256 * 1024
}

extension CanonicalEncoder {
    public mutating func hash(_ value: Hash32) { fixed(value.bytes) }
}

extension CanonicalDecoder {
    public mutating func hash(_ field: String) throws(DecodingError) -> Hash32 {
        let raw = try fixed(32, field)
        guard let value = Hash32(bytes: raw) else {
            throw error("invalid_value", field, "hash must be 32 bytes")
        }
        return value
    }
}
