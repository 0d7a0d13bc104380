import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import XinlianCore
import XinlianCredit
import XinlianCrypto
import XinlianNode

/// Output format of `xinlian report`.
enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case json, text
}

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch an enterprise's credit report as an institution (the query is recorded on the ledger).",
        discussion: Help.paragraphs(
            "Signs a queryRecord (requester = the key's institution, the enterprise, the purpose, the consent, the report "
                + "height) and sends it in the X-Xinlian-Query header. The report goes to standard output; the id of the "
                + "query record, and what --verify found, to standard error.",
            "Consent purposes need --consent, the id of the consentGranted transaction your institution recorded; "
                + "supervision (regulators) and audit (auditors) need none. A refused query exits non-zero and prints "
                + "the error code.",
            "--verify asks for the proof and checks it from the genesis file: certificates (more than two thirds of the "
                + "voting power), headers, the state proof of the enterprise's record head, the transactions that rebuild "
                + "it, and the report assembled again from them. It prints \"verified complete as of height H\" or what "
                + "failed, and exits non-zero on failure.",
            "--save writes the whole response (report and proof); --from checks a saved response instead of asking a node.",
            Help.example("""
                xinlian report 91330106MA27XY123U --node http://127.0.0.1:8600 \\
                  --key .cluster/institutions/regulator.key --purpose supervision \\
                  --format text --verify --genesis .cluster/genesis.json
                xinlian report 91330106MA27XY123U --node http://127.0.0.1:8600 \\
                  --key .cluster/institutions/bank-a.key --purpose loanApplication \\
                  --consent <consentGranted transaction id, 64 hex digits>
                """, title: "Examples")))

    @Argument(help: "The enterprise's USCC.") var uscc: String
    @Option(help: "Node API URL.") var node: String = "http://127.0.0.1:8600"
    @Option(help: "Institution key file.") var key: String
    @Option(help: "Query purpose.") var purpose: QueryPurpose
    @Option(help: "Id of the consentGranted transaction the query relies on.") var consent: String?
    @Option(help: "Report as of this height (default: the node's committed height).") var height: UInt64?
    @Option(help: "Output format.") var format: ReportFormat = .json
    @Flag(help: "Ask for the proof and verify the report from genesis.") var verify = false
    @Option(help: "Genesis file (for --verify).") var genesis: String?
    @Option(help: "Write the whole response (report, query record id, proof) to this file.") var save: String?
    @Option(help: "Verify a response saved with --save instead of querying a node (needs --verify).") var from: String?

    func run() async throws {
        try await reportingErrors {
            let consortium = try genesis.map { try Consortium(try Genesis.load(path: $0)) }
            guard !verify || consortium != nil else { throw CLIError("--verify needs --genesis FILE") }
            let response: ReportResponse
            if let from {
                guard verify else { throw CLIError("--from needs --verify") }
                response = try JSONDecoder().decode(ReportResponse.self, from: Data(contentsOf: URL(fileURLWithPath: from)))
            } else {
                response = try await fetch()
            }
            if let save {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                // A report is personal credit data: readable by its owner only, from the first byte.
                try writePrivateFile(save, try encoder.encode(response))
            }
            // Written unbuffered and ending with a newline (print's buffer is flushed only at exit when standard output
            // is a pipe or a file), so the report comes whole, before the query-record line on standard error, however
            // the two streams are joined.
            switch format {
            case .json: FileHandle.standardOutput.write(Data((try jsonText(response.report) + "\n").utf8))
            case .text: FileHandle.standardOutput.write(Data(ReportText.render(response.report).utf8))
            }
            FileHandle.standardError.write(Data("query record \(response.queryRecord.hex)\n".utf8))
            guard verify, let consortium else { return }
            guard let proof = response.proof else { throw CLIError("verification failed: the response carries no proof") }
            do {
                try ReportVerifier.verify(response.report, proof: proof, consortium: consortium)
            } catch {
                throw CLIError("verification failed: \(error)")
            }
            FileHandle.standardError.write(Data("verified complete as of height \(response.report.asOf.height)\n".utf8))
        }
    }

    private func fetch() async throws -> ReportResponse {
        let subject = try USCC(uscc)
        let consentID = try consent.map { text -> Hash32 in
            guard let id = Hash32(hex: text.lowercased()) else { throw CLIError("--consent must be 64 hex digits") }
            return id
        }
        let keyFile = try KeyFile.load(path: key)
        let client = NodeClient(node)
        let status = try await client.get("/v1/status", as: NodeStatus.self)
        let record = QueryRecord(institution: keyFile.owner, purpose: purpose, consent: consentID,
                                 reportHeight: height ?? status.height)
        let body = TransactionBody(chainID: try Name(status.chainId), kind: .queryRecord, reporter: keyFile.owner,
                                   subject: subject, timeMs: nowMs(), nonce: UInt64.random(in: 0...UInt64.max),
                                   payload: try Payload.canonicalize(record.jsonValue))
        let query = try Transaction.sign(body, with: try keyFile.signingKey())
        return try await client.get(
            "/v1/enterprises/\(subject.code)/report?purpose=\(purpose.rawValue)\(verify ? "&proof=true" : "")",
            as: ReportResponse.self, timeout: .seconds(60),
            headers: [(ReportRoutes.queryHeader, Data(query.canonicalBytes).base64EncodedString())])
    }
}

