import Testing
import XinlianCredit

@Suite("Times at the edge of the range")
struct OverflowTests {
    /// A reporter's claimed time is untrusted: the largest values must give a day, not trap.
    @Test(arguments: [UInt64.max, UInt64(Int64.max), UInt64(Int64.max) - 1])
    func extremeLedgerTimesDoNotTrap(_ ms: UInt64) {
        let day = Day(ms: ms)
        #expect(day > Day(ms: 0))
    }
}
