#include "avahi/browser.h"

#include <avahi-client/lookup.h>
#include <avahi-common/address.h>
#include <avahi-common/domain.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/strlst.h>

#include "log/log.h"

namespace possync::avahi {

POSSYNC_LOG_DECLARE(Avahi);

struct Browser::Item {
    Browser* owner;
    std::string key;
    std::string name;
    AvahiServiceResolver* resolver = nullptr;
    bool resolved = false;
    ServiceInfo info;
    // The host a fresh resolver was started for after the service moved to it (see onResolve).
    std::string freshFor;
};

namespace {

std::string itemKey(int interface, int protocol, const char* name, const char* type, const char* domain) {
    // One browse result is identified by all five parts; the unit separator keeps them apart.
    std::string key = std::to_string(interface) + '\x1f' + std::to_string(protocol) + '\x1f';
    key += name;
    key += '\x1f';
    key += type;
    key += '\x1f';
    key += domain;
    return key;
}

std::map<std::string, std::string> txtMap(AvahiStringList* txt) {
    std::map<std::string, std::string> out;
    for (AvahiStringList* l = txt; l != nullptr; l = avahi_string_list_get_next(l)) {
        char* key = nullptr;
        char* value = nullptr;
        if (avahi_string_list_get_pair(l, &key, &value, nullptr) < 0) continue;
        out[key] = value != nullptr ? value : "";
        avahi_free(key);
        avahi_free(value);
    }
    return out;
}

}  // namespace

struct Browser::Glue {
    static void onBrowse(AvahiServiceBrowser* b, AvahiIfIndex interface, AvahiProtocol protocol,
                         AvahiBrowserEvent event, const char* name, const char* type, const char* domain,
                         AvahiLookupResultFlags, void* userdata) {
        Browser* self = static_cast<Browser*>(userdata);
        if (b != self->browser_) return;  // reported while avahi_service_browser_new runs
        switch (event) {
            case AVAHI_BROWSER_NEW: self->itemNew(interface, protocol, name, type, domain); break;
            case AVAHI_BROWSER_REMOVE: self->itemRemove(interface, protocol, name, type, domain); break;
            case AVAHI_BROWSER_ALL_FOR_NOW:
                self->allForNow_ = true;
                if (self->callbacks_.allForNow) self->callbacks_.allForNow();
                break;
            case AVAHI_BROWSER_CACHE_EXHAUSTED: break;
            case AVAHI_BROWSER_FAILURE:
                // Usually the client going away; browsing restarts with the client.
                self->lastError_ = avahi_strerror(avahi_client_errno(avahi_service_browser_get_client(b)));
                LOG(Avahi, Warning) << "browsing " << self->type_ << " failed: " << self->lastError_;
                self->stop();
                break;
        }
    }

