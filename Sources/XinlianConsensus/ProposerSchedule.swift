import XinlianCore
import XinlianCrypto

/// Proposer rotation weighted by voting power: Tendermint's proposer-priority algorithm, run from all-zero
/// priorities. Each step adds every validator's power to its priority, picks the highest priority (ties to
/// the smallest id) and subtracts the total power from it. Over one period each validator proposes in
/// proportion to its power.
///
/// `proposer(height:round:)` is step number `height - 1 + round` of that sequence, so it is a pure function of
/// the validator set: no state carries between heights, and a restarted node computes the same proposer.
public struct ProposerSchedule: Sendable, Hashable {
    /// The longest period kept; larger power totals are scaled down proportionally (each power at least 1).
    public static let periodLimit: UInt64 = 4_096

    public let validatorSetHash: Hash32
    /// Member ids in proposing order over one period.
    public let sequence: [ValidatorID]

    public init(_ validators: ValidatorSet) {
        validatorSetHash = validators.hash
        let powers = Self.scaledPowers(validators.members.map(\.power))
        let ids = validators.members.map(\.id)
        let total = powers.reduce(0, +)
        var priorities = [Int64](repeating: 0, count: powers.count)
        var sequence: [ValidatorID] = []
        sequence.reserveCapacity(Int(total))
        for _ in 0..<total {
            for index in priorities.indices { priorities[index] += Int64(powers[index]) }
            var chosen = 0
            // Members are sorted by id, so the first maximum is the smallest id.
            for index in priorities.indices where priorities[index] > priorities[chosen] { chosen = index }
            priorities[chosen] -= Int64(total)
            sequence.append(ids[chosen])
        }
        self.sequence = sequence
    }

    /// The validator that proposes in (`height`, `round`).
    public func proposer(height: UInt64, round: UInt32) -> ValidatorID {
        let step = (height &- 1) &+ UInt64(round)
        return sequence[Int(step % UInt64(sequence.count))]
    }

    /// Powers divided by their greatest common divisor, then scaled into ``periodLimit`` if still larger.
    static func scaledPowers(_ powers: [UInt64]) -> [UInt64] {
        let divisor = powers.reduce(0) { gcd($0, $1) }
        var reduced = powers.map { $0 / max(divisor, 1) }
        let total = reduced.reduce(0, +)
        if total > periodLimit {
            // power ≤ 2^40 and periodLimit ≤ 2^12, so the product fits in 64 bits.
            reduced = reduced.map { max(1, $0 * periodLimit / total) }
        }
        return reduced
    }

    static func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var (x, y) = (a, b)
        while y != 0 { (x, y) = (y, x % y) }
        return x
    }
}
