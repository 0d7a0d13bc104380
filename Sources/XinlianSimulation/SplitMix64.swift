/// SplitMix64 (Steele, Lea, Flood 2014): the simulator's only source of randomness, so one seed fixes a run.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `0..<bound` (`bound > 0`), by Lemire's multiply-shift; the tiny bias is irrelevant here.
    public mutating func below(_ bound: UInt64) -> UInt64 {
        precondition(bound > 0, "bound must be positive")
        return next().multipliedFullWidth(by: bound).high
    }

    /// A value in `range`.
    public mutating func inRange(_ range: ClosedRange<UInt64>) -> UInt64 {
        range.lowerBound + below(range.upperBound - range.lowerBound + 1)
    }

    /// True with probability `perMille / 1000`.
    public mutating func chance(perMille: UInt32) -> Bool { below(1_000) < UInt64(perMille) }
}

/// A min-heap of scheduled events ordered by (time, insertion sequence): ties resolve in insertion order,
/// so the run never depends on anything but the seed.
struct EventQueue<Element> {
    private struct Entry {
        var timeMs: UInt64
        var sequence: UInt64
        var element: Element
        func precedes(_ other: Entry) -> Bool { (timeMs, sequence) < (other.timeMs, other.sequence) }
    }

    private var heap: [Entry] = []
    private var nextSequence: UInt64 = 0

    var count: Int { heap.count }

    mutating func push(_ element: Element, at timeMs: UInt64) {
        heap.append(Entry(timeMs: timeMs, sequence: nextSequence, element: element))
        nextSequence += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (timeMs: UInt64, element: Element)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        guard let top = heap.popLast() else { return nil }
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].precedes(heap[smallest]) { smallest = left }
            if right < heap.count, heap[right].precedes(heap[smallest]) { smallest = right }
            guard smallest != parent else { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return (top.timeMs, top.element)
    }
}
