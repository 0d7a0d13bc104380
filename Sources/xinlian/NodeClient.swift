import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianNode

/// Signs reads as an institution (`X-Xinlian-Request`, `docs/openapi.yaml`).
struct RequestSigner: Sendable {
    let chainID: ChainID
    let institution: InstitutionID
    let key: SigningKey

    /// The header for `GET target` now.
    func header(_ target: String) throws -> (String, String) {
        let signed = try SignedRequest.sign(chainID: chainID, institution: institution, timeMs: nowMs(), method: "GET",
                                            target: target, key: key)
        return (SignedRequest.headerName, signed.headerValue)
    }

    /// Signs as the owner of `keyFile`, for the chain the node at `client` runs.
    static func load(_ keyFile: String, client: NodeClient) async throws -> RequestSigner {
        let file = try KeyFile.load(path: keyFile)
        let chainID = try Name(try await client.get("/v1/status", as: NodeStatus.self).chainId)
        return RequestSigner(chainID: chainID, institution: file.owner, key: try file.signingKey())
    }
}

/// A small client of a node's HTTP API.
struct NodeClient: Sendable {
    static let responseLimitBytes = 64 * 1024 * 1024
    let baseURL: String

    init(_ url: String) {
        baseURL = url.hasSuffix("/") ? String(url.dropLast()) : url
    }

    /// AsyncHTTPClient keeps retrying a refused connection until the request's deadline, so reads that
    /// should fail fast (status probes) pass a short one.
    func get<T: Decodable>(_ path: String, as type: T.Type, timeout: TimeAmount = .seconds(10),
                           headers: [(String, String)] = []) async throws -> T {
        try await send(path, method: .GET, body: nil, as: type, timeout: timeout, headers: headers)
    }

    /// A read signed by `signer` (blocks, transactions, headers).
    func get<T: Decodable>(_ path: String, as type: T.Type, signedBy signer: RequestSigner) async throws -> T {
        try await send(path, method: .GET, body: nil, as: type, timeout: .seconds(10), headers: [try signer.header(path)])
    }

    func post<T: Decodable>(_ path: String, json body: some Encodable, as type: T.Type) async throws -> T {
        try await send(path, method: .POST, body: try JSONEncoder().encode(body), as: type, timeout: .seconds(30))
    }

    private func send<T: Decodable>(_ path: String, method: HTTPMethod, body: Data?, as type: T.Type,
                                    timeout: TimeAmount, headers: [(String, String)] = []) async throws -> T {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let status: Int
        let data: Data
        if let url = URL(string: baseURL + path), url.scheme == "https" {
            var target = url.path.isEmpty ? "/" : url.path
            if let query = url.query { target += "?" + query }
            let reply = try await PinnedTLS.execute(host: url.host ?? "127.0.0.1", port: url.port ?? 443, method: method,
                                                    target: target,
                                                    headers: headers + (body == nil ? [] : [("Content-Type", "application/json")]),
                                                    body: body, timeout: timeout,
                                                    responseLimitBytes: Self.responseLimitBytes)
            (status, data) = (reply.status, reply.body)
        } else {
            let response: HTTPClientResponse
            do {
                response = try await HTTPClient.shared.execute(request, timeout: timeout)
            } catch {
                throw CLIError("cannot reach \(baseURL): \(error)", transient: true)
            }
            let bytes = try await response.body.collect(upTo: Self.responseLimitBytes)
            (status, data) = (Int(response.status.code), Data(bytes.readableBytesView))
        }
        guard (200..<300).contains(status) else {
            if let failure = try? JSONDecoder().decode(APIErrorBody.self, from: data) {
                throw CLIError("\(failure.error.code): \(failure.error.message)", code: failure.error.code)
            }
            throw CLIError("HTTP \(status) from \(baseURL + path)")
        }
        do { return try JSONDecoder().decode(T.self, from: data) } catch {
            throw CLIError("unexpected response from \(baseURL + path): \(error)")
        }
    }
}

/// The JSON a user writes for `xinlian submit`: the CLI fills in reporter, time and nonce, and signs.
///
/// Optional `timeMs` and `nonce` are used as given (so that `xinlian sample` output keeps its ids); otherwise the
/// current time and a random nonce. A reference field (`opening`, `registration`, `issuance`, `corrects`,
/// `disputes`, `dispute`, `consent`) may hold `"@N"`: the id of the input's transaction N (from 0), which must come
/// earlier, so that one input can open a facility and update it, issue a guarantee and release it, and so on.
struct TransactionInput: Codable {
    var kind: TransactionKind
    var subject: String?
    var payload: JSONValue
    var timeMs: UInt64?
    var nonce: UInt64?

