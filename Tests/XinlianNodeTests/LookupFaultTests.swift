import Foundation
import Logging
import Testing
import XinlianCore
import XinlianCrypto
@testable import XinlianNode
import XinlianStorage

/// A reference lookup that fails on this node's own storage (a damaged statement on disk) is the node's fault, not
/// a verdict on the transaction that references it: admission answers `storage_unavailable` (retry) and remembers
/// no refusal, instead of refusing an honest transaction as `unknown_reference`.
@Suite("Reference lookups that fail here")
struct LookupFaultTests {
    @Test func aDamagedReferencedStatementIsAStorageFaultNotARefusal() async throws {
        let node = try TestNode(suite: .ed25519SHA256)
        defer { node.remove() }
        let engine = try node.engine()
        let opening = try node.transaction(1)
        _ = try await engine.admit([opening])
        _ = try #require(try await engine.settle())
        let openingID = opening.id(node.consortium.suite)
        #expect(await engine.committedTransaction(openingID) == opening)

        try Self.flipByte(inside: opening.canonicalBytes, under: LedgerStore.blocksDirectory(node.directory + "/data"))
        let update = try Transaction.sign(TransactionBody(
            chainID: node.consortium.chainID, kind: .facilityUpdated, reporter: "bank-a", subject: opening.body.subject,
            timeMs: 1_764_000_000_000, nonce: 99,
            payload: try Payload.canonicalize(.object([
                "facilityId": .string("F-1"), "opening": .string(openingID.hex), "asOf": .string("2025-06-30"),
                "balance": .object(["minor": .integer(100_000), "currency": .string("CNY")]),
                "classification": .string("normal"), "status": .string("active"),
            ]))), with: try #require(node.institutionKeys["bank-a"]))
        await #expect {
            try await engine.admit([update])
        } throws: { error in
            (error as? VerificationError)?.code == "storage_unavailable"
        }
        // Nothing was remembered as refused: once the disk is repaired, the same transaction is judged afresh.
        #expect(await engine.stateOf(update.id(node.consortium.suite)) == .unknown)
    }

    static func flipByte(inside bytes: [UInt8], under directory: String) throws {
        for file in try FileManager.default.contentsOfDirectory(atPath: directory) where file.hasPrefix("segment-") {
            let path = directory + "/" + file
            var contents = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            guard contents.count >= bytes.count,
                  let start = (0...(contents.count - bytes.count)).first(where: {
                      contents[$0..<($0 + bytes.count)].elementsEqual(bytes)
                  }) else { continue }
            contents[start + bytes.count / 2] ^= 0x01
            try Data(contents).write(to: URL(fileURLWithPath: path))
            return
        }
        Issue.record("the transaction's bytes are in no segment file")
    }
}
