import XinlianCore
import XinlianCrypto

/// One input to the core, as the node's consensus journal (write-ahead log) keeps it.
///
/// The core is deterministic, so feeding a fresh core `start` and then the journalled entries of a height in
/// order rebuilds exactly the state it had (round, step, lock, valid value). That is how a validator that
/// crashed mid-height remembers what it locked on and which votes it sent. `start` is not journalled: the
/// shell knows the height and validator set from the ledger.
///
/// Encoding: `u64 height`, a tag byte, then the tag's fields:
///
/// | tag | entry | fields |
/// |----:|-------|--------|
/// | 1 | proposal from the network | `SignedProposal`, `Block`, the block's personal data (``PersonalSidecars``) |
/// | 2 | vote from the network | `SignedVote` |
/// | 3 | timeout | `u64 height`, `u32 round`, `u8 step` |
/// | 4 | block built | `Block`, its personal data |
/// | 5 | block validated | `hash`, `u8 valid` (0 or 1) |
/// | 6 | own proposal signed | `SignedProposal` |
/// | 7 | own vote signed | `SignedVote` |
public struct JournalEntry: Hashable, Sendable, CanonicalCodable {
    /// The height whose deciding this entry belongs to.
    public var height: UInt64
    public var event: ConsensusEvent

    /// Entries for events that are not journalled (`start`) cannot be built.
    public init?(height: UInt64, event: ConsensusEvent) {
        if case .start = event { return nil }
        self.height = height
        self.event = event
    }

    /// Largest encoded entry: a proposal with its block.
    public static let limit = ConsensusLimits.messageBytes + 16

    public func encode(to encoder: inout CanonicalEncoder) {
        encoder.u64(height)
        switch event {
        case .start:
            encoder.u8(0)  // unreachable (the initialiser refuses start); tag 0 never decodes
        case .proposal(let signed, let block):
            encoder.u8(1)
            signed.encode(to: &encoder)
            block.encode(to: &encoder)
            PersonalSidecars.encode(block.transactions, to: &encoder)
        case .vote(let signed):
            encoder.u8(2)
            signed.encode(to: &encoder)
        case .timeout(let timeout):
            encoder.u8(3)
            encoder.u64(timeout.height)
            encoder.u32(timeout.round)
            encoder.u8(timeout.step.rawValue)
        case .blockBuilt(let block):
            encoder.u8(4)
            block.encode(to: &encoder)
            PersonalSidecars.encode(block.transactions, to: &encoder)
        case .blockValidated(let hash, let valid):
            encoder.u8(5)
            encoder.hash(hash)
            encoder.bool(valid)
        case .signed(.proposal(let signed)):
            encoder.u8(6)
            signed.encode(to: &encoder)
        case .signed(.vote(let signed)):
            encoder.u8(7)
            signed.encode(to: &encoder)
        }
    }

    public init(from decoder: inout CanonicalDecoder) throws(DecodingError) {
        height = try decoder.u64("journal.height")
        let tagAt = decoder.offset
        switch try decoder.u8("journal.tag") {
        case 1:
            let signed = try SignedProposal(from: &decoder)
            var block = try Block(from: &decoder)
            try PersonalSidecars.attach(to: &block.transactions, from: &decoder, field: "journal.personal")
            event = .proposal(signed, block)
        case 2:
            event = .vote(try SignedVote(from: &decoder))
        case 3:
            let height = try decoder.u64("journal.timeout.height")
            let round = try decoder.u32("journal.timeout.round")
            let stepAt = decoder.offset
            guard let step = ConsensusStep(rawValue: try decoder.u8("journal.timeout.step")) else {
                throw decoder.error("invalid_value", "journal.timeout.step", "unknown step", at: stepAt)
            }
            event = .timeout(Timeout(height: height, round: round, step: step))
        case 4:
            var block = try Block(from: &decoder)
            try PersonalSidecars.attach(to: &block.transactions, from: &decoder, field: "journal.personal")
            event = .blockBuilt(block)
        case 5:
            event = .blockValidated(hash: try decoder.hash("journal.hash"), valid: try decoder.bool("journal.valid"))
        case 6:
            event = .signed(.proposal(try SignedProposal(from: &decoder)))
        case 7:
            event = .signed(.vote(try SignedVote(from: &decoder)))
        case let other:
            throw decoder.error("invalid_tag", "journal.tag", "unknown journal entry \(other)", at: tagAt)
        }
    }
}
