// Replica: the slave's side of the link: find the master, say where we are, apply what comes.
//
// Implemented in four files: replica.cc (lifecycle, the link, frames, ticks, status),
// replica_apply.cc (Welcome, FULL and INCREMENTAL applied), replica_writes.cc (the outbox
// forwarded) and replica_health.cc (operator decisions, divergence).
//
// Protocol walk (see policy.h for the states):
//   Locating -> Connecting -> AwaitWelcome: Hello says STARTING (never synced) or RESUMING from
//     the position in possync.meta.
//   A Welcome for another generation than the data we hold is not applied silently: unless the
//     operator allowed it (policy `accept`, acceptGeneration()) we keep our data, say why in
//     status(), and look again later (WaitingOperator).
//   FULL: chunk 0 opens ONE apply transaction and empties the snapshot's tables in it; chunks
//     and then the replayed log go into that transaction, which commits with the new position
//     once the largest chunk seq is reached. Readers see the old data set until then; a crash
//     or a lost link aborts it and leaves the old data set and position.
//   Streaming: every change model is verified (FlatBuffers verifier, generation, seq continuity)
//     and applied zero-copy; the models of one socket read commit in one transaction together
//     with the new position, then one Ack goes back.
//   Any failure closes the link (with an Error frame when it still works) and reconnects after a
//   backoff of 0.5 s doubling to a cap, with jitter.
//
// I/O: no socket here. Links come from a Connector, bytes and the link's end arrive through
// LinkEvents (onData/onClosed), time from a Clock and Timers; create(uv::Loop&, ...) wires the
// production ones (sync/uv_link.h), unit tests their own. A dropped link and its frame decoder
// are retired and freed on a later loop turn, never inside their own callbacks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

#include "possync_generated.h"
#include "store/store.h"
#include "sync/clock.h"
#include "sync/link.h"
#include "sync/locator.h"
#include "sync/policy.h"
#include "sync/secure_link.h"
#include "sync/stats.h"
#include "wire/fragment.h"
#include "wire/frame.h"
#include "wire/messages.h"

namespace possync::uv {
class Loop;
}

namespace possync::sync {

struct ReplicaConfig {
    std::string storeId;
    std::string deviceId;
    uint64_t maxFrameBytes = 16u << 20;
    uint64_t heartbeatMs = 1000;
    uint64_t timeoutMs = 5000;
    uint64_t backoffMinMs = 500;
    uint64_t backoffMaxMs = 60000;
    bool acceptNewGeneration = false;  // policy `accept`
    // Bytes queued towards the master before the link is dropped: a slave sends only small
    // frames (Hello, Acks, Pings, Pongs), so a queue this long means the master does not read.
    uint64_t sendBufferBytes = 8u << 20;
    // The master's Welcome must arrive this long after our Hello.
    uint64_t helloTimeoutMs = 3000;
    // A frame once started must complete within timeoutMs + its size / this rate (bytes/s).
    uint64_t minFrameRate = 32u << 10;
    // Divergence (the master's digest at our position differs from ours): the first FULL sync
    // starts at once; while divergences recur, the next one waits at least this long,
    // doubling up to the max (a digest that never matches must not loop FULL syncs).
    uint64_t divergenceFullMinMs = 5 * 60 * 1000;
    uint64_t divergenceFullMaxMs = 60 * 60 * 1000;

    // Disk faults (issue 11): LMDB cannot write with this environment any more (a meta-page
    // write failed: MDB_PANIC on every later transaction) and only reopening it helps. The
    // daemon exits non-zero so that its service manager restarts it. Unset: keep waiting.
    std::function<void(const std::string& why)> onStoreUnusable;
    // Links authenticated and sealed (DESIGN.md §11): the production create() wraps its
    // connector in a SecureConnector. Unset: plaintext links.
    std::optional<LinkSecurity> security;
};

struct ReplicaStatus {
    std::string state;
    std::string master;  // address of the current/last master
    std::string masterDevice;
    std::string foundVia;     // locator source
    uint64_t generation = 0;  // of the data held
    uint64_t position = 0;    // last applied seq
    bool synced = false;
    uint64_t masterHead = 0;  // last head heard from the master
    uint64_t lagChanges = 0;
    uint64_t lagMs = 0;
    uint64_t rttMs = 0;
    uint64_t lastHeardMsAgo = 0;
    uint64_t fullProgressChunks = 0;
    uint64_t fullRecords = 0, fullAnnounced = 0;  // records received in this FULL, and announced
    std::string waitingReason;  // why the replica is not syncing (generation, conflict, refused)
    // Failover (DESIGN.md §10): the term of the master followed, the highest this board has seen,
    // and, after a FULL that replaced changes past a fork, what was discarded (empty: none).
    uint64_t masterTerm = 0;
    uint64_t highestTerm = 0;
    std::string discarded;
    // "diverged: ..." while this slave's digest differed from the master's at the same position
    // and no match has been seen since; for 10 minutes after a match, the same text ending in
    // "; healed: ..." (empty: none known).
    std::string diverged;
    // Trust (DESIGN.md §11): the master's last NOT_PAIRED refusal (this board waits for the
    // operator's `pair accept` there); empty once a Welcome came.
    std::string pairing;
};

class Replica final : public LinkEvents {
public:
    // Over the daemon's loop: TCP links, the loop's clock and timers.
    static Result<std::unique_ptr<Replica>> create(uv::Loop& loop, store::Store& store, Locator& locator,
                                                   ReplicaConfig config);
    // Over injected I/O (all borrowed; they must outlive the Replica).
    static Result<std::unique_ptr<Replica>> create(Clock& clock, Timers& timers, Connector& connector,
                                                   store::Store& store, Locator& locator,
                                                   ReplicaConfig config);
    ~Replica() override;
    Replica(const Replica&) = delete;
    Replica& operator=(const Replica&) = delete;

