// The sync engine's pure core: the master's FULL/INCREMENTAL decision, reconnect backoff,
// and the master-session and replica state machines as transition tables checked at run
// time. No I/O here: master_session.cc and replica.cc drive these over sockets, and unit
// tests drive them directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/history.h"

namespace possync::sync {

// WriteRequests a slave keeps unanswered on a link (DESIGN.md §9); a master drops a link with
// twice as many.
inline constexpr uint32_t kRequestWindow = 32;
// ... and their bytes: a slave sends another request only while those unanswered and it stay
// within this (one request alone may be larger, up to wire::kMaxMessageBytes); a master drops a
// link that goes past twice this, so what one peer makes it queue is bounded in bytes too.
inline constexpr uint64_t kRequestWindowBytes = uint64_t(32) << 20;

// ---- The sync rule (DESIGN.md §3) ------------------------------------------------------

struct MasterView {
    uint64_t generation = 0;
    uint64_t head = 0;       // newest committed seq
    uint64_t logFirst = 0;   // oldest seq still in the log (0: empty log)
    uint64_t resyncSeq = 0;  // positions before this need FULL (watched set changed)
    // Failover (DESIGN.md §10): the generation history (oldest first; empty: a root, term 0).
    std::vector<store::HistoryRecord> history;
    uint64_t term = 0;
};

struct SlaveView {
    bool resuming = false;  // Hello state RESUMING (else STARTING)
    uint64_t generation = 0;
    uint64_t seq = 0;
};

enum class SyncKind { Full, Incremental };

struct SyncDecision {
    SyncKind kind = SyncKind::Full;
    uint64_t fromSeq = 0;    // INCREMENTAL: first seq to send
    bool related = false;    // the slave's generation is the master's or one of its ancestors
    uint64_t discarded = 0;  // FULL: the slave's changes past the fork it shares with the master
    std::string why;         // for logs and the console
};

// FULL if the slave is STARTING, its generation is unrelated to the master's (neither it nor
// an ancestor it left at or before the fork: store::planResume), it is ahead of the head,
// older than the watched-set cut, or older than the oldest change still in the log;
// INCREMENTAL from seq+1 otherwise.
SyncDecision decideSync(const MasterView& master, const SlaveView& slave);

// ---- Reconnect backoff -----------------------------------------------------------------

// 0.5 s doubling to a cap, with +-20% jitter; reset() after a successful link.
class Backoff final {
public:
    Backoff(uint64_t minMs, uint64_t maxMs, uint64_t seed);
    // The next delay; the base doubles each call up to the cap.
    uint64_t next();
    void reset() { attempt_ = 0; }
    unsigned attempts() const { return attempt_; }

private:
    uint64_t minMs_, maxMs_;
    uint64_t rng_;
    unsigned attempt_ = 0;
};

// ---- Master session state machine ------------------------------------------------------

enum class SessionState {
    AwaitHello,  // link accepted; nothing sent until the slave's Hello
    Full,        // streaming snapshot chunks (then the log from the snapshot's first seq)
    Streaming,   // streaming the change log in order
    Closed,      // link closed (terminal)
};

enum class SessionEvent {
    HelloFull,         // a valid Hello; the rule says FULL
    HelloIncremental,  // a valid Hello; the rule says INCREMENTAL
    Refuse,            // Hello refused (wrong store/version, generation awaiting the operator)
    SnapshotSent,      // last FULL chunk written
    NeedFull,          // log trimmed past the slave, or the watched set changed
    LinkError,         // bad frame, timeout, peer closed, write failed
};

const char* sessionStateName(SessionState s);
const char* sessionEventName(SessionEvent e);
// The next state, or nullopt for an illegal transition (the session then closes the link).
std::optional<SessionState> sessionNext(SessionState s, SessionEvent e);

// ---- Replica (slave) state machine -----------------------------------------------------

enum class ReplicaState {
    Locating,         // asking discovery (or the static address) for the master
    Connecting,       // TCP connect in flight
    AwaitWelcome,     // Hello sent
    ReceivingFull,    // FULL chunks go into one open apply transaction
    FullReplay,       // all chunks in; replaying the log up to the snapshot's consistent seq
    Streaming,        // applying INCREMENTAL change models
    Backoff,          // waiting before the next attempt
    WaitingOperator,  // the master's generation differs: data kept until the operator allows
    Stopped,          // shut down (terminal)
};

enum class ReplicaEvent {
    Located,       // a master address is known
    LocateFailed,  // no candidate, or a conflict (two masters)
    Connected,
    ConnectFailed,
    WelcomeFull,
    WelcomeIncremental,
    Refused,             // Welcome refusal or Error from the master
    GenerationMismatch,  // master data replaced and the operator has not allowed it
    LastChunk,           // the snapshot's last chunk applied (replay may follow)
    FullRestart,         // chunk 0 of a new FULL while streaming or during a FULL: start over
    Consistent,          // FULL committed with its position
    LinkLost,            // timeout, peer closed, protocol error, invalid change model
    RetryDue,            // backoff timer fired
    OperatorAccept,      // the operator allowed the new generation
    Resync,              // the operator asked for a FULL sync
    Stop,
};

const char* replicaStateName(ReplicaState s);
const char* replicaEventName(ReplicaEvent e);
std::optional<ReplicaState> replicaNext(ReplicaState s, ReplicaEvent e);

}  // namespace possync::sync
