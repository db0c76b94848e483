#include "daemon/role.h"

#include <algorithm>

namespace possync::daemon {

RoleChoice chooseRole(store::Role requested, const store::Meta* data) {
    RoleChoice c;
    c.role = requested;
    if (!data || !store::roleFromData(*data)) return c;
    c.role = data->role;
    c.fromData = true;
    const uint64_t term = std::max(data->term, data->highestTermSeen);
    std::string why;
    if (data->role == store::Role::Master) {
        // A master of a term above 0 was promoted; one at term 0 was fenced or pinned by hand.
        why = data->term ? "promoted at term " + std::to_string(data->term) : "term 0";
        if (!data->fenced.empty()) why += "; fenced: " + data->fenced;
    } else {
        if (!data->rolePinned)
            why = "holds the data of term " + std::to_string(term);
        else
            why = term ? "rejoined after term " + std::to_string(term) : std::string("rejoined");
    }
    c.note = std::string("role ") + store::roleName(c.role) + " from the data directory (" + why + ")";
    if (requested != c.role) c.note += std::string("; --role ") + store::roleName(requested) + " ignored";
    return c;
}

}  // namespace possync::daemon
