import ArgumentParser
import Foundation
import XinlianNode

/// `xinlian peers`: the operator API's view of peer links, and cutting or healing one.
struct Peers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show, cut or heal a node's peer links through its loopback operator API (adminListen).",
        discussion: Help.paragraphs(
            "Without --cut or --heal, prints the connected and the cut peers. A cut link is dropped and refused in both "
                + "directions until healed; for fault-injection tests.",
            Help.example("""
                xinlian peers --admin http://127.0.0.1:8700
                xinlian peers --admin http://127.0.0.1:8700 --cut node2
                xinlian peers --admin http://127.0.0.1:8700 --heal node2
                """, title: "Examples")))

    @Option(help: "The node's operator API URL (its adminListen).") var admin: String
    @Option(help: "Validator id of the peer to cut off.") var cut: String?
    @Option(help: "Validator id of the peer to reconnect.") var heal: String?

    struct PeersBody: Codable {
        var connected: [String]
        var cut: [String]
    }

    struct Empty: Codable {}

    func run() async throws {
        try await reportingErrors {
            let client = NodeClient(admin)
            let body: PeersBody = if let cut {
                try await client.post("/admin/peers/\(cut)/cut", json: Empty(), as: PeersBody.self)
            } else if let heal {
                try await client.post("/admin/peers/\(heal)/heal", json: Empty(), as: PeersBody.self)
            } else {
                try await client.get("/admin/peers", as: PeersBody.self)
            }
            print("connected: \(body.connected.joined(separator: " "))")
            print("cut: \(body.cut.joined(separator: " "))")
        }
    }
}
