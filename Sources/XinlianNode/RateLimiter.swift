import Synchronization
import XinlianCore

/// A token bucket per institution: `rate` tokens a second, at most `burst` saved. Only institutions whose signature
/// verified are charged, so the buckets are bounded by genesis, and nobody can spend another institution's.
public final class RateLimiter: Sendable {
    public let rate: Double
    public let burst: Double
    private let buckets = Mutex<[InstitutionID: (tokens: Double, atMs: UInt64)]>([:])

    /// `Retry-After` for a wait of `seconds` (nil when waiting cannot help), clamped to a day.
    public static func retryAfterSeconds(_ seconds: Double) -> Int? {
        guard seconds.isFinite, seconds >= 0 else { return nil }
        return Int(min(86_400, max(1, seconds.rounded(.up))))
    }

    public init(rate: Double, burst: Double) {
        self.rate = rate.isFinite ? max(0, rate) : 0
        self.burst = burst.isFinite ? max(1, burst) : 1
    }

    /// Takes `cost` tokens from each institution's bucket, all or none. Returns nil when taken, else the seconds
    /// until the slowest bucket would have them (a request costing more than the burst is never allowed).
    public func take(_ costs: [InstitutionID: Double], nowMs: UInt64) -> Double? {
        buckets.withLock { buckets in
            var refilled: [InstitutionID: (tokens: Double, atMs: UInt64)] = [:]
            var wait = 0.0
            for (institution, cost) in costs {
                let bucket = buckets[institution] ?? (burst, nowMs)
                let elapsed = nowMs > bucket.atMs ? Double(nowMs - bucket.atMs) / 1_000 : 0
                let tokens = min(burst, bucket.tokens + elapsed * rate)
                refilled[institution] = (tokens, max(nowMs, bucket.atMs))
                if tokens < cost {
                    wait = max(wait, cost > burst || rate == 0 ? .infinity : (cost - tokens) / rate)
                }
            }
            guard wait == 0 else { return wait }
            for (institution, bucket) in refilled { buckets[institution] = (bucket.tokens - (costs[institution] ?? 0), bucket.atMs) }
            return nil
        }
    }
}
