import Testing
import XinlianCredit
import XinlianCrypto

@Suite("Query purposes")
struct PurposeTests {
    @Test func unknownPurposeListsThePurposes() {
        let error = #expect(throws: UnknownValueError.self) { try QueryPurpose(parsing: "creditApproval") }
        #expect(error?.description == "unknown purpose \"creditApproval\"; expected one of: loanApplication, creditLineReview, "
            + "postLoanManagement, guaranteeReview, leasingOrFactoringReview, supplyChainFinance, supervision, audit")
        #expect(error?.accepted == QueryPurpose.allCases.map(\.rawValue))
    }

    @Test func unknownConsentPurposeListsTheConsentPurposes() {
        let error = #expect(throws: UnknownValueError.self) { try ConsentPurpose(parsing: "supervision") }
        #expect(error?.description.hasPrefix("unknown consent purpose \"supervision\"; expected one of: loanApplication, ") == true)
        #expect(error?.accepted == ConsentPurpose.allCases.map(\.rawValue))
    }
}