    static let referenceFields = ["opening", "registration", "issuance", "corrects", "disputes", "dispute", "consent"]

    func sign(chainID: ChainID, keyFile: KeyFile, key: SigningKey, nowMs: UInt64,
              rng: inout some RandomNumberGenerator, earlier: [Hash32] = []) throws -> Transaction {
        let subjectCode = try subject.map { try USCC($0) }
        guard (subjectCode != nil) == kind.hasSubject else {
            throw CLIError(kind.hasSubject ? "\(kind.rawValue) needs a subject USCC" : "governance takes no subject")
        }
        let body = TransactionBody(chainID: chainID, kind: kind, reporter: keyFile.owner, subject: subjectCode,
                                   timeMs: timeMs ?? nowMs, nonce: nonce ?? UInt64.random(in: 0...UInt64.max, using: &rng),
                                   payload: [])
        // Natural persons' fields (a legal representative, a sole proprietor's name and address) leave the signed
        // payload for personal data, under a fresh random salt (docs/security.md, erasable personal data).
        var saltSource = SystemRandomNumberGenerator()
        return try PersonalFields.sign(body, payload: try Self.resolving(payload, earlier: earlier),
                                       salt: PersonalFields.salt(using: &saltSource), suite: CryptoSuite(key.suite), key: key)
    }

    /// `payload` with each `"@N"` in a reference field replaced by `earlier[N]`.
    static func resolving(_ payload: JSONValue, earlier: [Hash32]) throws -> JSONValue {
        guard case .object(var fields) = payload else { return payload }
        for name in referenceFields {
            guard case .string(let text)? = fields[name], text.hasPrefix("@") else { continue }
            guard let index = Int(text.dropFirst()), earlier.indices.contains(index) else {
                throw CLIError("\(name): \(text) does not name an earlier transaction of this input")
            }
            fields[name] = .string(earlier[index].hex)
        }
        if case .object? = fields["payload"], let restated = fields["payload"] {
            fields["payload"] = try resolving(restated, earlier: earlier)
        }
        return .object(fields)
    }

    /// Signs every input in order, resolving `"@N"` references.
    static func signAll(_ inputs: [TransactionInput], chainID: ChainID, keyFile: KeyFile, key: SigningKey,
                        suite: CryptoSuite, nowMs: UInt64) throws -> [Transaction] {
        var rng = SystemRandomNumberGenerator()
        var ids: [Hash32] = []
        var result: [Transaction] = []
        for input in inputs {
            let transaction = try input.sign(chainID: chainID, keyFile: keyFile, key: key, nowMs: nowMs, rng: &rng, earlier: ids)
            ids.append(transaction.id(suite))
            result.append(transaction)
        }
        return result
    }

    /// Reads one object (which may span lines), a JSON array, or JSON Lines. A refusal names the line or element and
    /// the field, and for an unknown kind lists the kinds.
    static func parse(_ data: Data) throws -> [TransactionInput] {
        let decoder = JSONDecoder()
        let result: [TransactionInput]
        if let document = try? JSONSerialization.jsonObject(with: data) {
            // One JSON document: an array of inputs, or one input.
            do {
                result = document is [Any] ? try decoder.decode([TransactionInput].self, from: data)
                    : [try decoder.decode(TransactionInput.self, from: data)]
            } catch let error as Swift.DecodingError {
                throw CLIError("not a transaction {\"kind\", \"subject\", \"payload\"}: \(JSONFile.describe(error))")
            }
        } else {
            var lines: [TransactionInput] = []
            let text = String(decoding: data, as: UTF8.self)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty { continue }
                do {
                    lines.append(try decoder.decode(TransactionInput.self, from: Data(trimmed.utf8)))
                } catch let error as Swift.DecodingError {
                    throw CLIError("line \(number + 1): not a transaction {\"kind\", \"subject\", \"payload\"}: "
                        + JSONFile.describe(error))
                }
            }
            result = lines
        }
        guard !result.isEmpty else { throw CLIError("no transactions in input") }
        return result
    }
}

func nowMs() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }
