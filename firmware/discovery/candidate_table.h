// CandidateTable: the masters a slave could sync from, built from discovery sightings.
//
// Pure bookkeeping (no I/O, time passed in) behind MasterFinder: keeps the instances whose
// TXT says our store and our protocol, remembers the others with the reason they were
// ignored, and decides: no candidate (Searching), one board (Found; it may be listed under
// several service names), or two or more boards claiming master for the store (Conflict).
// In a conflict nothing is chosen: picking one at random could make slaves follow
// different masters.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/host_port.h"
#include "base/result.h"

namespace possync::discovery {

// One resolved _possync._tcp instance, as the finder gets it from Avahi.
struct Sighting {
    std::string serviceName;
    std::string host;     // "m.local"
    std::string address;  // numeric
    uint16_t port = 0;
    std::map<std::string, std::string> txt;
    int interfaceIndex = -1;
};

struct Candidate {
    std::string serviceName;  // DNS-SD instance name; "" for the static master
    std::string address;      // numeric address, or the host as given to --master
    uint16_t port = 0;
    std::string deviceId;                // TXT dev=; "" for the static master (learnt from Welcome)
    std::optional<uint64_t> generation;  // TXT gen=
    std::string host;                    // "m.local" (Avahi) or the host as given
    int interfaceIndex = -1;
    uint64_t seenWallMs = 0;  // last announcement (ms since the epoch); a hint, not liveness
    bool isStatic = false;

    // "10.231.0.10:7700", "[fe80::1]:7700"
    std::string endpoint() const;
    bool sameAnnouncement(const Candidate& o) const;  // all but seenWallMs
};

enum class FinderState {
    Searching,  // no candidate for our store
    Found,      // one board (one dev id) claims master for our store
    Conflict,   // two or more boards claim master for our store: nothing is chosen
};
const char* finderStateName(FinderState state);

struct Change {
    enum class Kind { Added, Removed, Updated };
    Kind kind;
    Candidate candidate;  // for Removed: the candidate as it was
};
const char* changeKindName(Change::Kind kind);

// An instance seen on the LAN that is not a candidate, and why (console `discovery`).
struct Ignored {
    std::string serviceName;
    std::string endpoint;
    std::string reason;  // "store 7", "protocol 2", "bad TXT: ..."
};

class CandidateTable final {
public:
    CandidateTable(std::string storeId, int protoVersion);

    // A (re)resolved instance. Returns the change to our candidates, if any.
    std::optional<Change> seen(const Sighting& s, uint64_t nowMs);
    // The instance left the network (or Avahi lost it).
    std::optional<Change> gone(const std::string& serviceName);
    // The static master from --master: a candidate that never goes away.
    Change addStatic(const HostPort& hp, uint64_t nowMs);

    const std::string& storeId() const { return storeId_; }
    // Sorted by service name.
    const std::vector<Candidate>& candidates() const { return candidates_; }
    std::vector<Ignored> ignored() const;
    FinderState state() const;
    // Distinct dev ids among the candidates, sorted.
    std::vector<std::string> deviceIds() const;

    // The master to sync from: the single board's most recently announced candidate, or
    // an error: NotFound (nobody announces our store) or Refused (conflict; the message
    // lists the boards).
    Result<Candidate> choose() const;
    // "2 boards claim master for store 42: devA at 10.231.0.10:7700, devB at ..." or "".
    std::string conflictText() const;

private:
    std::vector<Candidate>::iterator find(const std::string& serviceName);
    const Candidate* latestOf(const std::string& deviceId) const;

    std::string storeId_;
    int proto_;
    std::vector<Candidate> candidates_;
    std::map<std::string, Ignored> ignored_;  // by service name
};

}  // namespace possync::discovery
