// Pairing desk and handshake guard: the master's bookkeeping around the store's trust set
// (DESIGN.md §11). Plain state with the time passed in, no I/O: the daemon (trust_ops.cc) asks it
// and writes the trust set; unit tests drive it directly.
//
// A board that is not a member and asks to pair (M1's pairing flag) becomes a pending request,
// named by the device id its Hello carried (or its key's fingerprint until a Hello came), with the
// verification code both consoles show. `pair accept` makes it a member, `pair reject` refuses
// it for kRejectedMs (it may ask again afterwards), `pair open SECONDS` admits every asking
// board while it lasts. Requests not renewed for kPendingTtlMs are forgotten: a board that asks
// renews its request every second (sync/replica.cc kPairingRetryMs).
//
// The guard rate-limits failed handshakes per address with a token bucket: each failure takes a
// token (kFailureBurst at most, kFailuresPerSecond back per second); an address without a token
// has its connections closed before any handshake (no signature, no key exchange spent on it).
// So a flood from one address gets a few handshakes a second, while a board there that retries
// with a good key gets in within a fraction of a second. The log gets the first failure of a
// burst and then one line per kLogEveryMs with the count, never a line per attempt.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

#include "trust/keys.h"

namespace possync::daemon {

inline constexpr uint64_t kPendingTtlMs = 10 * 60 * 1000;
inline constexpr uint64_t kRejectedMs = 10 * 60 * 1000;
inline constexpr double kFailureBurst = 30;
inline constexpr double kFailuresPerSecond = 5;
inline constexpr uint64_t kLogEveryMs = 10 * 1000;
// Pending requests and rejected keys kept at most: a stranger cycling keys cannot grow them.
inline constexpr size_t kMaxPending = 64;

struct PairRequest {
    trust::PublicKey key{};
    std::string device;   // from its Hello; empty until one came
    std::string address;  // where it connected from
    std::string code;     // the verification code (trust::verificationCode with the master's key)
    uint64_t firstMs = 0, lastMs = 0;
    uint64_t attempts = 0;
    // The name `pair accept` and `pair list` use: the device id, else the key's fingerprint.
    std::string name() const;
};

class PairingDesk final {
public:
    explicit PairingDesk(const trust::PublicKey& self) : self_(self) {}

    // A non-member asked to pair from `address`: recorded or renewed. Returns true the first
    // time (the daemon logs the request once, not at every retry).
    bool noteCandidate(const trust::PublicKey& key, const std::string& address, uint64_t nowMs);
    // The candidate's Hello named `device`.
    void noteHello(const trust::PublicKey& key, const std::string& device);
    // The pending request `who` names: its device id, or its key's fingerprint or a prefix of
    // it (at least 4 hex digits). NotFound or InvalidArgument (ambiguous) with the reason.
    Result<PairRequest> find(const std::string& who, uint64_t nowMs);
    void forget(const trust::PublicKey& key);
    void reject(const trust::PublicKey& key, uint64_t nowMs);
    bool rejected(const trust::PublicKey& key, uint64_t nowMs);
    // Pending requests, oldest first (expired ones dropped).
    std::vector<PairRequest> pending(uint64_t nowMs);

    void openWindow(uint64_t untilMs) { windowUntilMs_ = untilMs; }
    void closeWindow() { windowUntilMs_ = 0; }
    uint64_t windowLeftMs(uint64_t nowMs) const {
        return windowUntilMs_ > nowMs ? windowUntilMs_ - nowMs : 0;
    }

    // A peer that spoke no handshake of this version (a board still on protocol 4, which sends a
    // plaintext Hello): listed by `pair list` as still to be upgraded and paired.
    void noteLegacy(const std::string& host, uint64_t nowMs);
    std::vector<std::pair<std::string, uint64_t>> legacy(uint64_t nowMs);  // host, last seen ms

private:
    void expire(uint64_t nowMs);
    trust::PublicKey self_;
    std::vector<PairRequest> pending_;               // oldest first
    std::map<trust::PublicKey, uint64_t> rejected_;  // key -> until ms
    std::map<std::string, uint64_t> legacy_;         // host -> last seen ms
    uint64_t windowUntilMs_ = 0;
};

class HandshakeGuard final {
public:
    // Whether a new connection from `host` may start a handshake.
    bool admit(const std::string& host, uint64_t nowMs);
    // A handshake from `host` failed. Returns the number of failures to report now (the first of
    // a burst, then the count since the last report once kLogEveryMs passed), or 0: say nothing.
    uint64_t failed(const std::string& host, uint64_t nowMs);
    // Connections closed unheard because their address was blocked.
    uint64_t blocked() const { return blocked_; }

private:
    struct Host {
        double tokens = kFailureBurst;
        uint64_t refilledMs = 0;
        uint64_t lastLogMs = 0;
        uint64_t unreported = 0;
    };
    Host& refill(const std::string& host, uint64_t nowMs);
    std::map<std::string, Host> hosts_;
    uint64_t blocked_ = 0;
};

}  // namespace possync::daemon
