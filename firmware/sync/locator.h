// Locator: where a slave's Replica finds its master. The daemon adapts discovery's
// MasterFinder (static --master HOST:PORT, or Avahi) to it; tests provide their own.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/result.h"

namespace possync::sync {

struct MasterTarget {
    std::string host;  // numeric address
    uint16_t port = 0;
    std::string device;  // the master's device id when known (from discovery)
    std::string source;  // how it was found: "static", "avahi <service name>"
    uint64_t term = 0;   // the failover term it announces (DESIGN.md §10; 0: none or static)
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

}  // namespace possync::sync
