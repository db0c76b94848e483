// The sync engine's pure core: the FULL/INCREMENTAL rule, backoff, and both state machines,
// table-driven over every (state, event) pair so illegal transitions are checked too.
#include <doctest/doctest.h>

#include <set>

#include "sync/policy.h"

using namespace possync::sync;

TEST_CASE("the sync rule picks FULL or INCREMENTAL as DESIGN.md §3 says") {
    MasterView m{.generation = 7, .head = 100, .logFirst = 50, .resyncSeq = 10};
    struct Case {
        SlaveView slave;
        SyncKind kind;
        uint64_t from;
    };
    const Case cases[] = {
        {{false, 7, 80}, SyncKind::Full, 0},         // STARTING
        {{true, 8, 80}, SyncKind::Full, 0},          // other generation
        {{true, 7, 101}, SyncKind::Full, 0},         // ahead of the head
        {{true, 7, 9}, SyncKind::Full, 0},           // before the watched-set cut
        {{true, 7, 48}, SyncKind::Full, 0},          // 49 was trimmed
        {{true, 7, 49}, SyncKind::Incremental, 50},  // exactly the oldest entry needed
        {{true, 7, 80}, SyncKind::Incremental, 81},
        {{true, 7, 100}, SyncKind::Incremental, 101},  // up to date
    };
    for (const auto& c : cases) {
        CAPTURE(c.slave.seq);
        CAPTURE(c.slave.generation);
        auto d = decideSync(m, c.slave);
        CHECK(d.kind == c.kind);
        if (c.kind == SyncKind::Incremental) CHECK(d.fromSeq == c.from);
        CHECK(std::string(d.why).size() > 0);
    }
    // An empty log: only a slave already at the head can resume.
    MasterView empty{.generation = 7, .head = 5, .logFirst = 0, .resyncSeq = 0};
    CHECK(decideSync(empty, {true, 7, 5}).kind == SyncKind::Incremental);
    CHECK(decideSync(empty, {true, 7, 4}).kind == SyncKind::Full);
}

TEST_CASE("the sync rule across a promotion: an ancestor up to its fork resumes, past it FULL") {
    // Generation 8 continued 7 from seq 15 (DESIGN.md §10).
    MasterView m{.generation = 8,
                 .head = 17,
                 .logFirst = 11,
                 .resyncSeq = 0,
                 .history = {{7, 0, 0, 0}, {8, 7, 15, 1}},
                 .term = 1};
    auto d = decideSync(m, {true, 7, 10});
    CHECK((d.kind == SyncKind::Incremental && d.fromSeq == 11 && d.related));
    d = decideSync(m, {true, 7, 15});
    CHECK((d.kind == SyncKind::Incremental && d.fromSeq == 16 && d.discarded == 0));
    d = decideSync(m, {true, 7, 18});
    CHECK((d.kind == SyncKind::Full && d.related && d.discarded == 3));
    d = decideSync(m, {true, 9, 5});
    CHECK((d.kind == SyncKind::Full && !d.related));
    d = decideSync(m, {false, 7, 10});  // STARTING: FULL, whatever it holds
    CHECK((d.kind == SyncKind::Full && d.related));
    d = decideSync(m, {true, 7, 9});  // 10 was trimmed from the log
    CHECK(d.kind == SyncKind::Full);
}

TEST_CASE("backoff doubles from the minimum to the cap with bounded jitter") {
    Backoff b(500, 60000, 12345);
    uint64_t base = 500;
    for (int i = 0; i < 12; ++i) {
        uint64_t d = b.next();
        uint64_t expect = std::min<uint64_t>(base, 60000);
        CHECK(d >= expect - expect / 5);
        CHECK(d <= expect + expect / 5);
        base *= 2;
    }
    b.reset();
    CHECK(b.next() <= 600);
    // Two boards with different seeds do not retry in lockstep.
    Backoff x(1000, 1000, 1), y(1000, 1000, 2);
    int same = 0;
    for (int i = 0; i < 20; ++i) same += x.next() == y.next();
    CHECK(same < 5);
}

// The expected tables below are written out cell by cell, independently of policy.cc: a changed,
// missing or extra transition in the runtime table fails here. `X` marks an illegal pair.
namespace {
constexpr int X = -1;
}  // namespace

TEST_CASE("master session: the expected next state of every (state, event) pair") {
    using S = SessionState;
    using E = SessionEvent;
    const S states[] = {S::AwaitHello, S::Full, S::Streaming, S::Closed};
    const E events[] = {E::HelloFull,    E::HelloIncremental, E::Refuse,
                        E::SnapshotSent, E::NeedFull,         E::LinkError};
    constexpr int AH = int(S::AwaitHello), FU = int(S::Full), ST = int(S::Streaming), CL = int(S::Closed);
    // clang-format off
    const int expected[4][6] = {
        //             hello-full hello-incr refuse snapshot-sent need-full link-error
        /* await-hello */ {FU,     ST,        CL,    X,            X,        CL},
        /* full        */ {X,      X,         X,     ST,           FU,       CL},
        /* streaming   */ {X,      X,         X,     X,            FU,       CL},
        /* closed      */ {X,      X,         X,     X,            X,        X},
    };
    // clang-format on
    (void)AH;
    for (int si = 0; si < 4; ++si)
        for (int ei = 0; ei < 6; ++ei) {
            CAPTURE(sessionStateName(states[si]));
            CAPTURE(sessionEventName(events[ei]));
            REQUIRE(int(states[si]) == si);
            auto next = sessionNext(states[si], events[ei]);
            if (expected[si][ei] == X)
                CHECK_FALSE(next.has_value());
            else
                CHECK(next == S(expected[si][ei]));
        }
}

