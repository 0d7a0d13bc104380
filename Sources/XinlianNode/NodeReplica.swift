import CoreMetrics
import Foundation
import Logging
import XinlianConsensus
import XinlianCore
import XinlianCrypto
import XinlianNetwork
import XinlianStorage

/// What the engine needs from the peer network (the TCP transport in production, an in-process hub in tests).
public protocol PeerLink: Sendable {
    func broadcast(_ message: WireMessage)
    func send(_ message: WireMessage, to peer: ValidatorID)
    /// Drops the connection and logs `reason`; the peer may come back later.
    func disconnect(_ peer: ValidatorID, reason: String)
}

/// The link of a one-validator consortium: there is nobody to talk to.
public struct NoPeers: PeerLink {
    public init() {}
    public func broadcast(_ message: WireMessage) {}
    public func send(_ message: WireMessage, to peer: ValidatorID) {}
    public func disconnect(_ peer: ValidatorID, reason: String) {}
}

/// The engine's shell around its ``Replica``: real files behind the journal and signer ports, the wall clock,
/// timers as tasks, the peer link, and the replica's notes turned into log lines and metrics.
extension NodeEngine {
    /// Starts the replica over `link` (``NoPeers`` for a one-validator consortium): replays the journal of an
    /// interrupted height, then runs. Blocks are decided from then on, as transactions arrive.
    public func startConsensus(link: any PeerLink, timeouts: TimeoutConfig,
                               maxFrameBytes: Int = WireLimits.defaultMaxFrameBytes) throws {
        guard replica == nil else { return }
        let path = dataDirectory + "/consensus.journal"
        let (journal, records) = try ConsensusJournal.open(
            path: path, byteLimit: Replica.JournalBudgets.standard.journalByteLimit(validators: consortium.validators.members.count),
            recordLimit: JournalEntry.limit)
        var replica = Replica(consortium: consortium, validator: validatorID, timeouts: timeouts, journal: journal,
                              signer: signer, ledger: ledger, clock: WallClock(now: now), maxFrameBytes: maxFrameBytes)
        do { try replica.start(journalRecords: records) } catch {
            journal.close()
            throw StorageError.corrupt(file: path, offset: UInt64(error.record), reason: error.description)
        }
        self.journal = journal
        self.link = link
        self.replica = replica
        perform(self.replica?.takeEffects() ?? [])
    }

    /// Runs `body` on the replica (if started) and carries out its effects.
    func withReplica(_ body: (inout Replica) -> Void) {
        guard var replica = self.replica else { return }
        self.replica = nil
        body(&replica)
        let effects = replica.takeEffects()
        self.replica = replica
        perform(effects)
    }

    // MARK: Inputs

    /// One event from the peer network. Signatures of consensus messages and transactions were checked by the
    /// caller (``PeerEventPump``), which disconnects peers that send bad ones. Returns true for a proposal or vote
    /// that was kept (a later copy of it is a duplicate).
    @discardableResult
    public func handle(_ event: NetworkEvent) -> Bool {
        var kept = false
        switch event {
        case .connected(let peer, let hello):
            withReplica { $0.connected(peer, height: hello.height) }
        case .disconnected(let peer, _):
            withReplica { $0.disconnected(peer) }
        case .message(let peer, let message):
            withReplica { kept = $0.receive(message, from: peer) }
        }
        metrics.peersConnected.record(Int64(replica?.connected.count ?? 0))
        return kept
    }

    /// A timer the replica asked for fired.
    func fire(_ timer: ReplicaTimer) {
        withReplica { $0.fire(timer) }
    }

