import NIOCore
import Synchronization

/// At most one log line per interval for each key (a refusal reason, say); the lines in between are not logged but
/// counted, and the count is reported with the next line logged for that key. Counters and metrics are kept apart
/// and stay exact.
final class LogRateLimiter: Sendable {
    /// One line per second per key.
    static let defaultIntervalNanoseconds: UInt64 = 1_000_000_000

    private struct Window {
        var lastLogged: UInt64
        var suppressed: Int
    }

    private let interval: UInt64
    private let clock: @Sendable () -> UInt64
    private let windows = Mutex<[String: Window]>([:])

    /// `clock` gives monotonic nanoseconds (tests pass their own).
    init(intervalNanoseconds: UInt64 = LogRateLimiter.defaultIntervalNanoseconds,
         clock: @escaping @Sendable () -> UInt64 = { NIODeadline.now().uptimeNanoseconds }) {
        interval = intervalNanoseconds
        self.clock = clock
    }

    /// nil: do not log this line (it is counted). Otherwise log it, with the returned number of lines for `key`
    /// suppressed since the last one logged.
    func admit(_ key: String) -> Int? {
        let now = clock()
        return windows.withLock { windows -> Int? in
            guard let window = windows[key] else {
                windows[key] = Window(lastLogged: now, suppressed: 0)
                return 0
            }
            guard now >= window.lastLogged, now - window.lastLogged >= interval else {
                windows[key]?.suppressed += 1
                return nil
            }
            windows[key] = Window(lastLogged: now, suppressed: 0)
            return window.suppressed
        }
    }
}
