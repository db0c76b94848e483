// Browser: browses one DNS-SD service type through avahi-daemon and resolves every
// instance (IPv4), reporting found / removed / all-for-now.
//
// Each instance gets a resolver that stays open while the instance is listed, so a change
// of its TXT record or port is reported as another found(). An instance seen on several
// interfaces is reported by name: found() for each (re)resolution, removed() once it has
// left every interface. When the Client loses the daemon everything known is reported
// removed, and browsing restarts when the daemon is back.
//
// A listed instance is not proof of life: a board that died without a goodbye stays
// listed (and even resolves from cache) for minutes. Callers must still try to connect.
//
// Must be destroyed before its Client. Callbacks must not destroy the Browser.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "avahi/client.h"
#include "avahi/service_info.h"
#include "base/result.h"

struct AvahiServiceBrowser;

namespace possync::avahi {

struct BrowserCallbacks {
    std::function<void(const ServiceInfo&)> found;         // new, or its record changed
    std::function<void(const std::string& name)> removed;  // gone from every interface
    std::function<void()> allForNow;  // the daemon sent what it had cached (after each (re)start)
};

class Browser final : public ClientUser {
public:
    // Starts browsing `type` (e.g. "_possync._tcp") as soon as the client is connected.
    static Result<std::unique_ptr<Browser>> create(Client& client, std::string type,
                                                   BrowserCallbacks callbacks);
    ~Browser() override;
    Browser(const Browser&) = delete;
    Browser& operator=(const Browser&) = delete;

    bool browsing() const { return browser_ != nullptr; }
    bool allForNowSeen() const { return allForNow_; }
    // The instances resolved so far (one per name, the latest resolution).
    std::vector<ServiceInfo> services() const;
    // Instances listed but not (yet) resolved, e.g. a dead board whose cache entry lingers.
    size_t unresolvedCount() const;
    const std::string& lastError() const { return lastError_; }

    void onClientState(ClientState state, AvahiClient* client) override;

private:
    Browser(Client& client, std::string type, BrowserCallbacks callbacks);

    struct Glue;  // the C callbacks (browser.cc)
    struct Item;  // one (interface, protocol, name, type, domain) being resolved

    void start(AvahiClient* client);
    void stop();
    void itemNew(int interface, int protocol, const char* name, const char* type, const char* domain);
    void itemRemove(int interface, int protocol, const char* name, const char* type, const char* domain);
    void itemResolved(Item* item, ServiceInfo info);
    void dropItem(std::map<std::string, std::unique_ptr<Item>>::iterator it);

    Client& client_;
    std::string type_;
    BrowserCallbacks callbacks_;
    AvahiServiceBrowser* browser_ = nullptr;
    bool allForNow_ = false;
    std::map<std::string, std::unique_ptr<Item>> items_;  // key: interface/protocol/name/type/domain
    std::map<std::string, ServiceInfo> reported_;         // by name: last found() not yet removed()
    std::string lastError_;
};

}  // namespace possync::avahi
