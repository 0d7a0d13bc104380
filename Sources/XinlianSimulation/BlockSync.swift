import XinlianConsensus
import XinlianCore
import XinlianCrypto

/// Simulated block sync and the safety invariants checked on every block a node adds to its chain.
extension World {
    mutating func requestSync(_ index: Int, from peer: Int) {
        if let asked = nodes[index].syncRequestedAtMs, nowMs < asked + Self.syncRetryMs { return }
        nodes[index].syncRequestedAtMs = nowMs
        send(.syncRequest(fromHeight: UInt64(nodes[index].chain.count + 1)), from: index, to: peer)
    }

    mutating func answerSync(_ index: Int, peer: Int, fromHeight: UInt64) {
        let chain = nodes[index].chain
        guard fromHeight >= 1, fromHeight <= UInt64(chain.count) else { return }
        let first = Int(fromHeight - 1)
        var records = Array(chain[first..<min(chain.count, first + Self.syncBatchLimit)])
        if nodes[index].behaviour == .lyingSync {
            // The first block's header is altered: its certificate no longer signs it.
            var header = records[0].block.header
            header.timeMs &+= 1
            records[0] = CommittedBlock(block: Block(header: header, transactions: records[0].block.transactions),
                                        certificate: records[0].certificate)
            hostileSent += 1
        }
        send(.syncResponse(records), from: index, to: peer)
    }

    /// Applies the records that extend the node's chain (each verified first), then restarts its core there.
    mutating func applySync(_ index: Int, _ records: [CommittedBlock], from peer: Int) {
        nodes[index].syncRequestedAtMs = nil
        var applied = 0
        for record in records where record.block.header.height == UInt64(nodes[index].chain.count + 1) {
            let previousHash = nodes[index].chain.last?.block.header.hash(setup.suite) ?? setup.consortium.genesisHash
            do {
                try BlockVerifier.checkStructure(record, height: record.block.header.height, previousHash: previousHash,
                                                 consortium: setup.consortium)
            } catch {
                refuse(at: index, from: nodes[peer].id, "synced block: \(error)")
                break
            }
            guard append(record, to: index, via: "sync") else { break }
            applied += 1
        }
        guard applied > 0 else { return }
        // The shell restarts consensus at the new height; durable signer state is kept.
        startCore(index)
    }

    /// Adds a committed block to a node's chain after the validity and agreement checks (honest nodes only).
    mutating func append(_ record: CommittedBlock, to index: Int, via source: String) -> Bool {
        let height = UInt64(nodes[index].chain.count + 1)
        guard record.block.header.height == height else { return false }
        let blockHash = record.block.header.hash(setup.suite)
        self.record("n\(index) commits h\(height) \(short(blockHash)) via \(source)")
        if nodes[index].isHonest {
            guard checkValidity(record, height: height, node: index) else { return false }
            if let agreed = committedHashes[height], agreed != blockHash {
                fail("agreement", "n\(index) committed \(short(blockHash)) at height \(height), others \(short(agreed))")
                return false
            }
            committedHashes[height] = blockHash
        }
        nodes[index].chain.append(record)
        let committed = UInt64(nodes[index].chain.count)
        nodes[index].gate?.pruneCommitted(through: committed)
        return true
    }

    /// Validity: the certificate verifies against the validator set and the block links to the chain.
    mutating func checkValidity(_ record: CommittedBlock, height: UInt64, node index: Int) -> Bool {
        let previousHash = nodes[index].chain.last?.block.header.hash(setup.suite) ?? setup.consortium.genesisHash
        guard record.block.header.previousHash == previousHash else {
            fail("validity", "n\(index) block at height \(height) does not link to its chain")
            return false
        }
        guard !verifiedRecords.contains(record) else { return true }
        do {
            try BlockVerifier.checkStructure(record, height: height, previousHash: previousHash,
                                             consortium: setup.consortium)
        } catch {
            fail("validity", "n\(index) committed an invalid block at height \(height): \(error)")
            return false
        }
        verifiedRecords.insert(record)
        return true
    }
}
