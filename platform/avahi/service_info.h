// Plain data exchanged with platform/avahi: TXT records and resolved services.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace possync::avahi {

// TXT record items "key=value", in publication order.
using TxtList = std::vector<std::pair<std::string, std::string>>;

// One resolved service instance as a browser reports it.
struct ServiceInfo {
    std::string name;     // instance name, e.g. "possync-42-devA"
    std::string type;     // e.g. "_possync._tcp"
    std::string domain;   // e.g. "local"
    std::string host;     // target host name, e.g. "m.local"
    std::string address;  // numeric IPv4 address, e.g. "10.231.0.10"
    uint16_t port = 0;
    std::map<std::string, std::string> txt;  // items without '=' map to ""
    int interfaceIndex = -1;                 // where it was seen (if_nametoindex)

    bool operator==(const ServiceInfo&) const = default;
};

}  // namespace possync::avahi
