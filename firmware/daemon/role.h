// The role possyncd runs as: --role, unless a failover put the role in the data directory.
//
// DESIGN.md §10: a promoted slave stays master and a rejoined master stays slave across restarts,
// whatever --role their installed configuration says; a fresh directory (never failed over) keeps
// --role. Pure, so every case is a unit test (tests/unit/daemon/test_role.cc).
#pragma once

#include <string>

#include "store/meta.h"

namespace possync::daemon {

struct RoleChoice {
    store::Role role = store::Role::Master;
    bool fromData = false;  // the data directory decided (store::roleFromData)
    std::string note;       // for the start-up log and the console; empty when --role decided
};

// `data` is the directory's meta, nullptr for a directory not initialised yet.
RoleChoice chooseRole(store::Role requested, const store::Meta* data);

}  // namespace possync::daemon
