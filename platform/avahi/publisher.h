// Publisher: publishes one DNS-SD service (name, type, port, TXT) through avahi-daemon and
// keeps it published: renames on collisions, re-registers after daemon restarts.
//
// The service lives in its own entry group. A name collision (another service of that
// name, locally or on the LAN) renames it with avahi_alternative_service_name ("x" -> "x #2")
// and retries; the new name is kept from then on, also across daemon restarts. update()
// changes port/TXT: a TXT-only change of an established service is sent as a TXT update,
// anything else withdraws and re-registers the service.
//
// Must be destroyed before its Client. Callbacks must not destroy the Publisher.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "avahi/client.h"
#include "avahi/service_info.h"
#include "base/result.h"

struct AvahiEntryGroup;

namespace possync::avahi {

struct ServiceSpec {
    std::string name;   // instance name, 1..63 bytes of UTF-8
    std::string type;   // "_possync._tcp"
    uint16_t port = 0;  // 1..65535
    TxtList txt;        // keys: printable ASCII without '='; each "key=value" <= 255 bytes
};

enum class PublisherState {
    Waiting,      // the Client is not running; published when it is
    Registering,  // committed; the daemon is probing the name
    Established,  // announced on the network
    Failed,       // the daemon refused it (see lastError); retried when the Client reconnects
};

const char* publisherStateName(PublisherState state);

// Checks a spec (name, type, port, TXT) without publishing; a one-line reason on error.
Status validateServiceSpec(const ServiceSpec& spec);

class Publisher final : public ClientUser {
public:
    using StateCallback = std::function<void(PublisherState)>;

    // Validates the spec and publishes as soon as the client is running.
    static Result<std::unique_ptr<Publisher>> create(Client& client, ServiceSpec spec);
    ~Publisher() override;  // withdraws the service
    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;

    // New port and TXT (same name and type). Re-publishes; an invalid spec changes nothing.
    Status update(uint16_t port, TxtList txt);

    PublisherState state() const { return state_; }
    // The name in use: the requested one or its collision renames.
    const std::string& name() const { return spec_.name; }
    const ServiceSpec& spec() const { return spec_; }
    unsigned renames() const { return renames_; }
    const std::string& lastError() const { return lastError_; }
    // Called after each state change (also Registering -> Registering after a rename).
    void setStateCallback(StateCallback callback) { stateCallback_ = std::move(callback); }

    void onClientState(ClientState state, AvahiClient* client) override;

private:
    Publisher(Client& client, ServiceSpec spec);

    struct Glue;  // the C callbacks (publisher.cc)

    void registerService();
    void rename();
    void dropGroup();
    void fail(std::string why);
    void setState(PublisherState state);

    Client& client_;
    ServiceSpec spec_;
    AvahiEntryGroup* group_ = nullptr;
    PublisherState state_ = PublisherState::Waiting;
    unsigned renames_ = 0;
    std::string lastError_;
    StateCallback stateCallback_;
};

}  // namespace possync::avahi
