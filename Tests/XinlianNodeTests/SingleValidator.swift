import XinlianConsensus
import XinlianCore
import XinlianNode

extension NodeEngine {
    /// Starts the replica of a one-validator consortium (if it is not running yet) and returns once nothing is
    /// pending: what was admitted is committed. Returns the newest header, or nil at height 0.
    @discardableResult
    func settle() async throws -> BlockHeader? {
        try startConsensus(link: NoPeers(), timeouts: .standard)
        while status().mempoolSize > 0 { await waitUntilHeight(height + 1) }
        return height == 0 ? nil : try record(at: height).block.header
    }
}
