import Benchmark
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianMerkle

/// Raw signature verification is the machine's own limit; every other figure here is read against it
/// (scripts/bench prints the ratios for the whole commit path and the auditor).
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.throughput, .wallClock], maxDuration: .seconds(2))

    for suiteID in CryptoSuiteID.allCases {
        let suite = CryptoSuite(suiteID)
        let key = suite.generateSigningKey()
        let message = [UInt8](repeating: 7, count: 200)
        let signature = (try? key.sign(message)) ?? []
        Benchmark("raw \(suiteID.rawValue) verify") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(key.publicKey.isValidSignature(signature, for: message))
            }
        }
    }

    let suite = CryptoSuite.ed25519SHA256
    let bodies = (try? SampleGenerator(seed: 3).bodies(enterprises: 200, chainID: "bench", suite: suite)) ?? []
    let signer = suite.generateSigningKey()
    let transactions = bodies.prefix(1_000).compactMap { try? Transaction.sign($0, with: signer) }

    Benchmark("decode 1000 transactions") { benchmark in
        let encoded = transactions.map(\.canonicalBytes)
        benchmark.startMeasurement()
        for bytes in encoded { blackHole(try? Transaction(canonicalBytes: bytes, limit: Limits.transactionBytes)) }
    }

    Benchmark("RFC 6962 root of 1000 transactions") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(Block.transactionsRoot(transactions, suite: suite))
        }
    }

    Benchmark("state tree: 100 updates on 100k enterprises") { benchmark in
        let tree = SparseMerkleTree(suite: suite)
        var store = InMemorySMTStore()
        let keys = (0..<100_000).map { suite.hash([UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8),
                                                   UInt8(truncatingIfNeeded: $0 >> 16)]) }
        guard let built = try? tree.update(root: .zero, changes: keys.map { (key: $0, value: $0) }, source: store) else { return }
        store.insert(built.newNodes)
        let changes = keys.prefix(100).map { (key: $0, value: suite.hash($0.bytes)) }
        benchmark.startMeasurement()
        blackHole(try? tree.update(root: built.root, changes: changes, source: store))
    }

    Benchmark("payload canonicality check") { benchmark in
        guard let payload = transactions.first?.body.payload else { return }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(Payload.isCanonical(payload)) }
    }
}
