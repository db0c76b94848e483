// Advertiser: the master announces itself on the LAN (_possync._tcp with its store, device,
// protocol and generation in TXT) so slaves of its store can find it.
//
// Runs on the daemon's libuv loop through platform/avahi; keeps the service published
// across avahi-daemon restarts and renames it on a name collision (two boards given the
// same name): serviceName() is the name actually in use. setPort/setGeneration re-publish
// (a generation or term change is sent as a TXT update). In a build without Avahi, create() fails
// with a clear message.
//
// Callbacks run on the loop and must not destroy the Advertiser.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"

struct uv_loop_s;

namespace possync::discovery {

struct AdvertiserOptions {
    std::string storeId;
    std::string deviceId;
    uint16_t port = 0;  // the master's listening TCP port
    uint64_t generation = 0;
    std::string serviceName;     // "" = defaultServiceName(store, device)
    uint64_t term = 0;           // the store's failover term (DESIGN.md §10)
    std::string keyFingerprint;  // the board's key fingerprint (DESIGN.md §11), TXT key=
};

enum class AdvertiserState {
    Waiting,      // avahi-daemon not reachable (yet); published once it is
    Registering,  // the daemon is probing the name
    Established,  // announced
    Failed,       // the daemon refused the service (see describe()); retried when it reconnects
};
const char* advertiserStateName(AdvertiserState state);

class Advertiser final {
public:
    using StateCallback = std::function<void(AdvertiserState)>;

    // `loop` is borrowed and must outlive the Advertiser. Errors: bad ids/port/name
    // (InvalidArgument), built without Avahi (Refused).
    static Result<std::unique_ptr<Advertiser>> create(uv_loop_s* loop, AdvertiserOptions options);
    ~Advertiser();  // withdraws the service
    Advertiser(const Advertiser&) = delete;
    Advertiser& operator=(const Advertiser&) = delete;

    Status setPort(uint16_t port);
    void setGeneration(uint64_t generation);
    // A promotion: the new generation and term in one TXT update.
    void setGenerationAndTerm(uint64_t generation, uint64_t term);

    AdvertiserState state() const;
    // The service name in use (after collision renames).
    std::string serviceName() const;
    const AdvertiserOptions& options() const { return options_; }
    // One line for the console: name, port, gen, state, daemon state, last error.
    std::string describe() const;
    void setStateCallback(StateCallback callback) { stateCallback_ = std::move(callback); }

private:
    struct Impl;  // the Avahi objects (advertiser.cc)
    explicit Advertiser(AdvertiserOptions options);
    Status republish();

    AdvertiserOptions options_;
    std::unique_ptr<Impl> impl_;
    StateCallback stateCallback_;
};

}  // namespace possync::discovery
