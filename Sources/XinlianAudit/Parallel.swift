import Dispatch
import Synchronization

/// Runs independent pieces of work on several threads, returning results in input order.
enum Parallel {
    /// `body(0..<count)` on up to `workers` threads (the calling thread included); results by index.
    ///
    /// Workers take indices from a shared counter, so uneven pieces balance out. With one worker (or one
    /// piece) everything runs on the calling thread.
    static func map<Result: Sendable>(count: Int, workers: Int, _ body: @Sendable (Int) -> Result) -> [Result] {
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
        buffer.compactMap { $0 }
    }
}