TEST_CASE("replica: the expected next state of every (state, event) pair") {
    using S = ReplicaState;
    using E = ReplicaEvent;
    const S states[] = {S::Locating,  S::Connecting, S::AwaitWelcome,    S::ReceivingFull, S::FullReplay,
                        S::Streaming, S::Backoff,    S::WaitingOperator, S::Stopped};
    const E events[] = {E::Located,     E::LocateFailed,       E::Connected,  E::ConnectFailed,
                        E::WelcomeFull, E::WelcomeIncremental, E::Refused,    E::GenerationMismatch,
                        E::LastChunk,   E::FullRestart,        E::Consistent, E::LinkLost,
                        E::RetryDue,    E::OperatorAccept,     E::Resync,     E::Stop};
    constexpr int LO = int(S::Locating), CO = int(S::Connecting), AW = int(S::AwaitWelcome),
                  RF = int(S::ReceivingFull), FR = int(S::FullReplay), SR = int(S::Streaming),
                  BO = int(S::Backoff), WO = int(S::WaitingOperator), SP = int(S::Stopped);
    // clang-format off
    const int expected[9][16] = {
        //            located lfail conn  cfail wfull wincr refus genmm last  frest cons  lost  retry accpt resyn stop
        /* locating  */ {CO,   BO,   X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    SP},
        /* connecting*/ {X,    X,    AW,   BO,   X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    SP},
        /* await-wel */ {X,    X,    X,    X,    RF,   SR,   BO,   WO,   X,    X,    X,    BO,   X,    X,    BO,   SP},
        /* recv-full */ {X,    X,    X,    X,    X,    X,    X,    X,    FR,   RF,   SR,   BO,   X,    X,    X,    SP},
        /* full-repl */ {X,    X,    X,    X,    X,    X,    X,    X,    X,    RF,   SR,   BO,   X,    X,    X,    SP},
        /* streaming */ {X,    X,    X,    X,    X,    X,    X,    X,    X,    RF,   X,    BO,   X,    X,    BO,   SP},
        /* backoff   */ {X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    LO,   BO,   BO,   SP},
        /* wait-oper */ {X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    LO,   LO,   LO,   SP},
        /* stopped   */ {X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X},
    };
    // clang-format on
    for (int si = 0; si < 9; ++si)
        for (int ei = 0; ei < 16; ++ei) {
            CAPTURE(replicaStateName(states[si]));
            CAPTURE(replicaEventName(events[ei]));
            REQUIRE(int(states[si]) == si);
            auto next = replicaNext(states[si], events[ei]);
            if (expected[si][ei] == X)
                CHECK_FALSE(next.has_value());
            else
                CHECK(next == S(expected[si][ei]));
        }
}

TEST_CASE("every state the runtime can fail in has the failure edge it takes") {
    // MasterSession::close() takes LinkError from any open state; Replica::step() recovers from an
    // illegal event through LocateFailed / ConnectFailed / LinkLost. A missing edge would leave
    // the runtime without a legal way out.
    for (auto s : {SessionState::AwaitHello, SessionState::Full, SessionState::Streaming})
        CHECK(sessionNext(s, SessionEvent::LinkError) == SessionState::Closed);
    CHECK(replicaNext(ReplicaState::Locating, ReplicaEvent::LocateFailed) == ReplicaState::Backoff);
    CHECK(replicaNext(ReplicaState::Connecting, ReplicaEvent::ConnectFailed) == ReplicaState::Backoff);
    for (auto s : {ReplicaState::AwaitWelcome, ReplicaState::ReceivingFull, ReplicaState::FullReplay,
                   ReplicaState::Streaming})
        CHECK(replicaNext(s, ReplicaEvent::LinkLost) == ReplicaState::Backoff);
}

TEST_CASE("replica walks: a FULL sync, a lost link, a waiting operator, a FULL restarted in its replay") {
    using S = ReplicaState;
    using E = ReplicaEvent;
    auto walk = [](S s, std::initializer_list<E> events) {
        for (E e : events) {
            auto n = replicaNext(s, e);
            REQUIRE(n.has_value());
            s = *n;
        }
        return s;
    };
    CHECK(walk(S::Backoff, {E::RetryDue, E::Located, E::Connected, E::WelcomeFull, E::LastChunk,
                            E::Consistent}) == S::Streaming);
    CHECK(walk(S::Streaming, {E::LinkLost, E::RetryDue, E::Located, E::Connected, E::WelcomeIncremental}) ==
          S::Streaming);
    CHECK(walk(S::Backoff, {E::RetryDue, E::Located, E::Connected, E::GenerationMismatch, E::OperatorAccept,
                            E::Located, E::Connected, E::WelcomeFull, E::Consistent}) == S::Streaming);
    CHECK(walk(S::AwaitWelcome,
               {E::WelcomeFull, E::LastChunk, E::FullRestart, E::LastChunk, E::Consistent}) == S::Streaming);
    // Names are distinct (they are shown on the console).
    std::set<std::string> names;
    for (S s : {S::Locating, S::Connecting, S::AwaitWelcome, S::ReceivingFull, S::FullReplay, S::Streaming,
                S::Backoff, S::WaitingOperator, S::Stopped})
        names.insert(replicaStateName(s));
    CHECK(names.size() == 9);
}
