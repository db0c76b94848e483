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
