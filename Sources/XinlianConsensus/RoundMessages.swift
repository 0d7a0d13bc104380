import XinlianCore
import XinlianCrypto

/// Votes of one kind in one round: the first vote of each validator, the conflicting votes of equivocators
/// for values that matter (nil, or a block some held proposal names for this round), and the power behind
/// each value.
///
/// Counting an equivocator's vote for every value it signed is safe: two quorums for different values still
/// intersect in more than a third of the power, so in an honest validator, which never signs both. It is
/// needed for liveness: an honest node may have locked on a quorum that includes one of those votes, and the
/// others must be able to see the same quorum when it is gossiped to them.
struct VoteTally: Sendable {
    private(set) var votes: [ValidatorID: SignedVote] = [:]
    private(set) var conflictingVotes: [ValidatorID: [SignedVote]] = [:]
    private(set) var powerByValue: [Hash32?: UInt64] = [:]
    /// Power of the validators that voted at all, each counted once.
    private(set) var totalPower: UInt64 = 0
    /// Validators already reported for a conflicting vote here: reported once.
    var reported: Set<ValidatorID> = []

    func holds(_ vote: Vote) -> Bool {
        votes[vote.validator]?.vote == vote || conflictingVotes[vote.validator]?.contains { $0.vote == vote } == true
    }

    mutating func add(_ signed: SignedVote, power: UInt64) {
        votes[signed.vote.validator] = signed
        powerByValue[signed.vote.blockHash, default: 0] += power
        totalPower += power
    }

    /// Counts an equivocator's vote for one more value (the caller checked it is a new value that matters).
    mutating func addConflicting(_ signed: SignedVote, power: UInt64) {
        conflictingVotes[signed.vote.validator, default: []].append(signed)
        powerByValue[signed.vote.blockHash, default: 0] += power
    }

    func power(for value: Hash32?) -> UInt64 { powerByValue[value] ?? 0 }

    /// Every held vote, ordered by validator, first votes before conflicting ones.
    var allVotes: [SignedVote] {
        votes.keys.sorted().flatMap { id in [votes[id]].compactMap { $0 } + (conflictingVotes[id] ?? []) }
    }

    /// The block hash (not nil) holding a quorum, smallest first if several do.
    func quorumBlockHash(_ validators: ValidatorSet) -> Hash32? {
        powerByValue.compactMap { entry -> Hash32? in
            guard let hash = entry.key, validators.isQuorum(entry.value) else { return nil }
            return hash
        }.min()
    }

    /// The signatures of every vote for `hash` (one per validator), as a certificate wants them.
    func signatures(for hash: Hash32) -> [CommitSignature] {
        allVotes.filter { $0.vote.blockHash == hash }
            .map { CommitSignature(validator: $0.vote.validator, signature: $0.signature) }
    }
}

/// Everything the core holds about one round of the current height.
struct RoundMessages: Sendable {
    /// The first proposal from the round's proposer, then at most one conflicting one.
    var proposals: [SignedProposal] = []
    var prevotes = VoteTally()
    var precommits = VoteTally()

    subscript(kind: VoteKind) -> VoteTally {
        get { kind == .prevote ? prevotes : precommits }
        set {
            if kind == .prevote { prevotes = newValue } else { precommits = newValue }
        }
    }

    /// Validators that sent anything in this round.
    var participants: Set<ValidatorID> {
        var ids = Set(prevotes.votes.keys).union(precommits.votes.keys)
        for proposal in proposals { ids.insert(proposal.proposal.proposer) }
        return ids
    }
}

/// Identifies one buffered message for a future height, so each slot is kept once.
struct BufferKey: Hashable, Sendable, Comparable {
    var round: UInt32
    /// 0 proposal, 1 prevote, 2 precommit.
    var slot: UInt8
    var validator: ValidatorID

    static func < (lhs: BufferKey, rhs: BufferKey) -> Bool {
        (lhs.round, lhs.slot, lhs.validator) < (rhs.round, rhs.slot, rhs.validator)
    }
}

/// A block the core holds on to across rounds (the paper's lockedValue/validValue with its round).
struct RoundValue: Sendable, Hashable {
    var block: Block
    var hash: Hash32
    var round: UInt32
}

/// Rules of Algorithm 1 that fire at most once per round.
struct Trigger: Hashable, Sendable {
    enum Rule: UInt8, Sendable { case prevoteTimeout, lock, precommitTimeout }
    var rule: Rule
    var round: UInt32
}

/// What the core is bound to for the current height.
struct HeightContext: Sendable {
    var validators: ValidatorSet
    var schedule: ProposerSchedule
    var previousBlockHash: Hash32
}