/// A readable summary of a report.
enum ReportText {
    static func money(_ value: Money?) -> String {
        guard let value else { return "-" }
        let scale: Int64 = value.currency == .jpy ? 1 : 100
        let whole = value.minor / scale
        let fraction = scale == 1 ? "" : String(format: ".%02lld", abs(value.minor % scale))
        return "\(whole)\(fraction) \(value.currency.rawValue)"
    }

    static func render(_ report: CreditReport) -> String {
        var lines: [String] = []
        let info = report.basicInfo.current
        // Personal fields (a representative's name; a sole proprietorship's name and address) may be erased.
        let personal = report.basicInfo.personalData
        let missing = switch personal?.state {
        case .erased?: "[personal data erased on \(personal?.erasedOn.map(\.description) ?? "?")\(personal?.order.map { " by order \($0.hex)" } ?? "")]"
        case .unavailable?: "[personal data not held by this node]"
        default: "[not stated]"
        }
        lines.append("Credit report for \(report.subject)\(info.map { " — \($0.name ?? missing)" } ?? "")")
        lines.append("As of height \(report.asOf.height), block \(report.asOf.blockHash.hex), \(Timestamps.iso8601(report.asOf.time))")
        if let info {
            lines.append("Basic information: \(info.legalForm.rawValue), representative \(info.legalRepresentative ?? missing), "
                + "capital \(money(info.registeredCapital)), established \(info.establishedOn), industry \(info.industry)")
            lines.append("  \(info.address ?? missing)")
        } else {
            lines.append("Basic information: none recorded")
        }
        lines.append("Operating status: \(report.operatingStatus.current.map { "\($0.status.rawValue) since \($0.effectiveOn)" } ?? "none recorded")")
        lines.append("Facilities (\(report.facilities.count)):")
        for facility in report.facilities {
            lines.append("  \(facility.reporter) \(facility.facilityId): \(facility.type?.rawValue ?? "?") \(money(facility.amount)), "
                + "\(facility.status.rawValue), \(facility.classification?.rawValue ?? "?"), balance \(money(facility.balance))"
                + (facility.maxOverdueDays > 0 ? ", max overdue \(facility.maxOverdueDays) days" : "")
                + (facility.disputed ? " [disputed]" : "") + (facility.withdrawn ? " [withdrawn]" : ""))
        }
        lines.append("Overdue and default records (\(report.overdue.count)):")
        for record in report.overdue {
            lines.append("  \(record.reporter) \(record.facilityId): from \(record.startedOn)\(record.endedOn.map { " to \($0)" } ?? ", unsettled"), "
                + "\(record.maxOverdueDays) days, \(money(record.maxOverdueAmount))\(record.defaulted ? ", defaulted" : "")")
        }
        lines.append("Collateral (\(report.collateral.count)):")
        for item in report.collateral {
            lines.append("  \(item.reporter) \(item.collateralId): \(item.current.map { "\($0.type.rawValue) \(money($0.value))" } ?? "withdrawn")"
                + (item.released != nil ? ", released" : "") + (item.disputed ? " [disputed]" : ""))
        }
        for (title, items) in [("Guarantees given", report.guarantees.given), ("Guarantees received", report.guarantees.received)] {
            lines.append("\(title) (\(items.count)):")
            for item in items {
                lines.append("  \(item.reporter) \(item.guaranteeId): guarantor \(item.guarantor) for borrower \(item.borrower), "
                    + "\(money(item.current?.amount))" + (item.released != nil ? ", released" : "") + (item.disputed ? " [disputed]" : ""))
            }
        }
        lines.append("Public records (\(report.publicRecords.count)):")
        for item in report.publicRecords {
            lines.append("  \(item.reporter) \(item.recordId): "
                + "\(item.current.map { "\($0.type.rawValue), \($0.status.rawValue), \(money($0.amount))" } ?? "withdrawn")"
                + (item.disputed ? " [disputed]" : ""))
        }
        lines.append("Disputes (\(report.disputes.count)):")
        for dispute in report.disputes {
            lines.append("  \(dispute.tx.hex.prefix(12)) by \(dispute.filedBy) on a \(dispute.disputedKind.rawValue): \(dispute.status.rawValue)")
        }
        lines.append("Query records (\(report.queryRecords.count)):")
        for query in report.queryRecords {
            lines.append("  \(Timestamps.iso8601(query.time)) \(query.institution) for \(query.purpose.rawValue) (report at height \(query.reportHeight))")
        }
        lines.append("Built from \(report.sources.count) transactions.")
        return lines.joined(separator: "\n") + "\n"
    }
}

