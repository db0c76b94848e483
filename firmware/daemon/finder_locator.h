// FinderLocator: discovery::MasterFinder (static or Avahi) seen as the sync engine's Locator.
#pragma once

#include "discovery/master_finder.h"
#include "sync/locator.h"

namespace possync::daemon {

class FinderLocator final : public sync::Locator {
public:
    explicit FinderLocator(discovery::MasterFinder& finder) : finder_(finder) {}

    Result<sync::MasterTarget> choose() override {
        auto c = finder_.choose();
        if (!c) return c.takeError();
        return sync::MasterTarget{c->address, c->port, c->deviceId,
                                  c->isStatic ? "static" : "avahi " + c->serviceName, c->term};
    }
    void setOnChange(std::function<void()> onChange) override {
        finder_.setChangeCallback([onChange](const discovery::Change&) { onChange(); });
    }
    std::string describe() const override { return finder_.snapshot().source; }

private:
    discovery::MasterFinder& finder_;
};

}  // namespace possync::daemon