    static void onResolve(AvahiServiceResolver* r, AvahiIfIndex interface, AvahiProtocol protocol,
                          AvahiResolverEvent event, const char* name, const char* type, const char* domain,
                          const char* host, const AvahiAddress* address, uint16_t port, AvahiStringList* txt,
                          AvahiLookupResultFlags, void* userdata) {
        Item* item = static_cast<Item*>(userdata);
        if (r != item->resolver) return;  // reported while avahi_service_resolver_new runs
        Browser* self = item->owner;
        if (event == AVAHI_RESOLVER_FAILURE) {
            // Typically a timeout: the instance is listed but does not answer (a dead board's
            // lingering cache entry). Keep it listed-unresolved; a new announcement brings
            // a NEW browse event or a fresh resolution.
            LOG(Avahi, Info) << "cannot resolve \"" << name << "\": "
                             << avahi_strerror(avahi_client_errno(avahi_service_resolver_get_client(r)));
            avahi_service_resolver_free(r);
            item->resolver = nullptr;
            return;
        }
        ServiceInfo info;
        info.name = name;
        info.type = type;
        info.domain = domain;
        info.host = host != nullptr ? host : "";
        if (address != nullptr) {
            char text[AVAHI_ADDRESS_STR_MAX];
            avahi_address_snprint(text, sizeof text, address);
            info.address = text;
        }
        info.port = port;
        info.txt = txtMap(txt);
        info.interfaceIndex = interface;
        // Avahi 0.8's long-lived resolver follows a change of the service's SRV target (the
        // master came back on another board under the same name) but keeps the old host's
        // address record: it reports the new host with the OLD address and never corrects it.
        // When the host changes, resolve once more from scratch and report that answer.
        if (item->resolved && info.host != item->info.host && info.host != item->freshFor) {
            LOG(Avahi, Info) << "\"" << name << "\" moved from " << item->info.host << " to " << info.host
                             << ": resolving it again";
            item->freshFor = info.host;
            avahi_service_resolver_free(r);
            item->resolver = nullptr;
            if (AvahiClient* c = self->client_.raw())
                item->resolver =
                    avahi_service_resolver_new(c, interface, protocol, name, type, domain, AVAHI_PROTO_INET,
                                               static_cast<AvahiLookupFlags>(0), &Glue::onResolve, item);
            return;
        }
        item->freshFor.clear();
        self->itemResolved(item, std::move(info));
    }
};

Browser::Browser(Client& client, std::string type, BrowserCallbacks callbacks)
    : client_(client), type_(std::move(type)), callbacks_(std::move(callbacks)) {}

Result<std::unique_ptr<Browser>> Browser::create(Client& client, std::string type,
                                                 BrowserCallbacks callbacks) {
    if (!avahi_is_valid_service_type_strict(type.c_str()))
        return makeError(Errc::InvalidArgument,
                         "invalid service type \"" + type + "\" (want e.g. _possync._tcp)");
    std::unique_ptr<Browser> b(new Browser(client, std::move(type), std::move(callbacks)));
    client.addUser(b.get());
    if (AvahiClient* c = client.raw()) b->start(c);
    return b;
}

Browser::~Browser() {
    client_.removeUser(this);
    for (auto& [key, item] : items_) {
        (void)key;
        if (item->resolver != nullptr) avahi_service_resolver_free(item->resolver);
    }
    items_.clear();
    if (browser_ != nullptr) avahi_service_browser_free(browser_);
}

std::vector<ServiceInfo> Browser::services() const {
    std::vector<ServiceInfo> out;
    for (const auto& [name, info] : reported_) {
        (void)name;
        out.push_back(info);
    }
    return out;
}

size_t Browser::unresolvedCount() const {
    size_t n = 0;
    for (const auto& [key, item] : items_) {
        (void)key;
        if (!item->resolved) ++n;
    }
    return n;
}

void Browser::onClientState(ClientState state, AvahiClient* client) {
    if (client != nullptr) {
        if (browser_ == nullptr) start(client);
    } else if (state == ClientState::Connecting || state == ClientState::Failure) {
        stop();  // its AvahiClient is going away
    }
}

void Browser::start(AvahiClient* client) {
    allForNow_ = false;
    // IPv4 only: the boards' daemons run with use-ipv6=no and slaves connect over IPv4.
    browser_ = avahi_service_browser_new(client, AVAHI_IF_UNSPEC, AVAHI_PROTO_INET, type_.c_str(), nullptr,
                                         static_cast<AvahiLookupFlags>(0), &Glue::onBrowse, this);
    if (browser_ == nullptr) {
        lastError_ = avahi_strerror(avahi_client_errno(client));
        LOG(Avahi, Error) << "cannot browse " << type_ << ": " << lastError_;
        return;
    }
    LOG(Avahi, Debug) << "browsing " << type_;
}

void Browser::stop() {
    for (auto& [key, item] : items_) {
        (void)key;
        if (item->resolver != nullptr) avahi_service_resolver_free(item->resolver);
    }
    items_.clear();
    if (browser_ != nullptr) {
        AvahiServiceBrowser* b = browser_;
        browser_ = nullptr;
        avahi_service_browser_free(b);
    }
    allForNow_ = false;
    // Nothing is known any more: say so, so users do not keep acting on stale entries.
    std::map<std::string, ServiceInfo> gone;
    gone.swap(reported_);
    for (const auto& [name, info] : gone) {
        (void)info;
        if (callbacks_.removed) callbacks_.removed(name);
    }
}

void Browser::itemNew(int interface, int protocol, const char* name, const char* type, const char* domain) {
    std::string key = itemKey(interface, protocol, name, type, domain);
    auto& slot = items_[key];
    if (slot && slot->resolver != nullptr) return;  // already resolving
    if (!slot) slot = std::make_unique<Item>(Item{this, key, name});
    Item* item = slot.get();
    AvahiClient* c = client_.raw();
    if (c == nullptr) return;
    item->resolver = avahi_service_resolver_new(c, interface, static_cast<AvahiProtocol>(protocol), name,
                                                type, domain, AVAHI_PROTO_INET,
                                                static_cast<AvahiLookupFlags>(0), &Glue::onResolve, item);
    if (item->resolver == nullptr)
        LOG(Avahi, Warning) << "cannot resolve \"" << name << "\": " << avahi_strerror(avahi_client_errno(c));
}

void Browser::itemRemove(int interface, int protocol, const char* name, const char* type,
                         const char* domain) {
    auto it = items_.find(itemKey(interface, protocol, name, type, domain));
    if (it != items_.end()) dropItem(it);
}

void Browser::dropItem(std::map<std::string, std::unique_ptr<Item>>::iterator it) {
    std::string name = it->second->name;
    if (it->second->resolver != nullptr) avahi_service_resolver_free(it->second->resolver);
    items_.erase(it);
    for (const auto& [key, item] : items_) {
        (void)key;
        if (item->name == name && item->resolved) {
            // Still seen elsewhere: report what that interface resolved.
            if (reported_[name] != item->info) {
                reported_[name] = item->info;
                if (callbacks_.found) callbacks_.found(item->info);
            }
            return;
        }
    }
    if (reported_.erase(name) != 0 && callbacks_.removed) callbacks_.removed(name);
}

void Browser::itemResolved(Item* item, ServiceInfo info) {
    item->resolved = true;
    item->info = info;
    auto it = reported_.find(info.name);
    if (it != reported_.end() && it->second == info) return;  // nothing new
    reported_[info.name] = info;
    if (callbacks_.found) callbacks_.found(info);
}

}  // namespace possync::avahi
