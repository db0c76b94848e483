// Locator: where a slave's Replica finds its master. StaticLocator serves --master HOST:PORT;
// the daemon adapts Avahi discovery (firmware/discovery) to the same interface.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/result.h"

namespace possync::sync {

struct MasterTarget {
    std::string host;     // numeric address
    uint16_t port = 0;
    std::string device;   // the master's device id when known (from discovery)
    std::string source;   // how it was found: "static", "avahi <service name>"
};

class Locator {
public:
    virtual ~Locator() = default;
    // The master to connect to now, or an error saying why there is none (nothing found, two
    // boards claim master for this store, ...).
    virtual Result<MasterTarget> choose() = 0;
    // Called when the candidates change (a master appeared, moved or left).
    virtual void setOnChange(std::function<void()> onChange) = 0;
    // "static 127.0.0.1:7700", "avahi _possync._tcp store 42".
    virtual std::string describe() const = 0;
};

class StaticLocator final : public Locator {
public:
    StaticLocator(std::string host, uint16_t port) : host_(std::move(host)), port_(port) {}
    Result<MasterTarget> choose() override { return MasterTarget{host_, port_, "", "static"}; }
    void setOnChange(std::function<void()>) override {}
    std::string describe() const override { return "static " + host_ + ":" + std::to_string(port_); }

private:
    std::string host_;
    uint16_t port_;
};

}  // namespace possync::sync
