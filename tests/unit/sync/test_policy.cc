// The sync engine's pure core: the FULL/INCREMENTAL rule, backoff, and both state machines,
// table-driven over every (state, event) pair so illegal transitions are checked too.
#include <doctest/doctest.h>

#include <map>
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

TEST_CASE("master session: every legal transition and every illegal one") {
    using S = SessionState;
    using E = SessionEvent;
    const std::map<std::pair<S, E>, S> legal = {
        {{S::AwaitHello, E::HelloFull}, S::Full},   {{S::AwaitHello, E::HelloIncremental}, S::Streaming},
        {{S::AwaitHello, E::Refuse}, S::Closed},    {{S::AwaitHello, E::LinkError}, S::Closed},
        {{S::Full, E::SnapshotSent}, S::Streaming}, {{S::Full, E::NeedFull}, S::Full},
        {{S::Full, E::LinkError}, S::Closed},       {{S::Streaming, E::NeedFull}, S::Full},
        {{S::Streaming, E::LinkError}, S::Closed},
    };
    const S states[] = {S::AwaitHello, S::Full, S::Streaming, S::Closed};
    const E events[] = {E::HelloFull,    E::HelloIncremental, E::Refuse,
                        E::SnapshotSent, E::NeedFull,         E::LinkError};
    int legalSeen = 0;
    for (S s : states)
        for (E e : events) {
            CAPTURE(sessionStateName(s));
            CAPTURE(sessionEventName(e));
            auto next = sessionNext(s, e);
            auto it = legal.find({s, e});
            if (it == legal.end()) {
                CHECK_FALSE(next.has_value());
            } else {
                REQUIRE(next.has_value());
                CHECK(*next == it->second);
                ++legalSeen;
            }
        }
    CHECK(legalSeen == int(legal.size()));
    // Closed is terminal.
    for (E e : events) CHECK_FALSE(sessionNext(S::Closed, e).has_value());
}

TEST_CASE("replica: every legal transition and every illegal one") {
    using S = ReplicaState;
    using E = ReplicaEvent;
    const std::map<std::pair<S, E>, S> legal = {
        {{S::Locating, E::Located}, S::Connecting},
        {{S::Locating, E::LocateFailed}, S::Backoff},
        {{S::Connecting, E::Connected}, S::AwaitWelcome},
        {{S::Connecting, E::ConnectFailed}, S::Backoff},
        {{S::AwaitWelcome, E::WelcomeFull}, S::ReceivingFull},
        {{S::AwaitWelcome, E::WelcomeIncremental}, S::Streaming},
        {{S::AwaitWelcome, E::Refused}, S::Backoff},
        {{S::AwaitWelcome, E::GenerationMismatch}, S::WaitingOperator},
        {{S::AwaitWelcome, E::LinkLost}, S::Backoff},
        {{S::ReceivingFull, E::LastChunk}, S::FullReplay},
        {{S::ReceivingFull, E::Consistent}, S::Streaming},
        {{S::ReceivingFull, E::LinkLost}, S::Backoff},
        {{S::FullReplay, E::Consistent}, S::Streaming},
        {{S::FullReplay, E::LinkLost}, S::Backoff},
        {{S::Streaming, E::WelcomeFull}, S::ReceivingFull},
        {{S::Streaming, E::LinkLost}, S::Backoff},
        {{S::Streaming, E::Resync}, S::Backoff},
        {{S::Backoff, E::RetryDue}, S::Locating},
        {{S::Backoff, E::Resync}, S::Backoff},
        {{S::Backoff, E::OperatorAccept}, S::Backoff},
        {{S::WaitingOperator, E::OperatorAccept}, S::Locating},
        {{S::WaitingOperator, E::RetryDue}, S::Locating},
        {{S::WaitingOperator, E::Resync}, S::Locating},
    };
    const S states[] = {S::Locating,  S::Connecting, S::AwaitWelcome,    S::ReceivingFull, S::FullReplay,
                        S::Streaming, S::Backoff,    S::WaitingOperator, S::Stopped};
    const E events[] = {E::Located,
                        E::LocateFailed,
                        E::Connected,
                        E::ConnectFailed,
                        E::WelcomeFull,
                        E::WelcomeIncremental,
                        E::Refused,
                        E::GenerationMismatch,
                        E::LastChunk,
                        E::Consistent,
                        E::LinkLost,
                        E::RetryDue,
                        E::OperatorAccept,
                        E::Resync,
                        E::Stop};
    int legalSeen = 0;
    for (S s : states)
        for (E e : events) {
            CAPTURE(replicaStateName(s));
            CAPTURE(replicaEventName(e));
            auto next = replicaNext(s, e);
            if (e == E::Stop) {
                // Stop is legal from every live state and ends in Stopped.
                if (s == S::Stopped)
                    CHECK_FALSE(next.has_value());
                else
                    CHECK(next == S::Stopped);
                continue;
            }
            auto it = legal.find({s, e});
            if (it == legal.end()) {
                CHECK_FALSE(next.has_value());
            } else {
                REQUIRE(next.has_value());
                CHECK(*next == it->second);
                ++legalSeen;
            }
        }
    CHECK(legalSeen == int(legal.size()));
}

TEST_CASE("replica walks: a FULL sync, a lost link, a waiting operator") {
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
    // Names are distinct (they are shown on the console).
    std::set<std::string> names;
    for (S s : {S::Locating, S::Connecting, S::AwaitWelcome, S::ReceivingFull, S::FullReplay, S::Streaming,
                S::Backoff, S::WaitingOperator, S::Stopped})
        names.insert(replicaStateName(s));
    CHECK(names.size() == 9);
}
