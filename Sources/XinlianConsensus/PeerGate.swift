import XinlianCore
import XinlianCrypto

/// What a replica checks of a peer's proposal or vote before it keeps anything of it — the same rules for the node
/// and for the simulator, so that the simulator's hostile validators meet the gate that ships.
///
/// In order: ``Rules/refusal(_:)`` (stateless: a proposal comes from the round's scheduled proposer and keeps
/// within genesis's block limits — a sender that breaks this is disconnected), then ``hasRoom(for:)``: each
/// **slot** (one signer's message of one step in one round of one height) holds at most ``messagesPerSlot``
/// distinct messages, the first and one conflicting one (the evidence of an equivocation). The heights and rounds
/// a signer can reach are bounded by the core's windows, so what one validator can make a replica keep is bounded.
/// An idle replica joins a height only when ``joinable(_:)``: its scheduled proposer proposed, or validators
/// holding more than a third of the power sent messages for it.
public struct PeerGate: Sendable {
    /// The stateless part, shareable with the layer that checks signatures (the node's event pump).
    public struct Rules: Sendable {
        public let chainID: ChainID
        public let validators: ValidatorSet
        public let schedule: ProposerSchedule
        public let parameters: ConsensusParameters

        public init(chainID: ChainID, validators: ValidatorSet, parameters: ConsensusParameters) {
            self.chainID = chainID
            self.validators = validators
            schedule = ProposerSchedule(validators)
            self.parameters = parameters
        }

        /// Why `message` must be refused (and its sender disconnected) before its signature is even checked, or
        /// nil: another chain, a signer outside the validator set, a proposal off its round's schedule or over
        /// genesis's block limits.
        public func refusal(_ message: ConsensusMessage) -> String? {
            let slot = Slot(message)
            let chain = switch message {
            case .proposal(let signed, _): signed.proposal.chainID
            case .vote(let signed): signed.vote.chainID
            }
            guard chain == chainID else { return "message for chain \(chain), not \(chainID)" }
            guard validators.member(slot.signer) != nil else { return "message signed by \(slot.signer), who is not a validator" }
            guard case .proposal(let signed, let block) = message else { return nil }
            let proposal = signed.proposal
            guard proposal.proposer == schedule.proposer(height: proposal.height, round: proposal.round) else {
                return "proposal of \(proposal.proposer) at height \(proposal.height) round \(proposal.round), which it is not scheduled to propose"
            }
            do { try BlockVerifier.checkLimits(block, parameters: parameters) } catch {
                return "proposal at height \(proposal.height) round \(proposal.round): \(error)"
            }
            return nil
        }
    }

    /// One signer's message of one kind in one round of one height.
    public struct Slot: Hashable, Sendable {
        public var height: UInt64
        public var round: UInt32
        /// 0 for a proposal, else the vote kind's raw value.
        public var step: UInt8
        public var signer: ValidatorID

        public init(_ message: ConsensusMessage) {
            switch message {
            case .proposal(let signed, _):
                let proposal = signed.proposal
                (height, round, step, signer) = (proposal.height, proposal.round, 0, proposal.proposer)
            case .vote(let signed):
                let vote = signed.vote
                (height, round, step, signer) = (vote.height, vote.round, vote.kind.rawValue, vote.validator)
            }
        }
    }

    /// A proposal or vote without the block: what identifies it within its slot.
    enum Seen: Hashable, Sendable {
        case proposal(SignedProposal)
        case vote(SignedVote)

        init(_ message: ConsensusMessage) {
            switch message {
            case .proposal(let signed, _): self = .proposal(signed)
            case .vote(let signed): self = .vote(signed)
            }
        }
    }

    /// Distinct messages kept per slot: the first and one conflicting one (the evidence).
    public static let messagesPerSlot = 2
    /// Hard bound on a slot, relevant votes included: a round's relevant values are its own proposals (two at
    /// most) and those later proposals name as their proof-of-lock round.
    public static let slotLimit = 16

    public let rules: Rules
    let validators: ValidatorSet
    var slots: [Slot: [Seen]] = [:]
    var starters: [UInt64: Set<ValidatorID>] = [:]
    var proposedHeights: Set<UInt64> = []

    public init(chainID: ChainID, validators: ValidatorSet, parameters: ConsensusParameters) {
        rules = Rules(chainID: chainID, validators: validators, parameters: parameters)
        self.validators = validators
    }

