import Metrics

/// The transport's swift-metrics instruments (all prefixed `xinlian_p2p_`; see `docs/protocol.md`).
struct NetworkMetrics: Sendable {
    let connectedPeers = Gauge(label: "xinlian_p2p_connected_peers")
    let bytesIn = Counter(label: "xinlian_p2p_bytes_in_total")
    let bytesOut = Counter(label: "xinlian_p2p_bytes_out_total")
    let eventsDropped = Counter(label: "xinlian_p2p_events_dropped_total")
    let inboundRefused = Counter(label: "xinlian_p2p_inbound_refused_total")
    let readPauses = Counter(label: "xinlian_p2p_read_pauses_total")

    func frameIn(_ kind: String) { Counter(label: "xinlian_p2p_frames_in_total", dimensions: [("type", kind)]).increment() }

    func frameOut(_ kind: String, peers: Int = 1) {
        Counter(label: "xinlian_p2p_frames_out_total", dimensions: [("type", kind)]).increment(by: Int64(peers))
    }

    func frameNotSent(_ kind: String) {
        Counter(label: "xinlian_p2p_frames_not_sent_total", dimensions: [("type", kind)]).increment()
    }

    func frameRejected(_ reason: String) {
        Counter(label: "xinlian_p2p_frames_rejected_total", dimensions: [("reason", reason)]).increment()
    }

    func handshakeRefused(_ reason: String) {
        Counter(label: "xinlian_p2p_handshakes_refused_total", dimensions: [("reason", reason)]).increment()
    }

    func disconnect(_ reason: String) {
        Counter(label: "xinlian_p2p_disconnects_total", dimensions: [("reason", reason)]).increment()
    }
}
