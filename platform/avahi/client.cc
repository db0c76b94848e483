#include "avahi/client.h"

#include <uv.h>

#include <algorithm>

#include <avahi-client/client.h>
#include <avahi-common/error.h>

#include "avahi/uv_poll.h"
#include "log/log.h"

namespace possync::avahi {

POSSYNC_LOG_DECLARE(Avahi);
POSSYNC_LOG_CATEGORY(Avahi)

namespace {
constexpr uint64_t kFirstBackoffMs = 500;
constexpr uint64_t kMaxBackoffMs = 10000;
}  // namespace

const char* clientStateName(ClientState state) {
    switch (state) {
        case ClientState::Connecting: return "connecting";
        case ClientState::Registering: return "registering";
        case ClientState::Running: return "running";
        case ClientState::Collision: return "host-name-collision";
        case ClientState::Failure: return "failure";
    }
    return "?";
}

struct Client::Glue {
    static void onState(AvahiClient* c, AvahiClientState state, void* userdata) {
        Client* self = static_cast<Client*>(userdata);
        if (self->inNew_) {
            // avahi_client_new reports the first state before it returns; act on it only
            // once the client surely exists (see connect()).
            self->pendingState_ = state;
            return;
        }
        if (c != self->client_) return;  // a client we already gave up on
        self->handleAvahiState(state);
    }

    static void onRetry(uv_timer_t* timer) {
        Client* self = static_cast<Client*>(timer->data);
        if (self->client_ != nullptr) {
            avahi_client_free(self->client_);
            self->client_ = nullptr;
        }
        self->connect();
    }
};

Client::Client(uv_loop_s* loop) : poll_(std::make_unique<UvPoll>(loop)) {}

Result<std::unique_ptr<Client>> Client::create(uv_loop_s* loop) {
    std::unique_ptr<Client> client(new Client(loop));
    auto* timer = new uv_timer_t;
    int rc = uv_timer_init(loop, timer);
    if (rc != 0) {
        delete timer;
        return makeError(Errc::Io, std::string("avahi client: uv_timer_init: ") + uv_strerror(rc));
    }
    timer->data = client.get();
    client->retry_ = timer;
    client->connect();
    return client;
}

Client::~Client() {
    if (!users_.empty())
        LOG(Avahi, Error) << "avahi client destroyed with " << users_.size()
                          << " publishers/browsers still attached";
    if (client_ != nullptr) avahi_client_free(client_);
    client_ = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(retry_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

bool Client::connected() const {
    return state_ == ClientState::Registering || state_ == ClientState::Running ||
           state_ == ClientState::Collision;
}

std::string Client::hostName() const {
    if (!connected() || client_ == nullptr) return {};
    const char* name = avahi_client_get_host_name_fqdn(client_);
    return name != nullptr ? name : "";
}

void Client::addUser(ClientUser* user) {
    if (std::find(users_.begin(), users_.end(), user) == users_.end()) users_.push_back(user);
}

void Client::removeUser(ClientUser* user) {
    users_.erase(std::remove(users_.begin(), users_.end(), user), users_.end());
}

void Client::connect() {
    ++generation_;
    int err = 0;
    inNew_ = true;
    pendingState_ = -1;
    AvahiClient* c = avahi_client_new(poll_->api(), AVAHI_CLIENT_NO_FAIL, &Glue::onState, this, &err);
    inNew_ = false;
    if (c == nullptr) {
        // With NO_FAIL this happens when there is no D-Bus system bus at all.
        lastError_ = avahi_strerror(err);
        backoffMs_ = backoffMs_ == 0 ? kFirstBackoffMs : std::min(backoffMs_ * 2, kMaxBackoffMs);
        LOG(Avahi, Warning) << "cannot connect to avahi-daemon: " << lastError_ << "; retrying in "
                            << backoffMs_ << " ms";
        if (state_ != ClientState::Connecting) setState(ClientState::Connecting);
        scheduleReconnect(backoffMs_);
        return;
    }
    client_ = c;
    if (pendingState_ >= 0) handleAvahiState(pendingState_);
}

void Client::scheduleReconnect(uint64_t delayMs) {
    uv_timer_start(retry_, &Glue::onRetry, delayMs, 0);
}

void Client::handleAvahiState(int avahiState) {
    switch (static_cast<AvahiClientState>(avahiState)) {
        case AVAHI_CLIENT_S_REGISTERING: setState(ClientState::Registering); break;
        case AVAHI_CLIENT_S_RUNNING:
            backoffMs_ = 0;
            if (const char* host = avahi_client_get_host_name_fqdn(client_))
                LOG(Avahi, Info) << "connected to avahi-daemon (host " << host << ")";
            setState(ClientState::Running);
            break;
        case AVAHI_CLIENT_S_COLLISION:
            LOG(Avahi, Warning) << "avahi-daemon host name collision; the daemon picks a new name";
            setState(ClientState::Collision);
            break;
        case AVAHI_CLIENT_CONNECTING:
            LOG(Avahi, Info) << "waiting for avahi-daemon";
            setState(ClientState::Connecting);
            break;
        case AVAHI_CLIENT_FAILURE: {
            lastError_ = avahi_strerror(avahi_client_errno(client_));
            // Free and re-create on the next loop turn (never inside the client's own callback);
            // back off if the daemon keeps failing right after it comes up.
            uint64_t delay = backoffMs_;
            backoffMs_ = backoffMs_ == 0 ? kFirstBackoffMs : std::min(backoffMs_ * 2, kMaxBackoffMs);
            LOG(Avahi, Warning) << "avahi client failed: " << lastError_ << "; reconnecting in " << delay
                                << " ms";
            setState(ClientState::Failure);
            scheduleReconnect(delay);
            break;
        }
    }
}

void Client::setState(ClientState state) {
    state_ = state;
    AvahiClient* live = connected() ? client_ : nullptr;
    // Users may detach (or attach others) while being told: walk a copy.
    std::vector<ClientUser*> users = users_;
    for (ClientUser* u : users) {
        if (std::find(users_.begin(), users_.end(), u) == users_.end()) continue;
        u->onClientState(state, live);
    }
    if (stateCallback_) stateCallback_(state);
}

}  // namespace possync::avahi
