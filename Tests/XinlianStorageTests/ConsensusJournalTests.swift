import Foundation
import Testing
@testable import XinlianStorage

/// The consensus journal after failed writes: a validator's own votes written after a failure must survive a
/// reopen (issue 8, attack 6: a partial frame left by a failed write made the reopen cut everything after it).
@Suite("Consensus journal under write failures")
struct ConsensusJournalTests {
    static func temporaryPath() throws -> (directory: String, path: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xinlian-journal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return (directory, directory + "/consensus.journal")
    }

    @Test func aFailedWriteLeavesNoPartialFrameAndLaterRecordsSurviveAReopen() throws {
        let (directory, path) = try Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (journal, _) = try ConsensusJournal.open(path: path, recordLimit: 1_024)
        try journal.append([1, 1, 1], sync: true)
        journal.injectedPartialWriteBytes = 5
        #expect(throws: StorageError.self) { try journal.append([2, 2, 2, 2, 2, 2, 2, 2], sync: true) }
        #expect(journal.sizeBytes == 8 + 3)
        // The node's own vote, written after the failure, must not be lost.
        try journal.append([3, 3], sync: true)
        journal.close()
        let (reopened, records) = try ConsensusJournal.open(path: path, recordLimit: 1_024)
        defer { reopened.close() }
        #expect(records == [[1, 1, 1], [3, 3]])
    }

    @Test func aFailedWriteThatCannotBeUndoneRefusesEveryLaterWrite() throws {
        let (directory, path) = try Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (journal, _) = try ConsensusJournal.open(path: path, recordLimit: 1_024)
        try journal.append([1], sync: true)
        journal.injectedPartialWriteBytes = 6
        journal.injectedTruncateFailure = true
        #expect(throws: StorageError.self) { try journal.append([2, 2, 2, 2], sync: false) }
        #expect(journal.poisoned != nil)
        #expect(throws: StorageError.self) { try journal.append([3], sync: true) }
        #expect(throws: StorageError.self) { try journal.reset() }
        journal.close()
        // The reopen cuts the partial frame and keeps what came before it.
        let (reopened, records) = try ConsensusJournal.open(path: path, recordLimit: 1_024)
        defer { reopened.close() }
        #expect(records == [[1]])
        #expect(reopened.sizeBytes == 9)
    }

    @Test func framesOverTheRecordLimitOrWithABadChecksumEndTheScan() throws {
        var bytes = SegmentLayout.frame([7, 7]) + SegmentLayout.frame([8])
        #expect(ConsensusJournal.scan(bytes, recordLimit: 16).records == [[7, 7], [8]])
        #expect(ConsensusJournal.scan(bytes, recordLimit: 1).records.isEmpty)
        bytes[bytes.count - 1] ^= 0xFF
        let damaged = ConsensusJournal.scan(bytes, recordLimit: 16)
        #expect(damaged.records == [[7, 7]])
        #expect(damaged.end == 10)
        // A length field of 0xFFFFFFFF must not trap or allocate.
        #expect(ConsensusJournal.scan([0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 1], recordLimit: Int.max).records.isEmpty)
    }
}
