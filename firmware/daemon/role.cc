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

std::optional<Superseded> supersededBy(const std::string& store, const std::string& device, uint64_t term,
                                       const std::vector<discovery::Candidate>& candidates) {
    std::optional<Superseded> out;
    for (const auto& c : candidates) {
        // Boards are told apart by their dev id; an announcement without one proves nothing.
        if (c.deviceId.empty() || c.deviceId == device) continue;
        const std::string who = c.deviceId + " at " + c.endpoint();
        if (c.term > term && (!out || c.term > out->term)) {
            out = Superseded{c.term, "store " + store + " has a master of term " + std::to_string(c.term) +
                                         " (" + who + ", announced over Avahi); this board is term " +
                                         std::to_string(term)};
        } else if (c.term == term && term > 0 && c.deviceId < device && !out) {
            out = Superseded{term, "store " + store + " has two masters of term " + std::to_string(term) +
                                       ": " + who + " wins the tie (lowest device id) over this board, " +
                                       device};
        }
    }
    return out;
}

}  // namespace possync::daemon
