// CandidateTable: the masters a slave could sync from, built from discovery sightings.
//
// Pure bookkeeping (no I/O, time passed in) behind MasterFinder: keeps the instances whose
// TXT says our store and our protocol, remembers the others with the reason they were
// ignored, and decides among the boards of the HIGHEST term (DESIGN.md §10: a promoted slave
// announces term+1; an old master that comes back is superseded): no candidate (Searching),
// one board (Found; it may be listed under several service names), or two or more boards
// claiming master for the store at term 0 (Conflict: two masters configured; nothing is
// chosen, since picking one at random could make slaves follow different masters). Two boards
// at one term above 0 (promoted by mistake at once) are a tie that every board breaks the
// same way: the lowest device id wins (Found, and tieText() says so). A floor (setMinTerm,
// the highest term this board has seen) keeps a superseded master out even when the new one
// is not visible.
#pragma once

#include <cstdint>
#include <functional>
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
    uint64_t term = 0;                   // TXT term=
    std::string host;                    // "m.local" (Avahi) or the host as given
    std::string keyFingerprint;          // TXT key=; "" for the static master
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
    Conflict,   // two or more boards claim master for our store at term 0: nothing is chosen
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

    // Candidates announcing a term below `term` stop counting (they stay listed, superseded).
    void setMinTerm(uint64_t term) { minTerm_ = term; }
    // Trust (DESIGN.md §11): an announcement whose key fingerprint `trusted` refuses is no
    // candidate (listed as ignored: "untrusted key ..."), so a rogue board announcing the store
    // neither gets chosen nor makes a conflict. Applied as announcements arrive.
    void setKeyFilter(std::function<bool(const std::string& fingerprint)> trusted) {
        keyFilter_ = std::move(trusted);
    }
    uint64_t minTerm() const { return minTerm_; }

    const std::string& storeId() const { return storeId_; }
    // Sorted by service name; all of them, superseded ones included.
    const std::vector<Candidate>& candidates() const { return candidates_; }
    // Instances that are not candidates, and candidates of a superseded term, with the reason.
    std::vector<Ignored> ignored() const;
    FinderState state() const;
    // The highest term among the candidates and the floor; the boards that announce it.
    uint64_t topTerm() const;
    // Distinct dev ids among the candidates of topTerm(), sorted.
    std::vector<std::string> deviceIds() const;

    // The master to sync from: the chosen board's most recently announced candidate, or an
    // error: NotFound (nobody announces our store at topTerm()) or Refused (conflict; the
    // message lists the boards).
    Result<Candidate> choose() const;
    // "2 boards claim master for store 42: devA at 10.231.0.10:7700, devB at ..." or "".
    std::string conflictText() const;
    // "2 boards claim term 3 of store 42: devA at ..., devB at ...; devA wins (lowest device id)" or "".
    std::string tieText() const;

private:
    std::vector<Candidate>::iterator find(const std::string& serviceName);
    const Candidate* latestOf(const std::string& deviceId) const;

    std::string claimText(const std::vector<std::string>& ids) const;

    std::string storeId_;
    int proto_;
    uint64_t minTerm_ = 0;
    std::function<bool(const std::string&)> keyFilter_;
    std::vector<Candidate> candidates_;
    std::map<std::string, Ignored> ignored_;  // by service name
};

}  // namespace possync::discovery