    /// Whether a peer's proposal or vote can matter to a replica whose next height is `next`: for it (or the two
    /// after, which the core buffers) and, at the height `core` is deciding, for a round the core keeps. A message
    /// the core would drop must not take a slot: its later copies (re-gossip, once the core's round moves) would
    /// then be refused as duplicates and the message lost for good.
    public static func isUsable(_ message: ConsensusMessage, next: UInt64, core: ConsensusCore) -> Bool {
        guard message.height >= next, message.height <= next + ConsensusCore.futureHeightsLimit else { return false }
        let round = switch message {
        case .proposal(let signed, _): signed.proposal.round
        case .vote(let signed): signed.vote.round
        }
        guard core.phase == .running, message.height == core.height else {
            return round <= ConsensusCore.futureRoundsLimit
        }
        return UInt64(round) + UInt64(ConsensusCore.retainedPastRounds) >= UInt64(core.round)
            && UInt64(round) <= UInt64(core.round) + UInt64(ConsensusCore.futureRoundsLimit)
    }

    /// Whether `message` is new and its slot has room: room for ``messagesPerSlot`` messages of any kind, and
    /// beyond that for votes `core` would still keep (``ConsensusCore/isRelevant(_:)``: for nothing, or for a
    /// value proposed in that round). A Byzantine validator showing different votes to different replicas can
    /// thus not crowd its one vote that matters out with votes for random hashes, which would let honest
    /// replicas see different polkas and lock apart for good (the simulator's `voteFlooder` found this). The
    /// relevant values of a round are bounded by its proposals (two at most, from its scheduled proposer), so
    /// a slot stays bounded.
    ///
    /// A message taken before but not kept by the core (a vote buffered for a later height behind a conflicting
    /// one, a conflicting vote that did not matter then) is let through again once it has become relevant; what
    /// the core keeps is never fed twice.
    public func hasRoom(for message: ConsensusMessage, core: ConsensusCore?) -> Bool {
        if let core, core.holds(message) { return false }
        var relevant = false
        if case .vote(let signed) = message, let core { relevant = core.isRelevant(signed) }
        let held = slots[Slot(message)] ?? []
        if held.contains(Seen(message)) { return relevant }
        guard held.count < Self.slotLimit else { return false }
        return held.count < Self.messagesPerSlot || relevant
    }

    /// Whether `message` itself was already taken (a duplicate, as opposed to a slot that is full).
    public func holds(_ message: ConsensusMessage) -> Bool {
        slots[Slot(message)]?.contains(Seen(message)) == true
    }

    /// Records `message` in its slot (once it was fed to the core, or is held for a height not yet joined, or is
    /// replayed from the journal), and its signer as one who has started that height.
    public mutating func take(_ message: ConsensusMessage) {
        let seen = Seen(message)
        let slot = Slot(message)
        if slots[slot]?.contains(seen) != true { slots[slot, default: []].append(seen) }
        starters[slot.height, default: []].insert(slot.signer)
        // Only a round-0 proposal that carries transactions counts as a height's scheduled start: a validator is
        // scheduled in some round of nearly every height, so any later-round proposal (or an empty one) would
        // let one member make idle replicas decide empty heights at will.
        if case .proposal(let signed, let block) = message, signed.proposal.round == 0, !block.transactions.isEmpty {
            proposedHeights.insert(slot.height)
        }
    }

    /// Validators whose messages for `height` were taken.
    public func starters(of height: UInt64) -> Set<ValidatorID> { starters[height] ?? [] }

    /// Whether an idle replica joins `height`: on a round-0 proposal with transactions from its scheduled proposer
    /// (the only proposals taken), or on messages from more than a third of the voting power — at least one honest validator. One
    /// Byzantine validator's vote alone cannot make idle replicas decide an empty height.
    public func joinable(_ height: UInt64) -> Bool {
        proposedHeights.contains(height) || validators.exceedsOneThird(validators.power(of: starters[height] ?? []))
    }

    /// Forgets what concerns heights up to `committed`.
    public mutating func pruneCommitted(through committed: UInt64) {
        slots = slots.filter { $0.key.height > committed }
        starters = starters.filter { $0.key > committed }
        proposedHeights = proposedHeights.filter { $0 > committed }
    }

    /// Messages currently held in slots (for status and tests).
    public var heldCount: Int { slots.values.reduce(0) { $0 + $1.count } }
}

extension ConsensusEvent {
    /// The event that feeds a peer's message to the core.
    public init(_ message: ConsensusMessage) {
        switch message {
        case .proposal(let signed, let block): self = .proposal(signed, block)
        case .vote(let signed): self = .vote(signed)
        }
    }
}

extension ConsensusMessage {
    /// The peer message an event carries, if it carries one.
    public init?(_ event: ConsensusEvent) {
        switch event {
        case .proposal(let signed, let block): self = .proposal(signed, block)
        case .vote(let signed): self = .vote(signed)
        default: return nil
        }
    }
}
