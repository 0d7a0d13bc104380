import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianNode

/// Issue 9: what an unauthenticated caller can make the node do is budgeted per client address, before any
/// signature of its is checked; proofs without the payload are for every member; `/metrics` can leave the API.
@Suite("Client budgets, payload-less proofs, metrics")
struct AddressBudgetTests {
    @Test func failedAuthenticationsAreBudgetedPerAddress() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        try await node.commit([try node.registration()])
        var limits = APILimits()
        limits.failedAuthenticationsPerSecond = 0.001
        limits.failedAuthenticationBurst = 3
        let api = node.api(limits)
        let app = Application(router: api.router())
        try await app.test(.live) { client in
            var offset: UInt64 = 0
            func read(_ key: SigningKey?) async throws -> TestResponse {
                offset += 1
                let headers = try signedRead("/v1/headers/1", as: "bank-b", key: key, chainID: node.consortium.chainID,
                                             timeMs: node.clock.ms + offset)
                return try await client.execute(uri: "/v1/headers/1", method: .get, headers: headers, body: nil)
            }
            let stranger = CryptoSuite(.ed25519SHA256).generateSigningKey()
            // Three forged signatures spend the address's burst; each is checked and refused.
            for _ in 0..<3 {
                let response = try await read(stranger)
                #expect(response.status == .unauthorized)
                #expect(try errorCode(response) == "bad_signature")
            }
            // The fourth is refused before its signature is looked at, and so is a genuine one from the same address.
            let refused = try await read(stranger)
            #expect(refused.status == .tooManyRequests)
            #expect(try errorCode(refused) == "address_rate_limited")
            #expect(refused.headers[.retryAfter] != nil)
            #expect(try errorCode(try await read(node.keys["bank-b"])) == "address_rate_limited")
            // Another institution's clients at the same address are not locked out by what was sent as bank-b.
            offset += 1
            let other = try signedRead("/v1/headers/1", as: "registry", key: node.keys["registry"], chainID: node.consortium.chainID,
                                       timeMs: node.clock.ms + offset)
            #expect(try await client.execute(uri: "/v1/headers/1", method: .get, headers: other, body: nil).status == .ok)
        }
        // Successful reads spend nothing of the address's budget.
        let fresh = API(engine: node.engine, limits: limits)
        let again = Application(router: fresh.router())
        try await again.test(.live) { client in
            for offset in UInt64(1)...6 {
                let headers = try signedRead("/v1/headers/1", as: "bank-b", key: node.keys["bank-b"], chainID: node.consortium.chainID,
                                             timeMs: NodeEngine.wallClockMs() + offset)
                let response = try await client.execute(uri: "/v1/headers/1", method: .get, headers: headers, body: nil)
                #expect(response.status == .ok)
            }
        }
    }

    /// Runs `body` against a node whose budget of failed signatures is 2 per client, refilling almost never, with
    /// `forged(forwarded)`: a read signed by a key genesis does not hold, sent with that `X-Forwarded-For`, giving
    /// the error code.
    static func withForgedReads(trustedProxies: [String],
                                _ body: @Sendable (_ forged: (String) async throws -> String) async throws -> Void) async throws {
        let node = try ReportNode()
        defer { node.remove() }
        try await node.commit([try node.registration()])
        var limits = APILimits()
        limits.failedAuthenticationsPerSecond = 0.001
        limits.failedAuthenticationBurst = 2
        limits.trustedProxies = trustedProxies
        let api = node.api(limits)
        let stranger = CryptoSuite(.ed25519SHA256).generateSigningKey()
        try await Application(router: api.router()).test(.live) { client in
            var offset: UInt64 = 0
            try await body { forwarded in
                offset += 1
                var headers = try signedRead("/v1/headers/1", as: "bank-b", key: stranger, chainID: node.consortium.chainID,
                                             timeMs: node.clock.ms + offset)
                headers[HTTPField.Name("X-Forwarded-For")!] = forwarded
                return try errorCode(try await client.execute(uri: "/v1/headers/1", method: .get, headers: headers, body: nil))
            }
        }
    }

    /// Behind a trusted reverse proxy each client is budgeted by the address the proxy forwards; from anyone else
    /// `X-Forwarded-For` is ignored, so a forger cannot take a fresh budget per header it makes up.
    @Test(arguments: [true, false])
    func forwardedAddressesCountOnlyFromTrustedProxies(trusted: Bool) async throws {
        try await Self.withForgedReads(trustedProxies: trusted ? ["127.0.0.1", "::1"] : []) { forged in
            var codes: [String] = []
            for _ in 0..<3 { codes.append(try await forged("198.51.100.1")) }
            #expect(codes == ["bad_signature", "bad_signature", "address_rate_limited"])
            // Another forwarded client: its own budget behind a trusted proxy, the same socket's otherwise.
            let other = try await forged("203.0.113.9, 198.51.100.2")
            #expect(other == (trusted ? "bad_signature" : "address_rate_limited"))
        }
    }

    /// A site with an IPv6 /48 holds 65,536 /64s: each /64 is one client, and all of them together get the budget of
    /// sixteen clients, not 65,536 fresh ones; another /48 is untouched.
    @Test func anIPv6SiteSharesOneBudgetAcrossItsPrefixes() async throws {
        try await Self.withForgedReads(trustedProxies: ["127.0.0.1", "::1"]) { forged in
            // One failure from each of 40 /64s of one /48: the /48's share of 2 × 16 = 32 failures, then refused.
            var codes: [String] = []
            for n in 0..<40 { codes.append(try await forged("2001:db8:7:\(String(n, radix: 16))::1")) }
            #expect(codes.prefix(32).allSatisfy { $0 == "bad_signature" }, "\(codes)")
            #expect(codes.dropFirst(32).allSatisfy { $0 == "address_rate_limited" }, "\(codes)")
            #expect(try await forged("2001:db8:8:1::1") == "bad_signature", "another /48 has its own budget")
        }
    }

    @Test func staleRequestsAreRefusedBeforeTheirSignatureIsChecked() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        let app = Application(router: node.api.router())
        let stranger = CryptoSuite(.ed25519SHA256).generateSigningKey()
        let stale = try signedRead("/v1/headers/1", as: "bank-b", key: stranger, chainID: node.consortium.chainID,
                                   timeMs: node.clock.ms - NodeEngine.clockSkewLimitMs - 1)
        let response = try await app.test(.router) { client in
            try await client.execute(uri: "/v1/headers/1", method: .get, headers: stale, body: nil)
        }
        #expect(try errorCode(response) == "request_not_fresh")
    }

    @Test func addressBucketsAreBoundedAndIPv6IsKeyedByPrefix() throws {
        let limiter = RateLimiter<ClientAddress>(rate: 0, burst: 2, keyLimit: 8)
        for n in 0..<100 { limiter.spend(ClientAddress(literal: "10.0.0.\(n)"), cost: 1, nowMs: UInt64(n)) }
        #expect(limiter.keyCount <= 8)
        // The most recent spenders are still remembered.
        #expect(limiter.wait(ClientAddress(literal: "10.0.0.99"), cost: 2, nowMs: 100) != nil)
        let a = try #require(ClientAddress(try SocketAddress(ipAddress: "2001:db8:1:2:aaaa::1", port: 1)))
        let b = try #require(ClientAddress(try SocketAddress(ipAddress: "2001:db8:1:2:bbbb::7", port: 2)))
        let c = try #require(ClientAddress(try SocketAddress(ipAddress: "2001:db8:1:3::1", port: 2)))
        #expect(a == b)
        #expect(a != c)
        #expect(a.description == "2001:db8:1:2::/64")
        #expect(a.aggregate == "2001:db8:1::/48" && c.aggregate == a.aggregate)
        let mapped = try #require(ClientAddress(try SocketAddress(ipAddress: "::ffff:192.0.2.7", port: 1)))
        #expect(mapped.description == "192.0.2.7")
    }

    @Test func everyMemberGetsProofsAndOnlyReadersGetThePayload() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        let loan = try node.sign(.facilityOpened, [
            "facilityId": .string("F-1"), "type": .string("loan"),
            "amount": .object(["minor": .integer(100_000), "currency": .string("CNY")]),
            "openedOn": .string(node.today.description), "maturesOn": .string(node.today.adding(days: 365).description),
            "security": .string("unsecured"), "classification": .string("normal"),
        ], by: "bank-b")
        let ids = try await node.commit([try node.registration(), loan])
        let app = Application(router: node.api.router())
        var offset: UInt64 = 0
        func proof(of id: Hash32, as institution: InstitutionID?) async throws -> TestResponse {
            offset += 1
            let target = "/v1/transactions/\(id.hex)/proof"
            let headers = try institution.map {
                try signedRead(target, as: $0, key: node.keys[$0], chainID: node.consortium.chainID, timeMs: node.clock.ms + offset)
            } ?? [:]
            return try await app.test(.router) { client in
                try await client.execute(uri: target, method: .get, headers: headers, body: nil)
            }
        }
        #expect(try errorCode(try await proof(of: ids[1], as: nil)) == "signature_required")
        // Another member: the proof, not the loan.
        let response = try await proof(of: ids[1], as: "registry")
        #expect(response.status == .ok)
        let withheld = try decode(InclusionProof.self, response.body)
        #expect(withheld.transaction == nil)
        #expect(!String(buffer: response.body).contains(Data(loan.canonicalBytes).base64EncodedString()))
        let leafOnly = try withheld.verify(consortium: node.consortium)
        #expect(leafOnly.transaction == nil)
        // Whoever holds the loan's bytes ties it to the leaf; another transaction does not fit.
        #expect(try withheld.verify(consortium: node.consortium, holding: loan).transactionID == ids[1])
        #expect(throws: VerificationError.self) { try withheld.verify(consortium: node.consortium, holding: try node.registration()) }
        // Its reporter and whole-ledger readers get the transaction in the proof.
        for institution: InstitutionID in ["bank-b", "auditor"] {
            let full = try decode(InclusionProof.self, try await proof(of: ids[1], as: institution).body)
            #expect(full.transaction != nil, "\(institution)")
            #expect(try full.verify(consortium: node.consortium).transactionID == ids[1])
        }
        let unknown = try await proof(of: try #require(Hash32(hex: String(repeating: "7", count: 64))), as: "registry")
        #expect(unknown.status == .notFound)
    }

    @Test func metricsCanLeaveThePublicAPI() async throws {
        let node = try ReportNode()
        defer { node.remove() }
        let hidden = API(engine: node.engine, publicMetrics: false)
        let response = try await Application(router: hidden.router()).test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get)
        }
        #expect(response.status == .notFound)
        let admin = AdminAPI(engine: node.engine, peers: NoPeerControl()).router(cutState: CutRegistry())
        // The test client's requests name Host localhost.
        let served = try await Application(router: admin).test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get)
        }
        #expect(served.status == .ok)
        #expect(String(buffer: served.body).contains("xinlian_"))
    }
}
