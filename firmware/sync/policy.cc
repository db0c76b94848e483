#include "sync/policy.h"

#include <algorithm>

namespace possync::sync {

SyncDecision decideSync(const MasterView& m, const SlaveView& s) {
    store::ResumeView view{m.history, m.generation, m.head, m.logFirst, m.resyncSeq};
    if (view.history.empty()) view.history.push_back(store::HistoryRecord{m.generation, 0, 0, m.term});
    SyncDecision d;
    d.related = store::sharedUpTo(view.history, s.generation).has_value();
    if (!s.resuming) {
        d.why = "slave is starting";
        return d;
    }
    store::ResumePlan p = store::planResume(view, s.generation, s.seq);
    d.kind = p.kind == store::ResumePlan::Incremental ? SyncKind::Incremental : SyncKind::Full;
    d.fromSeq = p.fromSeq;
    d.discarded = p.discarded;
    d.why = p.why;
    return d;
}

Backoff::Backoff(uint64_t minMs, uint64_t maxMs, uint64_t seed)
    : minMs_(std::max<uint64_t>(1, minMs)), maxMs_(std::max(maxMs, minMs)), rng_(seed | 1) {}

uint64_t Backoff::next() {
    uint64_t base = minMs_;
    for (unsigned i = 0; i < attempt_ && base < maxMs_; ++i) base *= 2;
    base = std::min(base, maxMs_);
    if (attempt_ < 64) ++attempt_;
    // xorshift64: jitter in [-20%, +20%] so boards that lost the master together spread out.
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    uint64_t span = base * 2 / 5;
    uint64_t jittered = base - base / 5 + (span ? rng_ % (span + 1) : 0);
    return std::max<uint64_t>(1, jittered);
}

const char* sessionStateName(SessionState s) {
    switch (s) {
        case SessionState::AwaitHello: return "await-hello";
        case SessionState::Full: return "full";
        case SessionState::Streaming: return "streaming";
        case SessionState::Closed: return "closed";
    }
    return "?";
}

const char* sessionEventName(SessionEvent e) {
    switch (e) {
        case SessionEvent::HelloFull: return "hello-full";
        case SessionEvent::HelloIncremental: return "hello-incremental";
        case SessionEvent::Refuse: return "refuse";
        case SessionEvent::SnapshotSent: return "snapshot-sent";
        case SessionEvent::NeedFull: return "need-full";
        case SessionEvent::LinkError: return "link-error";
    }
    return "?";
}

namespace {
template <typename S, typename E>
struct Transition {
    S from;
    E event;
    S to;
};

using ST = SessionState;
using SE = SessionEvent;
constexpr Transition<ST, SE> kSessionTable[] = {
    {ST::AwaitHello, SE::HelloFull, ST::Full},
    {ST::AwaitHello, SE::HelloIncremental, ST::Streaming},
    {ST::AwaitHello, SE::Refuse, ST::Closed},
    {ST::AwaitHello, SE::LinkError, ST::Closed},
    {ST::Full, SE::SnapshotSent, ST::Streaming},
    {ST::Full, SE::NeedFull, ST::Full},  // log trimmed under a long FULL: start over
    {ST::Full, SE::LinkError, ST::Closed},
    {ST::Streaming, SE::NeedFull, ST::Full},
    {ST::Streaming, SE::LinkError, ST::Closed},
};

using RS = ReplicaState;
using RE = ReplicaEvent;
constexpr Transition<RS, RE> kReplicaTable[] = {
    {RS::Locating, RE::Located, RS::Connecting},
    {RS::Locating, RE::LocateFailed, RS::Backoff},
    {RS::Connecting, RE::Connected, RS::AwaitWelcome},
    {RS::Connecting, RE::ConnectFailed, RS::Backoff},
    {RS::AwaitWelcome, RE::WelcomeFull, RS::ReceivingFull},
    {RS::AwaitWelcome, RE::WelcomeIncremental, RS::Streaming},
    {RS::AwaitWelcome, RE::Refused, RS::Backoff},
    {RS::AwaitWelcome, RE::GenerationMismatch, RS::WaitingOperator},
    {RS::AwaitWelcome, RE::LinkLost, RS::Backoff},
    {RS::AwaitWelcome, RE::Resync, RS::Backoff},  // drop the link, reconnect STARTING
    {RS::ReceivingFull, RE::LastChunk, RS::FullReplay},
    {RS::ReceivingFull, RE::Consistent, RS::Streaming},       // nothing to replay
    {RS::ReceivingFull, RE::LinkLost, RS::Backoff},           // the open transaction is aborted
    {RS::ReceivingFull, RE::FullRestart, RS::ReceivingFull},  // aborted; the new FULL begins
    {RS::FullReplay, RE::Consistent, RS::Streaming},
    {RS::FullReplay, RE::LinkLost, RS::Backoff},
    {RS::FullReplay, RE::FullRestart, RS::ReceivingFull},  // the replay's transaction is aborted
    {RS::Streaming, RE::FullRestart, RS::ReceivingFull},   // the master restarts a FULL mid-stream
    {RS::Streaming, RE::LinkLost, RS::Backoff},
    {RS::Streaming, RE::Resync, RS::Backoff},  // drop the link, reconnect STARTING
    {RS::Backoff, RE::RetryDue, RS::Locating},
    {RS::Backoff, RE::Resync, RS::Backoff},
    {RS::Backoff, RE::OperatorAccept, RS::Backoff},
    {RS::WaitingOperator, RE::OperatorAccept, RS::Locating},
    {RS::WaitingOperator, RE::RetryDue, RS::Locating},  // look again: the master may be back
    {RS::WaitingOperator, RE::Resync, RS::Locating},
};
}  // namespace

std::optional<SessionState> sessionNext(SessionState s, SessionEvent e) {
    for (const auto& t : kSessionTable)
        if (t.from == s && t.event == e) return t.to;
    return std::nullopt;
}

const char* replicaStateName(ReplicaState s) {
    switch (s) {
        case RS::Locating: return "locating";
        case RS::Connecting: return "connecting";
        case RS::AwaitWelcome: return "await-welcome";
        case RS::ReceivingFull: return "receiving-full";
        case RS::FullReplay: return "full-replay";
        case RS::Streaming: return "streaming";
        case RS::Backoff: return "backoff";
        case RS::WaitingOperator: return "waiting-operator";
        case RS::Stopped: return "stopped";
    }
    return "?";
}

const char* replicaEventName(ReplicaEvent e) {
    switch (e) {
        case RE::Located: return "located";
        case RE::LocateFailed: return "locate-failed";
        case RE::Connected: return "connected";
        case RE::ConnectFailed: return "connect-failed";
        case RE::WelcomeFull: return "welcome-full";
        case RE::WelcomeIncremental: return "welcome-incremental";
        case RE::Refused: return "refused";
        case RE::GenerationMismatch: return "generation-mismatch";
        case RE::LastChunk: return "last-chunk";
        case RE::FullRestart: return "full-restart";
        case RE::Consistent: return "consistent";
        case RE::LinkLost: return "link-lost";
        case RE::RetryDue: return "retry-due";
        case RE::OperatorAccept: return "operator-accept";
        case RE::Resync: return "resync";
        case RE::Stop: return "stop";
    }
    return "?";
}

std::optional<ReplicaState> replicaNext(ReplicaState s, ReplicaEvent e) {
    // Stop is legal from every live state.
    if (e == RE::Stop) return s == RS::Stopped ? std::nullopt : std::optional<RS>(RS::Stopped);
    for (const auto& t : kReplicaTable)
        if (t.from == s && t.event == e) return t.to;
    return std::nullopt;
}

}  // namespace possync::sync
