// Client: one avahi-client connection to avahi-daemon on a libuv loop, kept alive across
// daemon (and D-Bus) restarts.
//
// The client is created with AVAHI_CLIENT_NO_FAIL, so it waits in Connecting while the
// daemon is absent. When Avahi reports AVAHI_CLIENT_FAILURE (daemon restarted, bus gone)
// the AvahiClient is freed and made anew on the next loop turn (never inside its own
// callback); if even that fails (no D-Bus system bus), it retries with a backoff from 0.5 s
// to 10 s. Users (Publisher, Browser) are told every state change: they drop their entry
// groups / browsers when the client is lost and re-create them when it is back, so
// publications and browses survive a daemon restart.
//
// Public headers of platform/avahi include no Avahi or libuv header: firmware code uses
// them with forward declarations only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

struct AvahiClient;
struct uv_loop_s;
struct uv_timer_s;

namespace possync::avahi {

class UvPoll;

enum class ClientState {
    Connecting,   // waiting for avahi-daemon (or the D-Bus system bus) to appear
    Registering,  // connected; the daemon is still probing/announcing its host name
    Running,      // connected and ready: services can be published
    Collision,    // the daemon's host name collided; it is picking another one
    Failure,      // the connection broke; a new one is being made (transient)
};

const char* clientStateName(ClientState state);

// Implemented by objects that keep Avahi objects on a Client (Publisher, Browser).
class ClientUser {
public:
    virtual ~ClientUser() = default;
    // Called on every state change. `client` is the live AvahiClient in Registering,
    // Running and Collision, nullptr otherwise; objects made on an older AvahiClient must
    // be freed during the call when the state is Failure or Connecting (the AvahiClient
    // they belong to is about to be freed).
    virtual void onClientState(ClientState state, AvahiClient* client) = 0;
};

class Client final {
public:
    using StateCallback = std::function<void(ClientState)>;

    // Connects on `loop` (borrowed; must outlive the Client). Fails only if the loop
    // refuses a timer; a missing daemon or bus is not an error (state Connecting).
    static Result<std::unique_ptr<Client>> create(uv_loop_s* loop);
    // Every Publisher/Browser made on this client must be destroyed first.
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    ClientState state() const { return state_; }
    bool connected() const;  // Registering, Running or Collision
    // The daemon's fully qualified host name ("m.local"), empty while not connected.
    std::string hostName() const;
    // The last error Avahi reported, for logs and the console ("" if none).
    const std::string& lastError() const { return lastError_; }
    // Number of AvahiClients made so far (1 + reconnections), for tests and the console.
    unsigned generation() const { return generation_; }

    // Called after users have been told of the change. Must not destroy the Client.
    void setStateCallback(StateCallback callback) { stateCallback_ = std::move(callback); }

    // For Publisher/Browser: registration of users and the live AvahiClient (or nullptr).
    void addUser(ClientUser* user);
    void removeUser(ClientUser* user);
    AvahiClient* raw() const { return connected() ? client_ : nullptr; }

private:
    explicit Client(uv_loop_s* loop);

    struct Glue;  // the C callbacks (client.cc)

    void connect();
    void handleAvahiState(int avahiState);
    void scheduleReconnect(uint64_t delayMs);
    void setState(ClientState state);

    std::unique_ptr<UvPoll> poll_;
    AvahiClient* client_ = nullptr;
    uv_timer_s* retry_ = nullptr;  // heap; freed in its close callback
    ClientState state_ = ClientState::Connecting;
    uint64_t backoffMs_ = 0;
    bool inNew_ = false;     // inside avahi_client_new: callbacks are deferred
    int pendingState_ = -1;  // the last state reported from inside avahi_client_new
    unsigned generation_ = 0;
    std::string lastError_;
    std::vector<ClientUser*> users_;
    StateCallback stateCallback_;
};

}  // namespace possync::avahi
