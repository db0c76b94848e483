// The role possyncd runs as: --role, unless a failover put the role in the data directory.
//
// DESIGN.md §10: a promoted slave stays master and a rejoined master stays slave across restarts,
// whatever --role their installed configuration says; a fresh directory (never failed over) keeps
// --role. Pure, so every case is a unit test (tests/unit/daemon/test_role.cc).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "discovery/candidate_table.h"
#include "store/meta.h"

namespace possync::daemon {

struct RoleChoice {
    store::Role role = store::Role::Master;
    bool fromData = false;  // the data directory decided (store::roleFromData)
    std::string note;       // for the start-up log and the console; empty when --role decided
};

// `data` is the directory's meta, nullptr for a directory not initialised yet.
RoleChoice chooseRole(store::Role requested, const store::Meta* data);

// A master that must step down: the term of the board that supersedes it and why.
struct Superseded {
    uint64_t term = 0;
    std::string reason;
};

// Whether a running master (device `device`, term `term`) of `store` is superseded by one of the
// `candidates` its own Avahi browse sees (its own announcement among them): a board announcing a
// higher term, or -- two boards promoted at once -- the same term above 0 from a lower device id
// (the board every slave follows, discovery/candidate_table.h). nullopt: it stays master.
std::optional<Superseded> supersededBy(const std::string& store, const std::string& device, uint64_t term,
                                       const std::vector<discovery::Candidate>& candidates);

}  // namespace possync::daemon
