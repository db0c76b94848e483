#include "avahi/publisher.h"

#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/domain.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/strlst.h>

#include "log/log.h"

namespace possync::avahi {

POSSYNC_LOG_DECLARE(Avahi);

namespace {

// Renames tried in one registration before giving up (each is "name #N").
constexpr unsigned kMaxRenamesPerTry = 32;

std::string clientError(AvahiClient* c) {
    return c != nullptr ? avahi_strerror(avahi_client_errno(c)) : "no connection to avahi-daemon";
}

// The TXT list in the given order (avahi_string_list_add_pair prepends, so walk backwards).
AvahiStringList* toStringList(const TxtList& txt) {
    AvahiStringList* list = nullptr;
    for (auto it = txt.rbegin(); it != txt.rend(); ++it)
        list = avahi_string_list_add_pair(list, it->first.c_str(), it->second.c_str());
    return list;
}

}  // namespace

const char* publisherStateName(PublisherState state) {
    switch (state) {
        case PublisherState::Waiting: return "waiting";
        case PublisherState::Registering: return "registering";
        case PublisherState::Established: return "established";
        case PublisherState::Failed: return "failed";
    }
    return "?";
}

Status validateServiceSpec(const ServiceSpec& spec) {
    if (spec.name.empty() || !avahi_is_valid_service_name(spec.name.c_str()))
        return makeError(Errc::InvalidArgument,
                         "service name must be 1..63 bytes of text: \"" + spec.name + "\"");
    if (!avahi_is_valid_service_type_strict(spec.type.c_str()))
        return makeError(Errc::InvalidArgument,
                         "invalid service type \"" + spec.type + "\" (want e.g. _possync._tcp)");
    if (spec.port == 0) return makeError(Errc::InvalidArgument, "service port must be 1..65535");
    for (const auto& [key, value] : spec.txt) {
        bool keyOk = !key.empty();
        for (char ch : key)
            if (ch < 0x20 || ch > 0x7e || ch == '=') keyOk = false;
        if (!keyOk)
            return makeError(Errc::InvalidArgument,
                             "TXT key \"" + key + "\" must be printable ASCII without '='");
        if (key.size() + 1 + value.size() > 255)
            return makeError(Errc::TooLarge, "TXT item \"" + key + "=...\" is longer than 255 bytes");
    }
    return {};
}

struct Publisher::Glue {
    static void onGroup(AvahiEntryGroup* g, AvahiEntryGroupState state, void* userdata) {
        Publisher* self = static_cast<Publisher*>(userdata);
        if (g != self->group_) return;  // reported while avahi_entry_group_new runs
        switch (state) {
            case AVAHI_ENTRY_GROUP_ESTABLISHED:
                LOG(Avahi, Info) << "published \"" << self->spec_.name << "\" " << self->spec_.type
                                 << " port " << self->spec_.port;
                self->setState(PublisherState::Established);
                break;
            case AVAHI_ENTRY_GROUP_COLLISION:
                // Another host probed or announced the same name first.
                self->rename();
                self->registerService();
                break;
            case AVAHI_ENTRY_GROUP_FAILURE:
                self->fail("entry group failed: " + clientError(avahi_entry_group_get_client(g)));
                break;
            case AVAHI_ENTRY_GROUP_UNCOMMITED:
            case AVAHI_ENTRY_GROUP_REGISTERING: break;
        }
    }
};

Publisher::Publisher(Client& client, ServiceSpec spec) : client_(client), spec_(std::move(spec)) {}

Result<std::unique_ptr<Publisher>> Publisher::create(Client& client, ServiceSpec spec) {
    POSSYNC_TRY(validateServiceSpec(spec));
    std::unique_ptr<Publisher> p(new Publisher(client, std::move(spec)));
    client.addUser(p.get());
    if (client.state() == ClientState::Running) p->registerService();
    return p;
}

Publisher::~Publisher() {
    client_.removeUser(this);
    dropGroup();
}

Status Publisher::update(uint16_t port, TxtList txt) {
    ServiceSpec next = spec_;
    next.port = port;
    next.txt = std::move(txt);
    POSSYNC_TRY(validateServiceSpec(next));
    bool txtOnly = next.port == spec_.port;
    spec_ = std::move(next);
    if (state_ == PublisherState::Established && txtOnly && group_ != nullptr) {
        AvahiStringList* list = toStringList(spec_.txt);
        int rc = avahi_entry_group_update_service_txt_strlst(
            group_, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, static_cast<AvahiPublishFlags>(0),
            spec_.name.c_str(), spec_.type.c_str(), nullptr, list);
        avahi_string_list_free(list);
        if (rc == AVAHI_OK) {
            LOG(Avahi, Info) << "updated TXT of \"" << spec_.name << "\"";
            return {};
        }
        LOG(Avahi, Warning) << "TXT update of \"" << spec_.name << "\" failed (" << avahi_strerror(rc)
                            << "); re-registering";
    }
    registerService();
    return {};
}

void Publisher::onClientState(ClientState state, AvahiClient*) {
    switch (state) {
        case ClientState::Running: registerService(); break;
        case ClientState::Registering:
        case ClientState::Collision:
            // The daemon is (re)probing its host name: withdraw until it runs again.
            if (group_ != nullptr) avahi_entry_group_reset(group_);
            setState(PublisherState::Waiting);
            break;
        case ClientState::Connecting:
        case ClientState::Failure:
            dropGroup();  // belongs to an AvahiClient that is going away
            setState(PublisherState::Waiting);
            break;
    }
}

void Publisher::registerService() {
    AvahiClient* c = client_.raw();
    if (c == nullptr || client_.state() != ClientState::Running) {
        setState(PublisherState::Waiting);
        return;
    }
    if (group_ == nullptr) {
        group_ = avahi_entry_group_new(c, &Glue::onGroup, this);
        if (group_ == nullptr) return fail("cannot create entry group: " + clientError(c));
    } else {
        avahi_entry_group_reset(group_);
    }
    for (unsigned attempt = 0; attempt <= kMaxRenamesPerTry; ++attempt) {
        AvahiStringList* list = toStringList(spec_.txt);
        int rc = avahi_entry_group_add_service_strlst(group_, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC,
                                                      static_cast<AvahiPublishFlags>(0), spec_.name.c_str(),
                                                      spec_.type.c_str(), nullptr, nullptr, spec_.port, list);
        avahi_string_list_free(list);
        if (rc == AVAHI_ERR_COLLISION) {  // a local service already has this name
            rename();
            continue;
        }
        if (rc < 0) return fail("cannot add service \"" + spec_.name + "\": " + avahi_strerror(rc));
        rc = avahi_entry_group_commit(group_);
        if (rc < 0) return fail("cannot commit service \"" + spec_.name + "\": " + avahi_strerror(rc));
        setState(PublisherState::Registering);
        return;
    }
    fail("gave up after " + std::to_string(kMaxRenamesPerTry) + " name collisions");
}

void Publisher::rename() {
    char* alt = avahi_alternative_service_name(spec_.name.c_str());
    std::string old = spec_.name;
    spec_.name = alt;
    avahi_free(alt);
    ++renames_;
    LOG(Avahi, Warning) << "service name \"" << old << "\" is taken; renamed to \"" << spec_.name << "\"";
}

void Publisher::dropGroup() {
    if (group_ == nullptr) return;
    AvahiEntryGroup* g = group_;
    group_ = nullptr;
    avahi_entry_group_free(g);
}

void Publisher::fail(std::string why) {
    lastError_ = std::move(why);
    LOG(Avahi, Error) << "publishing \"" << spec_.name << "\": " << lastError_;
    setState(PublisherState::Failed);
}

void Publisher::setState(PublisherState state) {
    bool changed = state != state_;
    state_ = state;
    // Registering is reported again after a rename so users see the new name.
    if ((changed || state == PublisherState::Registering) && stateCallback_) stateCallback_(state);
}

}  // namespace possync::avahi