struct Enterprises: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the enterprises that have records, one USCC per line (regulators only).",
        discussion: Help.paragraphs(
            "Each page is a request signed with the key, and the node serves it to regulators only; --after starts the "
                + "list after a given USCC.",
            Help.example("""
                xinlian enterprises --node http://127.0.0.1:8600 \\
                  --key .cluster/institutions/regulator.key | head -3
                """)))

    @Option(help: "Node API URL.") var node: String = "http://127.0.0.1:8600"
    @Option(help: "Institution key file (a regulator's).") var key: String
    @Option(help: "Start after this USCC.") var after: String = ""
    @Option(help: "Enterprises per request (1...1000).") var pageSize: Int = 1_000

    func run() async throws {
        try await reportingErrors {
            let keyFile = try KeyFile.load(path: key)
            let signingKey = try keyFile.signingKey()
            let client = NodeClient(node)
            let chainID = try Name(try await client.get("/v1/status", as: NodeStatus.self).chainId)
            var cursor: String? = after
            while let current = cursor {
                var target = "/v1/enterprises?limit=\(pageSize)"
                if !current.isEmpty { target += "&after=\(current)" }
                let signed = try SignedRequest.sign(chainID: chainID, institution: keyFile.owner, timeMs: nowMs(), method: "GET",
                                                    target: target, key: signingKey)
                let page = try await client.get(target, as: EnterprisesResponse.self,
                                                headers: [(SignedRequest.headerName, signed.headerValue)])
                for uscc in page.enterprises { print(uscc) }
                cursor = page.next
            }
        }
    }
}

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print deterministic sample transactions (every kind, consents included) as JSON Lines.",
        discussion: Help.paragraphs(
            "One {\"kind\", \"subject\", \"payload\", \"reporter\", \"reporterRole\", \"timeMs\", \"nonce\"} object per "
                + "line, in time order; references to earlier lines are written \"@N\" (line N, from 0), as `xinlian submit` "
                + "reads them.",
            "`reporter` is one of the generator's sample institutions; `xinlian load` maps them onto a testnet's by role.",
            Help.example("xinlian sample --enterprises 3 --seed 7 | head")))

    @Option(help: "Number of enterprises.") var enterprises: Int = 10
    @Option(help: "Seed: the same seed gives the same output.") var seed: UInt64 = 1

    struct Line: Encodable {
        var kind: TransactionKind
        var subject: String
        var payload: JSONValue
        var reporter: String
        var reporterRole: InstitutionRole
        var timeMs: UInt64
        var nonce: UInt64
    }

    func run() throws {
        guard enterprises > 0 else { throw ValidationError("--enterprises must be positive") }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let samples = SampleGenerator(seed: seed).transactions(enterprises: enterprises)
        let placeholders = samples.indices.map { "@\($0)" }
        var output = ""
        for (index, sample) in samples.enumerated() {
            var payload = sample.payload
            if case .object(var fields) = payload {
                for reference in sample.references where placeholders.indices.contains(reference.target) {
                    fields[reference.field] = .string(placeholders[reference.target])
                }
                payload = .object(fields)
            }
            let line = Line(kind: sample.kind, subject: sample.subject.code, payload: payload, reporter: sample.reporter.value,
                            reporterRole: sample.reporterRole, timeMs: sample.timeMs, nonce: UInt64(index))
            output += String(decoding: try encoder.encode(line), as: UTF8.self) + "\n"
            if output.utf8.count > 1 << 20 {
                FileHandle.standardOutput.write(Data(output.utf8))
                output = ""
            }
        }
        FileHandle.standardOutput.write(Data(output.utf8))
    }
}

/// Writes `data` to `path` readable by its owner only: created (or truncated) with mode 0600, and the mode set
/// again before anything is written (an existing file keeps its old mode through truncation).
func writePrivateFile(_ path: String, _ data: Data) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { throw CLIError("cannot write \(path): \(String(cString: strerror(errno)))") }
    let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    guard fchmod(descriptor, 0o600) == 0 else { throw CLIError("cannot restrict \(path): \(String(cString: strerror(errno)))") }
    try handle.write(contentsOf: data)
    try handle.synchronize()
}
