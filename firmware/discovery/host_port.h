// HOST:PORT parsing for --master (static discovery).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace possync::discovery {

struct HostPort {
    std::string host;  // a name or a numeric address (IPv6 without the brackets)
    uint16_t port = 0;
};

// "10.0.0.5:7700", "m.local:7700", "[fe80::1]:7700". Errors name the bad part.
Result<HostPort> parseHostPort(std::string_view text);

}  // namespace possync::discovery
