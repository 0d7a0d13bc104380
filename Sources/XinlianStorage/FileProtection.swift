import Foundation

/// Who may read a node's data: its own user only. The block log, the index, the consensus journal and the signer
/// state hold every statement and the validator's signing position; they are created `0600` in `0700`
/// directories, and a data directory written with looser modes (an older version, a copied backup) is tightened
/// when the node opens it. Genesis, configurations and certificates may stay readable (`docs/security.md`).
public enum FileProtection {
    public static let fileMode: mode_t = 0o600
    public static let directoryMode: mode_t = 0o700

    /// Sets `directory` and everything under it to the modes above (symbolic links are left alone).
    public static func restrict(_ directory: String) throws {
        let files = FileManager.default
        try files.setAttributes([.posixPermissions: Int(directoryMode)], ofItemAtPath: directory)
        guard let walker = files.enumerator(atPath: directory) else { return }
        while let relative = walker.nextObject() as? String {
            let path = directory + "/" + relative
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
