import CoreMetrics
import Metrics
import Prometheus

/// The node's metrics, reported through swift-metrics into its own Prometheus registry
/// (one registry per node, so several nodes can share a process in tests).
public final class NodeMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let height: CoreMetrics.Gauge
    let mempoolSize: CoreMetrics.Gauge
    let committed: CoreMetrics.Counter
    let rejected: CoreMetrics.Counter
    let commitLatency: Metrics.Timer
    let consensusRound: CoreMetrics.Gauge
    let peersConnected: CoreMetrics.Gauge
    let evidence: CoreMetrics.Counter
    let blocksSynced: CoreMetrics.Counter
    /// Transactions whose personal data a peer gave after this node committed their block without it.
    let personalDataRepaired: CoreMetrics.Counter
    /// Committed transactions whose personal data this node lacks (not erased).
    let personalDataLacking: CoreMetrics.Gauge
    let peersDropped: CoreMetrics.Counter
    let refusals: CoreMetrics.Counter
    let rateLimited: CoreMetrics.Counter

    public init() {
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        self.registry = registry
        height = CoreMetrics.Gauge(label: "xinlian_height", factory: factory)
        mempoolSize = CoreMetrics.Gauge(label: "xinlian_mempool_transactions", factory: factory)
        committed = CoreMetrics.Counter(label: "xinlian_transactions_committed_total", factory: factory)
        rejected = CoreMetrics.Counter(label: "xinlian_transactions_rejected_total", factory: factory)
        commitLatency = Metrics.Timer(label: "xinlian_commit_latency_seconds", factory: factory)
        consensusRound = CoreMetrics.Gauge(label: "xinlian_consensus_round", factory: factory)
        refusals = CoreMetrics.Counter(label: "xinlian_requests_refused_total", factory: factory)
        rateLimited = CoreMetrics.Counter(label: "xinlian_requests_rate_limited_total", factory: factory)
        peersConnected = CoreMetrics.Gauge(label: "xinlian_peers_connected", factory: factory)
        evidence = CoreMetrics.Counter(label: "xinlian_equivocations_total", factory: factory)
        blocksSynced = CoreMetrics.Counter(label: "xinlian_blocks_synced_total", factory: factory)
        personalDataRepaired = CoreMetrics.Counter(label: "xinlian_personal_data_repaired_total", factory: factory)
        personalDataLacking = CoreMetrics.Gauge(label: "xinlian_personal_data_lacking", factory: factory)
        peersDropped = CoreMetrics.Counter(label: "xinlian_peers_dropped_total", factory: factory)
    }

    /// The Prometheus text exposition.
    public func render() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
