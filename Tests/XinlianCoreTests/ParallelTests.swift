import Synchronization
import Testing
import XinlianCore

@Suite struct ParallelTests {
    @Test(arguments: [1, 2, 7])
    func mapKeepsInputOrder(workers: Int) {
        #expect(Parallel.map(count: 1_000, workers: workers) { $0 * 3 } == (0..<1_000).map { $0 * 3 })
        #expect(Parallel.map(count: 0, workers: workers) { $0 }.isEmpty)
    }

    /// The lowest failing index wins whatever the threads, and a failure in the first group ends the work there.
    @Test(arguments: [1, 2, 7])
    func firstFailureIsTheLowestAndStopsAfterItsGroup(workers: Int) {
        let calls = Atomic<Int>(0)
        let found = Parallel.firstFailure(count: 10_000, workers: workers, group: 256) { index -> String? in
            calls.wrappingAdd(1, ordering: .relaxed)
            return index == 3 || index == 200 || index == 9_000 ? "bad \(index)" : nil
        }
        #expect(found?.index == 3)
        #expect(found?.failure == "bad 3")
        #expect(calls.load(ordering: .relaxed) <= 256)
    }

    @Test(arguments: [1, 2, 7])
    func firstFailureInALaterGroupAndNone(workers: Int) {
        let late = Parallel.firstFailure(count: 1_000, workers: workers, group: 100) { $0 >= 950 ? $0 : nil }
        #expect(late?.index == 950)
        #expect(Parallel.firstFailure(count: 1_000, workers: workers, group: 100) { _ -> Int? in nil } == nil)
        #expect(Parallel.firstFailure(count: 0, workers: workers, group: 0) { $0 } == nil)
    }
}
