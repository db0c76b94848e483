#include "daemon/pairing.h"

#include <algorithm>
#include <cctype>

namespace possync::daemon {

std::string PairRequest::name() const {
    return device.empty() ? trust::fingerprint(key) : device;
}

void PairingDesk::expire(uint64_t nowMs) {
    std::erase_if(pending_, [nowMs](const PairRequest& r) { return r.lastMs + kPendingTtlMs <= nowMs; });
    std::erase_if(rejected_, [nowMs](const auto& kv) { return kv.second <= nowMs; });
    std::erase_if(legacy_, [nowMs](const auto& kv) { return kv.second + kPendingTtlMs <= nowMs; });
}

bool PairingDesk::noteCandidate(const trust::PublicKey& key, const std::string& address, uint64_t nowMs) {
    expire(nowMs);
    for (PairRequest& r : pending_) {
        if (r.key != key) continue;
        r.address = address;
        r.lastMs = nowMs;
        ++r.attempts;
        return false;
    }
    if (pending_.size() >= kMaxPending) pending_.erase(pending_.begin());  // the oldest makes room
    PairRequest r;
    r.key = key;
    r.address = address;
    r.code = trust::verificationCode(self_, key);
    r.firstMs = r.lastMs = nowMs;
    r.attempts = 1;
    pending_.push_back(std::move(r));
    return true;
}

void PairingDesk::noteHello(const trust::PublicKey& key, const std::string& device) {
    for (PairRequest& r : pending_)
        if (r.key == key) r.device = device;
}

namespace {
bool isHexPrefix(const std::string& s) {
    return s.size() >= 4 && s.size() <= 16 && std::all_of(s.begin(), s.end(), [](char c) {
               return std::isxdigit(static_cast<unsigned char>(c));
           });
}
std::string lowerText(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}
}  // namespace

Result<PairRequest> PairingDesk::find(const std::string& who, uint64_t nowMs) {
    expire(nowMs);
    std::vector<const PairRequest*> hits;
    for (const PairRequest& r : pending_)
        if (r.device == who) hits.push_back(&r);
    if (hits.empty() && isHexPrefix(who)) {
        const std::string prefix = lowerText(who);
        for (const PairRequest& r : pending_)
            if (trust::fingerprint(r.key).starts_with(prefix)) hits.push_back(&r);
    }
    if (hits.size() == 1) return *hits.front();
    if (hits.empty())
        return makeError(Errc::NotFound, "no board named '" + who + "' asks to pair (see pair list)");
    return makeError(Errc::InvalidArgument, std::to_string(hits.size()) + " boards asking to pair match '" +
                                                who + "': name one by its key fingerprint (pair list)");
}

void PairingDesk::forget(const trust::PublicKey& key) {
    std::erase_if(pending_, [&](const PairRequest& r) { return r.key == key; });
}

void PairingDesk::reject(const trust::PublicKey& key, uint64_t nowMs) {
    forget(key);
    if (rejected_.size() >= kMaxPending) rejected_.erase(rejected_.begin());
    rejected_[key] = nowMs + kRejectedMs;
}

bool PairingDesk::rejected(const trust::PublicKey& key, uint64_t nowMs) {
    expire(nowMs);
    return rejected_.count(key) != 0;
}

std::vector<PairRequest> PairingDesk::pending(uint64_t nowMs) {
    expire(nowMs);
    return pending_;
}

void PairingDesk::noteLegacy(const std::string& host, uint64_t nowMs) {
    expire(nowMs);
    if (legacy_.size() >= kMaxPending && !legacy_.count(host)) return;
    legacy_[host] = nowMs;
}

std::vector<std::pair<std::string, uint64_t>> PairingDesk::legacy(uint64_t nowMs) {
    expire(nowMs);
    return {legacy_.begin(), legacy_.end()};
}

HandshakeGuard::Host& HandshakeGuard::refill(const std::string& host, uint64_t nowMs) {
    auto [it, fresh] = hosts_.try_emplace(host);
    Host& h = it->second;
    if (!fresh && nowMs > h.refilledMs)
        h.tokens =
            std::min(kFailureBurst, h.tokens + double(nowMs - h.refilledMs) * kFailuresPerSecond / 1000.0);
    h.refilledMs = nowMs;
    return h;
}

bool HandshakeGuard::admit(const std::string& host, uint64_t nowMs) {
    if (!hosts_.count(host)) return true;
    if (refill(host, nowMs).tokens >= 1) return true;
    ++blocked_;
    return false;
}

uint64_t HandshakeGuard::failed(const std::string& host, uint64_t nowMs) {
    // Addresses whose bucket is full again and whose failures were reported are forgotten, so a
    // scan from many addresses cannot grow the map for good.
    if (hosts_.size() > 256) {
        std::erase_if(hosts_, [nowMs](const auto& kv) {
            const Host& h = kv.second;
            double tokens =
                h.tokens + double(nowMs - std::min(nowMs, h.refilledMs)) * kFailuresPerSecond / 1000.0;
            return tokens >= kFailureBurst && h.unreported == 0;
        });
    }
    Host& h = refill(host, nowMs);
    h.tokens = std::max(0.0, h.tokens - 1);
    ++h.unreported;
    if (h.lastLogMs != 0 && h.lastLogMs + kLogEveryMs > nowMs) return 0;
    h.lastLogMs = nowMs;
    uint64_t n = h.unreported;
    h.unreported = 0;
    return n;
}

}  // namespace possync::daemon
