#include "discovery/host_port.h"

#include "base/bytes.h"

namespace possync::discovery {

Result<HostPort> parseHostPort(std::string_view text) {
    auto bad = [&](const std::string& why) {
        return makeError(Errc::InvalidArgument, "bad master address \"" + std::string(text) + "\": " + why);
    };
    HostPort hp;
    std::string_view portText;
    if (!text.empty() && text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos) return bad("missing ']'");
        hp.host = std::string(text.substr(1, close - 1));
        if (close + 1 >= text.size() || text[close + 1] != ':') return bad("want [ADDR]:PORT");
        portText = text.substr(close + 2);
    } else {
        size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) return bad("want HOST:PORT");
        hp.host = std::string(text.substr(0, colon));
        if (hp.host.find(':') != std::string::npos) return bad("write IPv6 addresses as [ADDR]:PORT");
        portText = text.substr(colon + 1);
    }
    if (hp.host.empty()) return bad("empty host");
    for (char ch : hp.host)
        if (ch <= 0x20 || ch > 0x7e) return bad("host has spaces or control characters");
    std::optional<uint64_t> port = parseU64(portText);
    if (!port || *port == 0 || *port > 65535) return bad("port must be 1..65535");
    hp.port = static_cast<uint16_t>(*port);
    return hp;
}

}  // namespace possync::discovery
