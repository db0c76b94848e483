// HOST:PORT text: the one grammar for every address possync reads or prints.
//
// Grammar (the same for --master, --listen, config files, tools and logs):
//   HOST ":" PORT        HOST is a name ("master.local") or an IPv4 literal; no ':' in it
//   "[" IPV6 "]" ":" PORT  an IPv6 literal (optionally with %scope) is always in brackets
// HOST is never empty and holds only printable ASCII without spaces or brackets. PORT is
// decimal, 1..65535; a listening address may also say 0 ("any free port"). Whether HOST is a
// numeric address or a name to resolve is decided by whoever uses it (platform/uv).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace possync {

struct HostPort {
    std::string host;  // a name or a numeric address; IPv6 without its brackets
    uint16_t port = 0;
};

// What the address is for: only a listener may ask for port 0.
enum class PortUse {
    Connect,  // a peer to connect to: port 1..65535
    Listen,   // a local address to bind: port 0..65535 (0 = the OS picks)
};

// Errc::InvalidArgument with one line naming the text and what is wrong with it.
Result<HostPort> parseHostPort(std::string_view text, PortUse use = PortUse::Connect);
// "1.2.3.4:7000", "name:7000" or "[::1]:7000": text parseHostPort reads back.
std::string formatHostPort(std::string_view host, uint16_t port);

}  // namespace possync