    void start();
    void stop();
    // Operator: allow the master's new generation we are waiting on (takes a FULL sync).
    Status acceptGeneration();
    // Operator: drop the data's position and take a FULL sync now.
    Status resync();

    ReplicaState state() const { return state_; }
    // The term of the master of the current link (its Welcome; 0 before one), and the highest
    // term of this store this board has seen (possync.meta highest_term_seen, and Welcomes).
    uint64_t masterTerm() const { return masterTerm_; }
    uint64_t highestTerm() const { return highestTerm_; }
    ReplicaStatus status() const;
    Stats& stats() { return stats_; }

    // LinkEvents: bytes from the master; the end of the link; the send queue drained.
    void onData(Bytes data) override;
    void onClosed(Status status) override;
    void onSent() override;

    // Slave writes (DESIGN.md §9): a process queued a request in this board's outbox (the
    // daemon watches DIR/possync.notify): forward what the window allows.
    void outboxChanged();
    // WriteRequests sent on this link and not answered yet.
    size_t requestsInFlight() const { return inFlight_.size(); }
    uint64_t requestBytesInFlight() const { return inFlightBytes_; }

private:
    struct OwnedIo;
    Replica(Clock& clock, Timers& timers, Connector& connector, store::Store& store, Locator& locator,
            ReplicaConfig config);
    void step(ReplicaEvent event);
    void locate();
    void onConnected(std::unique_ptr<Link> link);
    Status onFrame(Bytes payload);
    Status onWelcome(const wire::Welcome* w);
    Status onChangeModel(const wire::ChangeModel* cm);
    Status onFullChunk(const wire::ChangeModel* cm);
    Status onIncremental(const wire::ChangeModel* cm);
    Status commitBatch();
    Status finishFull();
    void linkLost(const std::string& why, wire::ErrorCode code, const char* errorKind);
    void scheduleRetry();
    void onTick();
    // Drops the link when a deadline of its state passed (the Welcome's, the frame under way's).
    void checkDeadlines(uint64_t now);
    bool send(const std::vector<uint8_t>& payload);
    void dropLink();
    void reap();
    // Divergence detection: remembers the master's digest at a position (Welcome, Ping) and,
    // once this slave is at that position with nothing uncommitted, compares it with its own.
    void noteMasterDigest(std::optional<wire::DigestAt> digest);
    void checkDigest();
    void onDiverged(const wire::DigestAt& master, uint64_t ours);
    // Disk faults (issue 11): our own store failed to write (ENOSPC, EIO) or its map is full.
    bool storeFailed(const Error& e);
    void storeRecovered();
    // Slave writes: sends outbox requests after forwardedUpTo_ while the window and the send
    // queue allow (a request over the master's frame limit goes as Fragments, piece by piece).
    void forward();
    Status onWriteResult(const wire::WriteResult* result);
    // Marks this board's requests settled by an applied change model (their origin).
    void noteSettled(const std::vector<uint64_t>& ids);
    // The generation of the master's log entry at `seq` (an ancestor's up to its fork).
    uint64_t generationAt(uint64_t seq) const { return store::generationAt(linkGeneration_, ancestry_, seq); }
    // The position written with a commit (the master's generation), with its lineage on the
    // first commit of a link.
    Status setPosition(store::ApplyTxn& txn, uint64_t seq);
    // INCREMENTAL from a master whose generation continued ours (seq <= its fork): our position
    // is renamed to its generation in one small commit.
    Status adoptGeneration();

