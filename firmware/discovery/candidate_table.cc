#include "discovery/candidate_table.h"

#include <algorithm>
#include <set>

#include "discovery/announcement.h"

namespace possync::discovery {

namespace {
std::string endpointOf(const std::string& address, uint16_t port) {
    return formatHostPort(address, port);
}
}  // namespace

std::string Candidate::endpoint() const {
    return endpointOf(address, port);
}

bool Candidate::sameAnnouncement(const Candidate& o) const {
    return serviceName == o.serviceName && address == o.address && port == o.port && deviceId == o.deviceId &&
           generation == o.generation && term == o.term && host == o.host &&
           keyFingerprint == o.keyFingerprint && interfaceIndex == o.interfaceIndex && isStatic == o.isStatic;
}

const char* finderStateName(FinderState state) {
    switch (state) {
        case FinderState::Searching: return "searching";
        case FinderState::Found: return "found";
        case FinderState::Conflict: return "conflict";
    }
    return "?";
}

const char* changeKindName(Change::Kind kind) {
    switch (kind) {
        case Change::Kind::Added: return "added";
        case Change::Kind::Removed: return "removed";
        case Change::Kind::Updated: return "updated";
    }
    return "?";
}

CandidateTable::CandidateTable(std::string storeId, int protoVersion)
    : storeId_(std::move(storeId)), proto_(protoVersion) {}

std::vector<Candidate>::iterator CandidateTable::find(const std::string& serviceName) {
    return std::find_if(candidates_.begin(), candidates_.end(),
                        [&](const Candidate& c) { return !c.isStatic && c.serviceName == serviceName; });
}

std::optional<Change> CandidateTable::seen(const Sighting& s, uint64_t nowMs) {
    std::string reason;
    Result<Announcement> a = parseAnnouncement(s.txt);
    if (!a.ok())
        reason = "bad TXT: " + a.error().message;
    else if (a->storeId != storeId_)
        reason = "store " + a->storeId;
    else if (a->proto != proto_)
        reason = "protocol " + std::to_string(a->proto) +
                 (a->proto < proto_ ? " (an older possync: upgrade it and pair it)" : "");
    else if (keyFilter_ && !keyFilter_(a->keyFingerprint))
        reason = "untrusted key " +
                 (a->keyFingerprint.empty() ? std::string("(none announced)") : a->keyFingerprint) +
                 ": not in this store's trust set (a rogue or unpaired master)";

    auto it = find(s.serviceName);
    if (!reason.empty()) {
        ignored_[s.serviceName] = Ignored{s.serviceName, endpointOf(s.address, s.port), reason};
        if (it == candidates_.end()) return std::nullopt;
        Change ch{Change::Kind::Removed, *it};  // it changed its TXT away from our store
        candidates_.erase(it);
        return ch;
    }
    ignored_.erase(s.serviceName);

    Candidate c;
    c.serviceName = s.serviceName;
    c.address = s.address;
    c.port = s.port;
    c.deviceId = a->deviceId;
    c.generation = a->generation;
    c.term = a->term;
    c.host = s.host;
    c.keyFingerprint = a->keyFingerprint;
    c.interfaceIndex = s.interfaceIndex;
    c.seenWallMs = nowMs;
    if (it != candidates_.end()) {
        bool same = it->sameAnnouncement(c);
        *it = c;
        if (same) return std::nullopt;
        return Change{Change::Kind::Updated, c};
    }
    auto pos = std::lower_bound(
        candidates_.begin(), candidates_.end(), c,
        [](const Candidate& x, const Candidate& y) { return x.serviceName < y.serviceName; });
    candidates_.insert(pos, c);
    return Change{Change::Kind::Added, c};
}

std::optional<Change> CandidateTable::gone(const std::string& serviceName) {
    ignored_.erase(serviceName);
    auto it = find(serviceName);
    if (it == candidates_.end()) return std::nullopt;
    Change ch{Change::Kind::Removed, *it};
    candidates_.erase(it);
    return ch;
}

Change CandidateTable::addStatic(const HostPort& hp, uint64_t nowMs) {
    Candidate c;
    c.address = hp.host;
    c.host = hp.host;
    c.port = hp.port;
    c.seenWallMs = nowMs;
    c.isStatic = true;
    candidates_.insert(candidates_.begin(), c);
    return Change{Change::Kind::Added, c};
}

std::vector<Ignored> CandidateTable::ignored() const {
    std::vector<Ignored> out;
    for (const auto& [name, ig] : ignored_) {
        (void)name;
        out.push_back(ig);
    }
    uint64_t top = topTerm();
    for (const Candidate& c : candidates_)
        if (c.term < top)
            out.push_back(
                Ignored{c.serviceName, c.endpoint(),
                        "term " + std::to_string(c.term) + ", superseded by term " + std::to_string(top)});
    return out;
}

uint64_t CandidateTable::topTerm() const {
    uint64_t top = minTerm_;
    for (const Candidate& c : candidates_) top = std::max(top, c.term);
    return top;
}

std::vector<std::string> CandidateTable::deviceIds() const {
    uint64_t top = topTerm();
    std::set<std::string> ids;
    for (const Candidate& c : candidates_)
        if (c.term == top) ids.insert(c.deviceId);
    return {ids.begin(), ids.end()};
}

FinderState CandidateTable::state() const {
    std::vector<std::string> ids = deviceIds();
    if (ids.empty()) return FinderState::Searching;
    return ids.size() > 1 && topTerm() == 0 ? FinderState::Conflict : FinderState::Found;
}

const Candidate* CandidateTable::latestOf(const std::string& deviceId) const {
    uint64_t top = topTerm();
    const Candidate* best = nullptr;
    for (const Candidate& c : candidates_)
        if (c.deviceId == deviceId && c.term == top && (best == nullptr || c.seenWallMs > best->seenWallMs))
            best = &c;
    return best;
}

Result<Candidate> CandidateTable::choose() const {
    switch (state()) {
        case FinderState::Searching:
            if (!candidates_.empty())
                return makeError(Errc::NotFound, "no master announces store " + storeId_ + " at term " +
                                                     std::to_string(topTerm()) +
                                                     " (older terms are superseded)");
            return makeError(Errc::NotFound, "no master announces store " + storeId_ + " yet");
        case FinderState::Conflict:
            return makeError(Errc::Refused,
                             conflictText() + "; not choosing one (stop the extra master or use --master)");
        case FinderState::Found: break;
    }
    return *latestOf(deviceIds().front());  // a tie above term 0: the lowest device id
}

std::string CandidateTable::claimText(const std::vector<std::string>& ids) const {
    std::string text;
    for (size_t i = 0; i < ids.size(); ++i) {
        const Candidate* c = latestOf(ids[i]);
        text += (i == 0 ? " " : ", ") + ids[i] + " at " + c->endpoint();
    }
    return text;
}

std::string CandidateTable::conflictText() const {
    std::vector<std::string> ids = deviceIds();
    if (ids.size() < 2 || topTerm() != 0) return {};
    return std::to_string(ids.size()) + " boards claim master for store " + storeId_ + ":" + claimText(ids);
}

std::string CandidateTable::tieText() const {
    std::vector<std::string> ids = deviceIds();
    if (ids.size() < 2 || topTerm() == 0) return {};
    return std::to_string(ids.size()) + " boards claim term " + std::to_string(topTerm()) + " of store " +
           storeId_ + ":" + claimText(ids) + "; " + ids.front() + " wins (lowest device id)";
}

}  // namespace possync::discovery
