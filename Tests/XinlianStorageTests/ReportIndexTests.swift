import Foundation
import Testing
import XinlianCore
import XinlianCrypto
import XinlianStorage

extension LedgerFixture {
    func signed(_ kind: TransactionKind, subject: USCC, nonce: UInt64, payload: String) throws -> Transaction {
        try Transaction.sign(TransactionBody(chainID: consortium.chainID, kind: kind, reporter: "bank-a", subject: subject,
                                             timeMs: 1_764_000_000_000, nonce: nonce, payload: Array(payload.utf8)), with: bankKey)
    }
}

@Suite("Report tables of the index")
struct ReportIndexTests {
    static let borrower = try! USCC.withCheckCharacter("91330106MA27XY123")
    static let guarantor = try! USCC.withCheckCharacter("91330102MA2B45678")

    /// A guarantee, a release naming it, and a correction of the release; returns their ids.
    static func grow(_ fixture: LedgerFixture, _ store: LedgerStore) throws -> [Hash32] {
        let suite = fixture.consortium.suite
        let issued = try fixture.signed(.guaranteeIssued, subject: borrower, nonce: 1,
                                        payload: "{\"guaranteeId\":\"GT-1\",\"guarantor\":\"\(guarantor.code)\"}")
        try fixture.append([issued], to: store)
        let release = try fixture.signed(.guaranteeReleased, subject: borrower, nonce: 2,
                                         payload: "{\"issuance\":\"\(issued.id(suite).hex)\"}")
        let unrelated = try fixture.signed(.facilityUpdated, subject: guarantor, nonce: 3, payload: "{\"balance\":1}")
        try fixture.append([release, unrelated], to: store)
        let correction = try fixture.signed(.correction, subject: borrower, nonce: 4,
                                            payload: "{\"corrects\":\"\(release.id(suite).hex)\"}")
        try fixture.append([correction], to: store)
        return [issued, release, correction].map { $0.id(suite) }
    }

    @Test func counterpartiesAndReferencesAreIndexed() throws {
        let fixture = try LedgerFixture(suite: .ed25519SHA256)
        try withTemporaryDirectory { directory in
            let store = try LedgerStore(dataDirectory: directory, consortium: fixture.consortium)
            defer { store.close() }
            let ids = try Self.grow(fixture, store)
            #expect(try store.counterpartyTransactions(Self.guarantor, throughHeight: 3).map(\.id) == [ids[0]])
            #expect(try store.counterpartyTransactions(Self.borrower, throughHeight: 3).isEmpty)
            #expect(try store.referencingTransactions(ids[0], throughHeight: 3).map(\.id) == [ids[1]])
            #expect(try store.referencingTransactions(ids[1], throughHeight: 3).map(\.id) == [ids[2]])
            #expect(try store.referencingTransactions(ids[1], throughHeight: 2).isEmpty)
            #expect(try store.subjectTransactions(Self.borrower, throughHeight: 2).map(\.id) == [ids[0], ids[1]])
            #expect(try store.enterprises(after: "", limit: 10) == [Self.guarantor, Self.borrower].sorted())
            #expect(try store.enterprises(after: Self.guarantor.code, limit: 10) == [Self.borrower])
        }
    }
}
