import ServiceLifecycle
import XinlianCore

/// Drives block production for a single-validator consortium: a block as soon as there is work,
/// at most one per `blockIntervalMs`, and a heartbeat block only if genesis asks for one.
/// On graceful shutdown the block in flight completes (it is one actor call) before `run` returns.
public struct BlockProducer: Service {
    public let engine: NodeEngine

    public init(engine: NodeEngine) {
        self.engine = engine
    }

    public func run() async throws {
        let parameters = engine.consortium.genesis.parameters
        try await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await produce(intervalMs: parameters.blockIntervalMs) }
                if parameters.heartbeatIntervalMs > 0 {
                    group.addTask { try await heartbeat(intervalMs: parameters.heartbeatIntervalMs) }
                }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    private func produce(intervalMs: UInt64) async throws {
        // One consumer of the work signal; signals coalesce, so each wake-up drains all pending work.
        await engine.poke()
        for await _ in engine.workSignal {
            while await engine.hasWork() {
                try await engine.produceBlock()
                try await Task.sleep(for: .milliseconds(intervalMs))
            }
            try Task.checkCancellation()
        }
    }

    private func heartbeat(intervalMs: UInt64) async throws {
        while true {
            try await Task.sleep(for: .milliseconds(intervalMs))
            await engine.poke()
        }
    }
}

extension NodeEngine {
    /// Wakes the block producer.
    public func poke() { signalWork() }
}
