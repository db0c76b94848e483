#include "base/host_port.h"

#include "base/bytes.h"

namespace possync {

Result<HostPort> parseHostPort(std::string_view text, PortUse use) {
    auto bad = [&](std::string_view why) {
        return makeError(Errc::InvalidArgument,
                         "bad address \"" + std::string(text) + "\": " + std::string(why));
    };
    HostPort hp;
    std::string_view host, portText;
    if (!text.empty() && text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos) return bad("missing ']'");
        host = text.substr(1, close - 1);
        if (close + 1 >= text.size() || text[close + 1] != ':') return bad("want [IPV6]:PORT");
        if (host.find(':') == std::string_view::npos) return bad("brackets are for IPv6 addresses");
        portText = text.substr(close + 2);
    } else {
        size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) return bad("want HOST:PORT");
        host = text.substr(0, colon);
        if (host.find(':') != std::string_view::npos) return bad("write IPv6 addresses as [ADDR]:PORT");
        portText = text.substr(colon + 1);
    }
    if (host.empty()) return bad("empty host");
    for (char ch : host)
        if (ch <= 0x20 || ch > 0x7e || ch == '[' || ch == ']')
            return bad("the host has spaces, brackets or control characters");
    const uint64_t lowest = use == PortUse::Listen ? 0 : 1;
    std::optional<uint64_t> port = parseU64(portText);
    if (!port || *port < lowest || *port > 65535)
        return bad(use == PortUse::Listen ? "the port must be 0..65535" : "the port must be 1..65535");
    hp.host = std::string(host);
    hp.port = static_cast<uint16_t>(*port);
    return hp;
}

std::string formatHostPort(std::string_view host, uint16_t port) {
    // Built with append: GCC 12 at -O3 reports a false -Wrestrict on "[" + std::string(...).
    const bool v6 = host.find(':') != std::string_view::npos;
    std::string out;
    out.reserve(host.size() + 8);
    if (v6) out.push_back('[');
    out.append(host);
    if (v6) out.push_back(']');
    out.push_back(':');
    out.append(std::to_string(port));
    return out;
}

}  // namespace possync
