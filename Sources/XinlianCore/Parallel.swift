import Dispatch
import Synchronization

/// Runs independent pieces of work on several threads, with results in input order: the same answer whatever the
/// number of threads, so pure checks stay deterministic (the simulator runs them with one worker).
public enum Parallel {
    /// `body(0..<count)` on up to `workers` threads (the calling thread included); results by index.
    ///
    /// Workers take indices from a shared counter, so uneven pieces balance out. With one worker (or one
    /// piece) everything runs on the calling thread.
    public static func map<Result: Sendable>(count: Int, workers: Int, _ body: @Sendable (Int) -> Result) -> [Result] {
        let threads = min(max(workers, 1), count)
        guard threads > 1 else { return (0..<count).map(body) }
        let slots = ResultSlots<Result>(count: count)
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            while true {
                let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < count else { return }
                slots.store(body(index), at: index)
            }
        }
        return slots.results()
    }

    /// The lowest index in `0..<count` whose `body` gives a failure, with it; nil when none does. Checked in
    /// consecutive groups of `group` indices, each spread over `workers` threads, stopping after the first group
    /// with a failure: input that fails early (a forged signature at the front of a block) costs at most one group
    /// of work, as a sequential check costs one piece.
    public static func firstFailure<Failure: Sendable>(count: Int, workers: Int, group: Int,
                                                       _ body: @Sendable (Int) -> Failure?) -> (index: Int, failure: Failure)? {
        let group = max(group, 1)
        var start = 0
        while start < count {
            let size = min(group, count - start)
            let first = start
            let outcomes = map(count: size, workers: workers) { body(first + $0) }
            if let offset = outcomes.firstIndex(where: { $0 != nil }), let failure = outcomes[offset] {
                return (first + offset, failure)
            }
            start += size
        }
        return nil
    }
}

/// Write-once result storage shared by the workers of ``Parallel/map(count:workers:_:)``.
///
/// `@unchecked Sendable`: each index is written by exactly one worker, and read only after
/// `concurrentPerform` has returned (which orders every write before the read).
private final class ResultSlots<Result>: @unchecked Sendable {
    private let buffer: UnsafeMutableBufferPointer<Result?>

    init(count: Int) {
        buffer = .allocate(capacity: count)
        buffer.initialize(repeating: nil)
    }

    deinit {
        buffer.deinitialize()
        buffer.deallocate()
    }

    func store(_ value: Result, at index: Int) {
        buffer[index] = value
    }

    /// Every stored result; call after all workers finished. Every slot is filled by then.
    func results() -> [Result] {
        let results = buffer.compactMap { $0 }
        precondition(results.count == buffer.count, "a parallel map left a result unset")
        return results
    }
}
