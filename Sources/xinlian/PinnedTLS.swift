import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization
import XinlianCore
import XinlianNetwork

/// How the CLI trusts a node's `https://` API: not a certificate authority but genesis. Every validator's TLS key
/// is pinned there (`tlsKeySHA256`); the CLI accepts a node's certificate only if its key is one of them. The
/// genesis file comes from `--genesis` where a command has it, else from the `XINLIAN_GENESIS` environment variable.
enum PinnedTLS {
    static let environmentVariable = "XINLIAN_GENESIS"
    /// Set by commands that take `--genesis`.
    static let genesisPath = Mutex<String?>(nil)
    /// The pins of the genesis the CLI was given, or an error saying how to give one.
    static func pins() throws -> Set<String> {
        let path = genesisPath.withLock { $0 } ?? ProcessInfo.processInfo.environment[environmentVariable]
        guard let path, !path.isEmpty else {
            throw CLIError("the node speaks TLS: give --genesis FILE or set \(environmentVariable)=FILE so the CLI can check its certificate against genesis")
        }
        let genesis = try Genesis.load(path: path)
        let pins = Set(genesis.validators.compactMap { $0.tlsKeySHA256?.lowercased() })
        guard !pins.isEmpty else { throw CLIError("\(path) pins no TLS key (tlsKeySHA256) for any validator") }
        return pins
    }

    struct Reply {
        var status: Int
        var body: Data
    }

    /// One HTTP/1.1 exchange over a TLS connection whose certificate key must be one of genesis's pins (checked in
    /// the handshake itself, so nothing is sent to a node that is not the consortium's).
    static func execute(host: String, port: Int, method: HTTPMethod, target: String, headers: [(String, String)],
                        body: Data?, timeout: TimeAmount, responseLimitBytes: Int) async throws -> Reply {
        let pins = try pins()
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates([])
        let context = try NIOSSLContext(configuration: configuration)
        let shown = Mutex<String?>(nil)
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let tls = try NIOSSLClientHandler(context: context, serverHostname: nil) { certificates, promise in
                            guard let leaf = certificates.first, let pin = try? TLSIdentity.pin(leaf) else {
                                return promise.succeed(.failed)
                            }
                            shown.withLock { $0 = pin }
                            promise.succeed(pins.contains(pin) ? .certificateVerified : .failed)
                        }
                        try channel.pipeline.syncOperations.addHandler(tls)
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw CLIError("cannot reach https://\(host):\(port): \(error)", transient: true)
        }
        do {
            return try await withThrowingTaskGroup(of: Reply.self) { group in
                group.addTask {
                    try await channel.executeThenClose { inbound, outbound in
                        var head = HTTPRequestHead(version: .http1_1, method: method, uri: target)
                        head.headers.add(name: "Host", value: "\(host):\(port)")
                        head.headers.add(name: "Connection", value: "close")
                        for (name, value) in headers { head.headers.add(name: name, value: value) }
                        if let body { head.headers.add(name: "Content-Length", value: String(body.count)) }
                        try await outbound.write(.head(head))
                        if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
                        try await outbound.write(.end(nil))
                        var status = 0
                        var collected = ByteBuffer()
                        for try await part in inbound {
                            switch part {
                            case .head(let response):
                                status = Int(response.status.code)
                            case .body(var chunk):
                                guard collected.readableBytes + chunk.readableBytes <= responseLimitBytes else {
                                    throw CLIError("the response from https://\(host):\(port) exceeds \(responseLimitBytes) bytes")
                                }
                                collected.writeBuffer(&chunk)
                            case .end:
                                return Reply(status: status, body: Data(collected.readableBytesView))
                            }
                        }
                        throw CLIError("https://\(host):\(port) closed the connection before the response ended", transient: true)
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .nanoseconds(timeout.nanoseconds))
                    throw CLIError("https://\(host):\(port) did not answer within \(timeout.nanoseconds / 1_000_000_000) s")
                }
                defer { group.cancelAll() }
                guard let reply = try await group.next() else { throw CLIError("no reply") }
                return reply
            }
        } catch let error as CLIError {
            throw error
        } catch {
            if let pin = shown.withLock({ $0 }), !pins.contains(pin) {
                throw CLIError("https://\(host):\(port) presented a TLS key (SHA-256 \(pin)) that genesis does not pin: not a node of this consortium")
            }
            throw CLIError("TLS exchange with https://\(host):\(port) failed: \(error) (a plain-HTTP node? use http://)",
                           transient: true)
        }
    }
}
