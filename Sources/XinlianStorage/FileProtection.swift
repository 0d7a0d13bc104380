import Foundation

/// Who may read a node's data: its own user only. The block log, the index, the consensus journal and the signer
/// state hold every statement and the validator's signing position; they are created `0600` in `0700`
/// directories, and a data directory written with looser modes (an older version, a copied backup) is tightened
/// when the node opens it. Genesis, configurations and certificates may stay readable (`docs/security.md`).
public enum FileProtection {
    public static let fileMode: mode_t = 0o600
    public static let directoryMode: mode_t = 0o700

    /// What a node keeps in its data directory; only these are tightened (a data directory pointed by mistake at
    /// a directory holding other things does not have those changed).
    static let nodeEntries = ["blocks", "index.sqlite", "index.sqlite-wal", "index.sqlite-shm", "consensus.journal",
                              "signer-state.json", "refusals.records", "requests.records", "LOCK", "personal.sqlite",
                              "personal.sqlite-wal", "personal.sqlite-shm"]

    /// Sets `directory`, the node's own entries in it and everything under `blocks/` to the modes above (symbolic
    /// links are left alone).
    public static func restrict(_ directory: String) throws {
        let files = FileManager.default
        try files.setAttributes([.posixPermissions: Int(directoryMode)], ofItemAtPath: directory)
        var paths = nodeEntries.map { directory + "/" + $0 }.filter { files.fileExists(atPath: $0) }
        if let blocks = try? files.contentsOfDirectory(atPath: directory + "/blocks") {
            paths += blocks.map { directory + "/blocks/" + $0 }
        }
        for path in paths {
            let attributes = try files.attributesOfItem(atPath: path)
            switch attributes[.type] as? FileAttributeType {
            case .typeDirectory?:
                try files.setAttributes([.posixPermissions: Int(directoryMode)], ofItemAtPath: path)
            case .typeRegular?:
                try files.setAttributes([.posixPermissions: Int(fileMode)], ofItemAtPath: path)
            default:
                continue
            }
        }
    }
}
