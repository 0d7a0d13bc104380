import Metrics
import Synchronization

/// The transport's swift-metrics instruments (all prefixed `xinlian_p2p_`; see `docs/protocol.md`). Every counter
/// is created once (labelled ones on first use of a label value, from a small fixed set of codes), not per frame.
struct NetworkMetrics: Sendable {
    let connectedPeers = Gauge(label: "xinlian_p2p_connected_peers")
    let bytesIn = Counter(label: "xinlian_p2p_bytes_in_total")
    let bytesOut = Counter(label: "xinlian_p2p_bytes_out_total")
    let readPauses = Counter(label: "xinlian_p2p_read_pauses_total")
    let inboundBudgetPauses = Counter(label: "xinlian_p2p_inbound_budget_pauses_total")
    let inboundBufferedBytes = Gauge(label: "xinlian_p2p_inbound_buffered_bytes")
    let handshakesInProgress = Gauge(label: "xinlian_p2p_inbound_handshakes")
    private let framesIn = LabelledCounters("xinlian_p2p_frames_in_total", dimension: "type")
    private let framesOut = LabelledCounters("xinlian_p2p_frames_out_total", dimension: "type")
    private let framesNotSent = LabelledCounters("xinlian_p2p_frames_not_sent_total", dimension: "type")
    private let framesRejected = LabelledCounters("xinlian_p2p_frames_rejected_total", dimension: "reason")
    private let handshakesRefused = LabelledCounters("xinlian_p2p_handshakes_refused_total", dimension: "reason")
    private let disconnects = LabelledCounters("xinlian_p2p_disconnects_total", dimension: "reason")
    private let inboundRefused = LabelledCounters("xinlian_p2p_inbound_refused_total", dimension: "reason")

    func frameIn(_ kind: String) { framesIn[kind].increment() }

    func frameOut(_ kind: String, peers: Int = 1) { framesOut[kind].increment(by: Int64(peers)) }

    func frameNotSent(_ kind: String) { framesNotSent[kind].increment() }

    func frameRejected(_ reason: String) { framesRejected[reason].increment() }

    func handshakeRefused(_ reason: String) { handshakesRefused[reason].increment() }

    func disconnect(_ reason: String) { disconnects[reason].increment() }

    func inboundRefused(_ reason: String) { inboundRefused[reason].increment() }
}

/// One counter per value of one label, each made on first use and kept.
final class LabelledCounters: Sendable {
    private let label: String
    private let dimension: String
    private let counters = Mutex<[String: Counter]>([:])

    init(_ label: String, dimension: String) {
        self.label = label
        self.dimension = dimension
    }

    subscript(value: String) -> Counter {
        counters.withLock { counters in
            if let counter = counters[value] { return counter }
            let counter = Counter(label: label, dimensions: [(dimension, value)])
            counters[value] = counter
            return counter
        }
    }
}
