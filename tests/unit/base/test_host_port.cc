// HOST:PORT: the one parser of the tree (base/host_port.h), good and bad text for both uses.
#include <doctest/doctest.h>

#include "base/host_port.h"

using namespace possync;

TEST_CASE("host_port: names, IPv4 and bracketed IPv6 are read") {
    struct Good {
        const char* text;
        const char* host;
        uint16_t port;
    };
    for (const Good& g : {Good{"10.0.0.5:7700", "10.0.0.5", 7700}, Good{"localhost:1", "localhost", 1},
                          Good{"m.local:65535", "m.local", 65535}, Good{"[::1]:7700", "::1", 7700},
                          Good{"[fe80::1%eth0]:7700", "fe80::1%eth0", 7700},
                          Good{"master-1.store.lan:7700", "master-1.store.lan", 7700}}) {
        INFO(g.text);
        auto r = parseHostPort(g.text);
        REQUIRE(r.ok());
        CHECK(r->host == g.host);
        CHECK(r->port == g.port);
        // What formatHostPort writes reads back the same.
        CHECK(formatHostPort(r->host, r->port) == g.text);
    }
}

TEST_CASE("host_port: bad text is refused with a reason naming it") {
    struct Bad {
        const char* text;
        const char* why;
    };
    for (const Bad& b : {
             Bad{"", "want HOST:PORT"},
             Bad{"master.lan", "want HOST:PORT"},  // missing port
             Bad{"master.lan:", "the port must be 1..65535"},
             Bad{"h:0", "the port must be 1..65535"},  // 0 only for a listener
             Bad{"h:65536", "the port must be 1..65535"},
             Bad{"h:abc", "the port must be 1..65535"},
             Bad{"h:-1", "the port must be 1..65535"},
             Bad{"h:+7", "the port must be 1..65535"},
             Bad{"h:99999999999999999999999", "the port must be 1..65535"},
             Bad{":7700", "empty host"},
             Bad{"[]:7700", "brackets are for IPv6 addresses"},
             Bad{"::1:7700", "write IPv6 addresses as [ADDR]:PORT"},  // IPv6 without brackets
             Bad{"fe80::1:7700", "write IPv6 addresses as [ADDR]:PORT"},
             Bad{"[::1]7700", "want [IPV6]:PORT"},
             Bad{"[::1]", "want [IPV6]:PORT"},
             Bad{"[::1:7700", "missing ']'"},
             Bad{"[10.0.0.1]:7700", "brackets are for IPv6 addresses"},
             Bad{"a b:1", "spaces"},
             Bad{"a]:1", "brackets"},
         }) {
        INFO(b.text);
        auto r = parseHostPort(b.text);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Errc::InvalidArgument);
        CHECK(r.error().message.find("\"" + std::string(b.text) + "\"") != std::string::npos);
        CHECK(r.error().message.find(b.why) != std::string::npos);
    }
}

TEST_CASE("host_port: a listening address may ask for port 0, nothing else changes") {
    auto any = parseHostPort("127.0.0.1:0", PortUse::Listen);
    REQUIRE(any.ok());
    CHECK(any->port == 0);
    auto v6 = parseHostPort("[::]:0", PortUse::Listen);
    REQUIRE(v6.ok());
    CHECK(v6->host == "::");
    CHECK(parseHostPort("0.0.0.0:7700", PortUse::Listen).ok());
    for (const char* bad : {"127.0.0.1:65536", ":0", "0.0.0.0", "::1:0", "127.0.0.1:x"}) {
        INFO(bad);
        CHECK_FALSE(parseHostPort(bad, PortUse::Listen).ok());
    }
    CHECK_FALSE(parseHostPort("127.0.0.1:0", PortUse::Connect).ok());
}
