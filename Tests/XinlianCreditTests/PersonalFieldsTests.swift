import Foundation
import Testing
import XinlianCore
@testable import XinlianCredit

/// `PersonalFields.containsPersonal` answers what `split(_:).personal != nil` answers without building the split
/// (admission and reports ask it of every payload): the two must agree on every shape.
@Suite("Personal fields: the presence check agrees with the split")
struct PersonalFieldsTests {
    static let shapes: [String] = [
        #"{}"#,
        #"{"name":"西湖茶业","legalForm":"limitedLiabilityCompany"}"#,
        #"{"legalRepresentative":"张伟"}"#,
        #"{"name":"张记面馆","legalForm":"soleProprietorship"}"#,
        #"{"address":"杭州","legalForm":"soleProprietorship"}"#,
        #"{"legalForm":"soleProprietorship","industry":"H6210"}"#,
        #"{"payload":{"legalRepresentative":"李娜"}}"#,
        #"{"payload":{"name":"x","legalForm":"soleProprietorship"}}"#,
        #"{"payload":{"name":"x","legalForm":"limitedLiabilityCompany"}}"#,
        #"{"items":[{"legalRepresentative":"李娜"}]}"#,
        #"{"a":{"b":{"c":{"legalRepresentative":"深"}}}}"#,
        #"{"legalForm":"soleProprietorship","nested":{"name":"not personal here"}}"#,
        #"{"legalRepresentative":null}"#,
        #"[{"legalRepresentative":"x"}]"#,
        #""legalRepresentative""#,
    ]

    @Test(arguments: shapes)
    func presenceAgreesWithSplit(_ text: String) throws {
        let value = try JSONParser.parse(Array(text.utf8))
        #expect(PersonalFields.containsPersonal(value) == (PersonalFields.split(value).personal != nil))
    }

    /// Every payload of the sample generator's stories, with its personal fields joined back in and without them.
    @Test func presenceAgreesWithSplitOnEverySampleKind() throws {
        var checked = 0
        for sample in SampleGenerator(seed: 7).transactions(enterprises: 6) {
            let full = sample.payload
            let (kept, _) = PersonalFields.split(full)
            for value in [full, kept] {
                #expect(PersonalFields.containsPersonal(value) == (PersonalFields.split(value).personal != nil))
                checked += 1
            }
        }
        #expect(checked > 100)
    }
}
