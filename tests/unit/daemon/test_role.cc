// chooseRole: --role against the role a failover left in the data directory (DESIGN.md §10).
#include <doctest/doctest.h>

#include "daemon/role.h"

using namespace possync;
using daemon::chooseRole;
using store::HistoryRecord;
using store::Role;

namespace {

store::Meta fresh(Role role) {
    store::Meta m;
    m.role = role;
    m.generation = 0x10;
    m.history = {HistoryRecord{0x10, 0, 0, 0}};
    return m;
}

}  // namespace

TEST_CASE("a directory never failed over (or not made yet) keeps --role") {
    for (Role want : {Role::Master, Role::Slave}) {
        auto none = chooseRole(want, nullptr);
        CHECK(none.role == want);
        CHECK_FALSE(none.fromData);
        CHECK(none.note.empty());
        for (Role held : {Role::Master, Role::Slave}) {
            store::Meta m = fresh(held);
            auto c = chooseRole(want, &m);
            CHECK(c.role == want);  // a configuration change of role is still honoured
            CHECK_FALSE(c.fromData);
            CHECK(c.note.empty());
        }
    }
    // A term seen but never held (a slave that heard of term 3 and followed nobody yet) is no failover.
    store::Meta m = fresh(Role::Slave);
    m.highestTermSeen = 3;
    CHECK(chooseRole(Role::Master, &m).role == Role::Master);
}

TEST_CASE("a promoted board stays master whatever --role says") {
    store::Meta m = fresh(Role::Master);
    m.term = 1;
    m.highestTermSeen = 1;
    m.rolePinned = true;
    m.history.push_back(HistoryRecord{0x20, 0x10, 41, 1});
    auto c = chooseRole(Role::Slave, &m);
    CHECK(c.role == Role::Master);
    CHECK(c.fromData);
    CHECK(c.note == "role master from the data directory (promoted at term 1); --role slave ignored");
    c = chooseRole(Role::Master, &m);
    CHECK(c.role == Role::Master);
    CHECK(c.note == "role master from the data directory (promoted at term 1)");
}

TEST_CASE("a rejoined master stays slave whatever --role says") {
    store::Meta m = fresh(Role::Slave);
    m.highestTermSeen = 2;  // it learnt of term 2 and was fenced, then rejoined
    m.rolePinned = true;
    auto c = chooseRole(Role::Master, &m);
    CHECK(c.role == Role::Slave);
    CHECK(c.fromData);
    CHECK(c.note == "role slave from the data directory (rejoined after term 2); --role master ignored");
    // Rejoined by the operator without a known newer term: the pin alone decides.
    m.highestTermSeen = 0;
    c = chooseRole(Role::Master, &m);
    CHECK(c.role == Role::Slave);
    CHECK(c.note == "role slave from the data directory (rejoined); --role master ignored");
}

TEST_CASE("a fenced master starts as a fenced master, also with --role slave") {
    store::Meta m = fresh(Role::Master);
    m.fenced = "store s has a master of term 1";
    auto c = chooseRole(Role::Slave, &m);
    CHECK(c.role == Role::Master);
    CHECK(
        c.note ==
        "role master from the data directory (term 0; fenced: store s has a master of term 1); --role slave "
        "ignored");
}

TEST_CASE("a slave holding a promoted master's data stays slave") {
    store::Meta m = fresh(Role::Slave);
    m.term = 1;
    m.history.push_back(HistoryRecord{0x20, 0x10, 41, 1});
    auto c = chooseRole(Role::Master, &m);
    CHECK(c.role == Role::Slave);
    CHECK(c.note == "role slave from the data directory (holds the data of term 1); --role master ignored");
    // A history longer than one record alone (term carried as 0 by an old master) counts too.
    m.term = 0;
    CHECK(chooseRole(Role::Master, &m).role == Role::Slave);
}

namespace {

discovery::Candidate seen(std::string dev, uint64_t term, std::string addr = "10.0.0.9") {
    discovery::Candidate c;
    c.deviceId = std::move(dev);
    c.term = term;
    c.address = std::move(addr);
    c.port = 7700;
    return c;
}

}  // namespace

TEST_CASE("a master steps down for a higher term, or for a lower device id at its own term above 0") {
    using daemon::supersededBy;
    // Its own announcement, anonymous ones and lower terms never count.
    CHECK_FALSE(supersededBy("42", "till-5", 0, {seen("till-5", 0), seen("", 9), seen("till-1", 0)}));
    CHECK_FALSE(supersededBy("42", "till-5", 2, {seen("till-1", 1), seen("till-5", 2)}));
    auto s = supersededBy("42", "till-1", 0, {seen("till-1", 0), seen("till-5", 1, "10.0.0.5")});
    REQUIRE(s);
    CHECK(s->term == 1);
    CHECK(s->reason ==
          "store 42 has a master of term 1 (till-5 at 10.0.0.5:7700, announced over Avahi); this board is "
          "term 0");
    // The highest term names the reason, wherever it is listed.
    s = supersededBy("42", "till-1", 0, {seen("till-5", 1), seen("till-7", 3), seen("till-6", 2)});
    REQUIRE(s);
    CHECK(s->term == 3);
    // A tie at term 0 is a configuration conflict (two masters configured): nobody steps down.
    CHECK_FALSE(supersededBy("42", "till-5", 0, {seen("till-1", 0)}));
    // A tie above 0: the higher device id steps down, the lower one stays.
    s = supersededBy("42", "till-5", 1, {seen("till-1", 1, "10.0.0.1")});
    REQUIRE(s);
    CHECK(s->reason ==
          "store 42 has two masters of term 1: till-1 at 10.0.0.1:7700 wins the tie (lowest device id) over "
          "this "
          "board, till-5");
    CHECK_FALSE(supersededBy("42", "till-1", 1, {seen("till-5", 1)}));
    // A higher term wins over a tie.
    s = supersededBy("42", "till-5", 1, {seen("till-1", 1), seen("till-9", 2)});
    REQUIRE(s);
    CHECK(s->term == 2);
}
