import Crypto
import Foundation

/// The few DER encodings needed for one self-signed X.509 v3 certificate (RFC 5280) with a P-256 key
/// and ECDSA-SHA256, so that no ASN.1 library is needed. NIOSSL re-parses the result before use.
enum SelfSignedCertificate {
    static func make(key: P256.Signing.PrivateKey, commonName: String, notBefore: Date, notAfter: Date) throws -> [UInt8] {
        let ecdsaWithSHA256 = sequence(oid([0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02]))  // 1.2.840.10045.4.3.2
        let commonNameOID: [UInt8] = [0x55, 0x04, 0x03]  // 2.5.4.3
        let name = sequence(set(sequence(oid(commonNameOID) + tlv(0x0C, Array(commonName.utf8)))))
        var serial = (0..<16).map { _ in UInt8.random(in: 0...255) }
        serial[0] = (serial[0] & 0x7F) | 0x01  // positive, minimal, non-zero
        // basicConstraints (critical) CA:FALSE; keyUsage (critical) digitalSignature;
        // extKeyUsage serverAuth + clientAuth.
        let basicConstraints = sequence(oid([0x55, 0x1D, 0x13]) + tlv(0x01, [0xFF]) + tlv(0x04, sequence([])))
        let keyUsage = sequence(oid([0x55, 0x1D, 0x0F]) + tlv(0x01, [0xFF]) + tlv(0x04, tlv(0x03, [0x07, 0x80])))
        let serverAuth: [UInt8] = [0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01]
        let clientAuth: [UInt8] = [0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02]
        let extendedKeyUsage = sequence(oid([0x55, 0x1D, 0x25]) + tlv(0x04, sequence(oid(serverAuth) + oid(clientAuth))))
        let tbs = sequence(
            tlv(0xA0, tlv(0x02, [0x02]))  // [0] EXPLICIT version v3
                + tlv(0x02, serial)
                + ecdsaWithSHA256
                + name
                + sequence(try time(notBefore) + time(notAfter))
                + name
                + Array(key.publicKey.derRepresentation)
                + tlv(0xA3, sequence(basicConstraints + keyUsage + extendedKeyUsage)))
        let signature = try key.signature(for: tbs).derRepresentation
        return sequence(tbs + ecdsaWithSHA256 + tlv(0x03, [0x00] + Array(signature)))
    }

    static func pem(_ der: [UInt8], label: String) -> String {
        let base64 = Data(der).base64EncodedString()
        var lines: [Substring] = []
        var rest = Substring(base64)
        while !rest.isEmpty {
            lines.append(rest.prefix(64))
            rest = rest.dropFirst(64)
        }
        return "-----BEGIN \(label)-----\n" + lines.joined(separator: "\n") + "\n-----END \(label)-----\n"
    }

    /// UTCTime before 2050, GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5).
    private static func time(_ date: Date) throws -> [UInt8] {
        var calendar = Calendar(identifier: .gregorian)
        guard let utc = TimeZone(identifier: "UTC") else { throw TLSIdentityError("no UTC time zone") }
        calendar.timeZone = utc
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        guard let year = parts.year, let month = parts.month, let day = parts.day, let hour = parts.hour,
              let minute = parts.minute, let second = parts.second, (1950...9999).contains(year) else {
            throw TLSIdentityError("certificate date out of range")
        }
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let clock = two(month) + two(day) + two(hour) + two(minute) + two(second) + "Z"
        if year < 2050 { return tlv(0x17, Array((two(year % 100) + clock).utf8)) }
        return tlv(0x18, Array(("\(year)" + clock).utf8))
    }

    private static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        var length: [UInt8]
        if content.count < 0x80 {
            length = [UInt8(content.count)]
        } else {
            var count = content.count
            var bytes: [UInt8] = []
            while count > 0 {
                bytes.insert(UInt8(truncatingIfNeeded: count), at: 0)
                count >>= 8
            }
            length = [0x80 | UInt8(bytes.count)] + bytes
        }
        return [tag] + length + content
    }

    private static func sequence(_ content: [UInt8]) -> [UInt8] { tlv(0x30, content) }
    private static func set(_ content: [UInt8]) -> [UInt8] { tlv(0x31, content) }
    private static func oid(_ encoded: [UInt8]) -> [UInt8] { tlv(0x06, encoded) }
}
