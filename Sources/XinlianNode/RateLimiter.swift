import Foundation
import NIOCore
import Synchronization
import XinlianCore

/// A token bucket per key: `rate` tokens a second, at most `burst` saved.
///
/// Keyed by institution, only institutions whose signature verified are charged, so the buckets are bounded by
/// genesis and nobody can spend another institution's. Keyed by client address (``ClientAddress``), the keys are
/// not bounded by anything the node controls, so at most `keyLimit` buckets are kept: when a new key would pass it,
/// the buckets that have refilled are forgotten (they hold nothing a new bucket would not), then, if every bucket is
/// still spending, the least recently used.
public final class RateLimiter<Key: Hashable & Sendable>: Sendable {
    public let rate: Double
    public let burst: Double
    public let keyLimit: Int
    private let buckets = Mutex<[Key: Bucket]>([:])

    struct Bucket {
        var tokens: Double
        var atMs: UInt64
    }

    public init(rate: Double, burst: Double, keyLimit: Int = .max) {
        self.rate = rate.isFinite ? max(0, rate) : 0
        self.burst = burst.isFinite ? max(1, burst) : 1
        self.keyLimit = max(1, keyLimit)
    }

    /// Takes `cost` tokens from each key's bucket, all or none. Returns nil when taken, else the seconds until the
    /// slowest bucket would have them (a request costing more than the burst is never allowed).
    public func take(_ costs: [Key: Double], nowMs: UInt64) -> Double? {
        buckets.withLock { buckets in
            var refilled: [Key: Bucket] = [:]
            var wait = 0.0
            for (key, cost) in costs {
                let bucket = refill(buckets[key], nowMs: nowMs)
                refilled[key] = bucket
                if bucket.tokens < cost {
                    wait = max(wait, cost > burst || rate == 0 ? .infinity : (cost - bucket.tokens) / rate)
                }
            }
            guard wait == 0 else { return wait }
            for (key, bucket) in refilled {
                if buckets[key] == nil { makeRoom(&buckets, nowMs: nowMs) }
                buckets[key] = Bucket(tokens: bucket.tokens - (costs[key] ?? 0), atMs: bucket.atMs)
            }
            return nil
        }
    }

    /// Whether `key` could spend `cost` now, without spending it; nil when it could, else the seconds to wait.
    public func wait(_ key: Key, cost: Double = 1, nowMs: UInt64) -> Double? {
        buckets.withLock { buckets in
            let bucket = refill(buckets[key], nowMs: nowMs)
            guard bucket.tokens < cost else { return nil }
            return cost > burst || rate == 0 ? .infinity : (cost - bucket.tokens) / rate
        }
    }

    /// Spends `cost` of `key`'s tokens, never refused, into debt down to minus the burst: for work already done,
    /// such as signatures that were checked and failed (a batch of them owes for each).
    public func spend(_ key: Key, cost: Double, nowMs: UInt64) {
        buckets.withLock { buckets in
            let bucket = refill(buckets[key], nowMs: nowMs)
            if buckets[key] == nil { makeRoom(&buckets, nowMs: nowMs) }
            buckets[key] = Bucket(tokens: max(-burst, bucket.tokens - cost), atMs: bucket.atMs)
        }
    }

    /// Gives back `cost` tokens taken for work that turned out not to be owed (up to the burst).
    public func refund(_ key: Key, cost: Double, nowMs: UInt64) {
        buckets.withLock { buckets in
            guard buckets[key] != nil else { return }
            let bucket = refill(buckets[key], nowMs: nowMs)
            buckets[key] = Bucket(tokens: min(burst, bucket.tokens + cost), atMs: bucket.atMs)
        }
    }

    /// Buckets kept now (for tests and metrics).
    public var keyCount: Int { buckets.withLock { $0.count } }

    private func refill(_ bucket: Bucket?, nowMs: UInt64) -> Bucket {
        guard let bucket else { return Bucket(tokens: burst, atMs: nowMs) }
        let elapsed = nowMs > bucket.atMs ? Double(nowMs - bucket.atMs) / 1_000 : 0
        return Bucket(tokens: min(burst, bucket.tokens + elapsed * rate), atMs: max(nowMs, bucket.atMs))
    }