    std::unique_ptr<OwnedIo> ownedIo_;  // create(uv::Loop&, ...) only
    Clock& clock_;
    Timers& timers_;
    Connector& connector_;
    store::Store& store_;
    Locator& locator_;
    ReplicaConfig config_;
    Stats stats_;
    Backoff backoff_;
    ReplicaState state_ = ReplicaState::Backoff;
    std::unique_ptr<Timer> retry_;
    std::unique_ptr<Timer> tick_;
    std::unique_ptr<Timer> reaper_;
    std::unique_ptr<PendingLink> connecting_;
    std::unique_ptr<Link> link_;
    std::unique_ptr<wire::FrameDecoder> decoder_;
    wire::Reassembler reassembler_;  // Fragments of a message over our frame limit
    Bytes currentFrame_;             // the verified frame of the change model being handled
    // Dropped inside a callback of theirs: freed by reap() on a later loop turn.
    std::vector<std::unique_ptr<Link>> retiredLinks_;
    std::vector<std::unique_ptr<wire::FrameDecoder>> retiredDecoders_;
    bool everConnected_ = false;

    // What we hold (possync.meta), kept in step with every commit.
    uint64_t generation_ = 0;
    uint64_t position_ = 0;
    bool synced_ = false;
    bool acceptOnce_ = false;     // operator allowed a new generation for the next link
    bool forceStarting_ = false;  // operator asked for a FULL sync

    // The link.
    MasterTarget target_;
    std::string masterDevice_;
    uint64_t linkGeneration_ = 0;  // the master's generation (Welcome)
    // Failover (DESIGN.md §10): the master's ancestry and term (Welcome), the highest term seen.
    std::vector<store::Ancestor> ancestry_;
    uint64_t masterTerm_ = 0;
    uint64_t highestTerm_ = 0;
    bool lineagePending_ = false;  // the master's lineage goes into the next commit in its generation
    std::string discarded_;        // ReplicaStatus::discarded
    uint64_t masterHead_ = 0;
    uint64_t masterPingAtMs_ = 0;  // our monotonic clock when the master's last Ping arrived
    uint64_t lastHeardMs_ = 0;
    uint64_t lastSentMs_ = 0;
    uint64_t helloSentMs_ = 0;
    uint32_t preWelcomeFrames_ = 0;  // frames verified before the Welcome (bounded like the master's)
    uint64_t frameStartMs_ = 0;      // first byte of the frame under way (while framePartial_)
    bool framePartial_ = false;
    uint64_t rttMs_ = 0;
    std::string waitingReason_;
    std::string pairing_;  // ReplicaStatus::pairing
    // Set from a failed apply/commit on our own disk until a commit succeeds again: the
    // waiting reason stays on the console and the backoff grows instead of restarting.
    enum class StoreFault { None, Disk, MapFull } storeFault_ = StoreFault::None;

    // FULL in progress: one open apply transaction.
    std::optional<store::ApplyTxn> full_;
    uint32_t nextChunk_ = 0;
    uint64_t fullFirstSeq_ = 0;    // chunk 0's seq: the replay starts after it
    uint64_t fullTargetSeq_ = 0;   // largest chunk seq: consistent once applied up to it
    uint64_t fullAppliedSeq_ = 0;  // replay progress
    bool lastChunkSeen_ = false;
    uint64_t fullRecords_ = 0;      // records received in this FULL's chunks
    uint64_t fullAnnounced_ = 0;    // chunk 0's snapshot_records (0: not announced)
    uint64_t fullRecordLimit_ = 0;  // refused past it (from chunk 0's snapshot_records; 0: none)

    // Streaming: the models of one socket read, applied in one transaction.
    std::optional<store::ApplyTxn> batch_;
    uint64_t batchSeq_ = 0;

    // Slave writes, per link: the last request id sent, the requests unanswered (true once the
    // change model carrying its origin was applied here), the request being sent as Fragments.
    uint64_t forwardedUpTo_ = 0;
    struct InFlight {
        bool settled = false;
        uint64_t bytes = 0;
    };
    std::map<uint64_t, InFlight> inFlight_;
    uint64_t inFlightBytes_ = 0;  // bounded by kRequestWindowBytes (or one request)
    std::vector<uint8_t> fragmenting_;
    uint64_t fragOffset_ = 0;
    uint32_t masterMaxFrame_ = wire::kDefaultMaxFrameBytes;
    uint64_t heldLogged_ = 0;  // requests of another generation last reported in the log

    // Divergence detection.
    std::optional<wire::DigestAt> masterDigest_;  // not yet compared
    std::string diverged_;                        // the alarm (ReplicaStatus::diverged)
    std::string healed_;                          // the last alarm, once the digests were equal again
    uint64_t healedAtMs_ = 0;
    uint64_t lastDivergenceFullMs_ = 0;  // when a divergence last started a FULL
    bool divergenceFullEver_ = false;
    uint64_t divergenceHoldMs_ = 0;  // the next divergence FULL waits this long after the last
};

}  // namespace possync::sync