    /// Disconnects a peer that broke the protocol (see ``PeerEventPump``).
    public func dropPeer(_ peer: ValidatorID, reason: String) {
        metrics.peersDropped.increment()
        logger.warning("dropping peer", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
        link?.disconnect(peer, reason: reason)
    }

    /// Equivocations kept, newest last.
    public var equivocations: [Equivocation] { replica?.evidence ?? [] }

    // MARK: Effects

    private func perform(_ effects: [ReplicaEffect]) {
        for effect in effects {
            switch effect {
            case .send(let message, let peer):
                link?.send(message, to: peer)
            case .broadcast(let message):
                link?.broadcast(message)
            case .disconnect(let peer, let reason):
                dropPeer(peer, reason: reason)
            case .schedule(let timer, let ms):
                if case .consensus(let timeout) = timer { metrics.consensusRound.record(Int64(timeout.round)) }
                schedule(timer, afterMs: ms)
            case .note(let note):
                log(note)
            }
        }
    }

    /// Fires `timer` on this engine after `ms` milliseconds (timers are never cancelled; stale ones do nothing).
    private nonisolated func schedule(_ timer: ReplicaTimer, afterMs ms: UInt64) {
        Task { [weak self] in
            try? await Task.sleep(for: .milliseconds(Int64(clamping: ms)))
            await self?.fire(timer)
        }
    }

    private func log(_ note: ReplicaNote) {
        switch note {
        case .replayed(let height, let entries, let round, let lockedRound):
            logger.info("consensus journal replayed", metadata: [
                "height": "\(height)", "entries": "\(entries)", "round": "\(round)",
                "lockedRound": "\(lockedRound.map(String.init) ?? "none")",
            ])
        case .refused(let culprit, let reason):
            logger.warning("refused a peer's message", metadata: ["culprit": "\(culprit)", "reason": "\(reason)"])
        case .proposalRefused(let proposer, let height, let reason):
            logger.warning("proposed block refused", metadata: [
                "height": "\(height)", "proposer": "\(proposer)", "reason": "\(reason)",
            ])
        case .stale, .signed:
            break
        case .journalBudgetSpent(let height, let signer):
            logger.warning("consensus journal budget spent for this height: further such messages are dropped",
                           metadata: ["height": "\(height)", "signer": "\(signer)"])
        case .journalWriteFailed(let error):
            logger.error("consensus journal write failed; dropping a peer's message", metadata: ["error": "\(error)"])
        case .signRefused(let request, let reason):
            logger.warning("refused to sign", metadata: [
                "height": "\(request.height)", "round": "\(request.round)", "step": "\(request.step)", "reason": "\(reason)",
            ])
        case .evidence(let equivocation):
            metrics.evidence.increment()
            logger.warning("equivocation: a validator signed two conflicting messages",
                           metadata: ["validator": "\(equivocation.validator)"])
        case .committed:
            break
        case .synced(let peer, let count, let height):
            metrics.blocksSynced.increment(by: Int64(count))
            logger.info("synced blocks", metadata: ["peer": "\(peer)", "count": "\(count)", "height": "\(height)"])
        case .syncRequested(let peer, let fromHeight, let count, let peerHeight):
            logger.info("behind a peer: requesting blocks", metadata: [
                "peer": "\(peer)", "from": "\(fromHeight)", "count": "\(count)", "peerHeight": "\(peerHeight)",
            ])
        case .syncUnanswered(let peer):
            logger.warning("block sync request unanswered; asking again", metadata: ["peer": "\(peer)"])
        case .personalDataRequested(let peer, let fromHeight, let count):
            logger.info("committed blocks lack personal data here: asking a peer", metadata: [
                "peer": "\(peer)", "from": "\(fromHeight)", "count": "\(count)",
            ])
        case .personalDataUnanswered(let peer):
            logger.notice("a peer did not answer a request for personal data; another is asked later", metadata: ["peer": "\(peer)"])
        case .personalDataReceived(let peer, let kept):
            metrics.personalDataRepaired.increment(by: Int64(kept))
            if kept == 0 {
                logger.notice("a peer did not give the personal data asked for; another is asked later", metadata: ["peer": "\(peer)"])
            } else {
                logger.info("kept personal data a peer gave", metadata: ["peer": "\(peer)", "transactions": "\(kept)"])
            }
        case .syncFailedHere(let height, let error):
            logger.error("block sync: applying block \(height) failed here", metadata: ["error": "\(error)"])
        case .stalled(let report):
            logger.warning("no progress: this height is undecided; a commit needs precommits from more than two thirds of the voting power", metadata: [
                "height": "\(report.height)", "round": "\(report.round)", "connectedPower": "\(report.connectedPower)",
                "totalPower": "\(report.totalPower)", "peers": "\(report.peers.joined(separator: ","))",
            ])
        case .halted(let reason):
            logger.critical("consensus halted", metadata: ["reason": "\(reason)"])
        }
    }
}

/// The wall clock as the replica's clock.
final class WallClock: ReplicaClock {
    let now: @Sendable () -> UInt64
    init(now: @escaping @Sendable () -> UInt64) { self.now = now }
    var nowMs: UInt64 { now() }
}

extension ConsensusJournal: ReplicaJournal {}

extension SignerState: ReplicaSigner {
    public func sign(_ request: SignRequest) throws -> [UInt8] {
        let step: Step = switch request.step {
        case .propose: .proposal
        case .prevote: .prevote
        case .precommit: .precommit
        }
        do {
            return try sign(request.signingBytes, height: request.height, round: request.round, step: step)
        } catch let refusal as DoubleSignError {
            throw SignerRefusal(refusal.description)
        }
    }
}