    /// Makes room for one more bucket: amortised O(1), since a sweep frees at least half the limit or evicts.
    private func makeRoom(_ buckets: inout [Key: Bucket], nowMs: UInt64) {
        guard buckets.count >= keyLimit else { return }
        buckets = buckets.filter { refill($0.value, nowMs: nowMs).tokens < burst }
        guard buckets.count >= keyLimit else { return }
        // Every bucket is spending: forget the least recently used half, so the next sweeps are far apart.
        let kept = buckets.sorted { $0.value.atMs > $1.value.atMs }.prefix(keyLimit / 2)
        buckets = Dictionary(uniqueKeysWithValues: kept.map { ($0.key, $0.value) })
    }
}

/// The `Retry-After` header of a `429`.
public enum RetryAfter {
    /// `Retry-After` for a wait of `seconds` (nil when waiting cannot help), clamped to a day.
    public static func seconds(_ seconds: Double) -> Int? {
        guard seconds.isFinite, seconds >= 0 else { return nil }
        return Int(min(86_400, max(1, seconds.rounded(.up))))
    }
}

/// Where a request comes from, as far as budgets go: an IPv4 address, or an IPv6 /64 (one subscriber's prefix,
/// so one host cannot get a fresh budget per address it picks). An IPv6 client also names its /48
/// (``aggregate``), a site's usual allocation, which shares one budget of ``aggregateShare`` per request, so
/// that a site cannot get a fresh budget per /64 it holds either (it holds 65,536).
public struct ClientAddress: Hashable, Sendable, CustomStringConvertible {
    public let description: String
    /// The IPv6 /48 this client's /64 is in (`2001:db8:1::/48`); nil for IPv4 and for literal keys.
    public let aggregate: String?

    /// What one charge to a client costs its /48: a /48 as a whole gets as many failures as 16 clients.
    public static let aggregateShare = 1.0 / 16

    public init?(_ address: SocketAddress?) {
        guard let address else { return nil }
        switch address {
        case .v4:
            // The numeric address (an accepted socket's `host` name may be empty).
            guard let text = address.ipAddress else { return nil }
            description = text
            aggregate = nil
        case .v6:
            guard let text = address.ipAddress else { return nil }
            if text.hasPrefix("::ffff:"), !text.dropFirst(7).contains(":") {
                description = String(text.dropFirst(7))  // an IPv4 client on a dual-stack listener
                aggregate = nil
            } else {
                description = Self.prefix(text, groups: 4) + "::/64"
                aggregate = Self.prefix(text, groups: 3) + "::/48"
            }
        case .unixDomainSocket:
            return nil
        }
    }

    public init(literal: String) {
        description = literal
        aggregate = nil
    }

    /// The address of an IP literal (`192.0.2.7`, `2001:db8::1`), nil for anything else.
    public init?(ipLiteral text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, let address = try? SocketAddress(ipAddress: trimmed, port: 0) else { return nil }
        self.init(address)
    }

    /// This address as a socket address literal when it is one (for configuration checks).
    var ipLiteral: SocketAddress? { try? SocketAddress(ipAddress: description, port: 0) }

    /// The first `groups` groups of an IPv6 address in text form (expanding `::`).
    static func prefix(_ text: String, groups count: Int) -> String {
        let halves = text.split(separator: "::", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let head = halves[0].isEmpty ? [] : halves[0].split(separator: ":").map(String.init)
        let tail = halves.count > 1 && !halves[1].isEmpty ? halves[1].split(separator: ":").map(String.init) : []
        let groups = halves.count > 1 ? head + Array(repeating: "0", count: max(0, 8 - head.count - tail.count)) + tail : head
        return groups.prefix(count).map { String(UInt16($0, radix: 16) ?? 0, radix: 16) }.joined(separator: ":")
    }
}
