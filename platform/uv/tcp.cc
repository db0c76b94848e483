#include "uv/tcp.h"

#include <cstring>

#include "base/bytes.h"
#include "uv/internal.h"
#include "uv/loop.h"

namespace possync::uv {

namespace {

std::string_view stripBrackets(std::string_view host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
    return host;
}

// A numeric IPv4 or IPv6 literal (IPv6 may carry a %scope) and a port as a sockaddr.
Result<sockaddr_storage> numericAddress(std::string_view hostText, uint16_t port) {
    std::string host(stripBrackets(hostText));
    sockaddr_storage addr{};
    if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) == 0) return addr;
    addr = {};
    if (host.find(':') != std::string::npos &&
        uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) == 0)
        return addr;
    return makeError(Errc::InvalidArgument,
                     "not a numeric IP address: '" + host + "' (host names are resolved by discovery)");
}

std::string nameOf(const sockaddr_storage& addr) {
    char text[INET6_ADDRSTRLEN + 8] = {};
    if (addr.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
        uv_ip4_name(in, text, sizeof text);
        return formatHostPort(text, ntohs(in->sin_port));
    }
    if (addr.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
        uv_ip6_name(in6, text, sizeof text);
        return formatHostPort(text, ntohs(in6->sin6_port));
    }
    return "?";
}

}  // namespace

Result<HostPort> parseHostPort(std::string_view text) {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos)
        return makeError(Errc::InvalidArgument, "expected HOST:PORT, got '" + std::string(text) + "'");
    std::string_view host = text.substr(0, colon);
    std::string_view portText = text.substr(colon + 1);
    if (!host.empty() && host.front() == '[') {
        if (host.back() != ']')
            return makeError(Errc::InvalidArgument, "unbalanced '[' in '" + std::string(text) + "'");
        host = stripBrackets(host);
    } else if (host.find(':') != std::string_view::npos) {
        return makeError(Errc::InvalidArgument,
                         "IPv6 address needs brackets: '[ADDR]:PORT', got '" + std::string(text) + "'");
    }
    auto port = parseU64(portText);
    if (!port || *port > 65535)
        return makeError(Errc::InvalidArgument, "bad port '" + std::string(portText) + "' in '" +
                                                    std::string(text) + "' (0..65535)");
    return HostPort{std::string(host), static_cast<uint16_t>(*port)};
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

// ---- TcpStream ----------------------------------------------------------------------

TcpStream::TcpStream(Loop& loop) : Stream(loop, UV_TCP) {}

uv_tcp_t* TcpStream::raw() const {
    return reinterpret_cast<uv_tcp_t*>(rawStream());
}

Result<Owned<TcpStream>> TcpStream::make(Loop& loop) {
    Owned<TcpStream> self(new TcpStream(loop));
    int rc = uv_tcp_init(loop.raw(), self->raw());
    if (rc < 0) {
        self->markInitFailed();
        return uvError(rc, "uv_tcp_init");
    }
    return self;
}

Result<std::unique_ptr<PendingConnect>> TcpStream::connect(Loop& loop, std::string_view host, uint16_t port,
                                                           ConnectCallback callback) {
    auto addr = numericAddress(host, port);
    if (!addr.ok()) return addr.takeError();
    auto made = make(loop);
    if (!made.ok()) return made.takeError();
    uv_tcp_t* tcp = made.value()->raw();
    std::string target = nameOf(addr.value());
    std::unique_ptr<PendingConnect> pending(new PendingConnect(
        std::move(made).value(), target, [cb = std::move(callback)](Result<Owned<Stream>> r) {
            if (!r.ok()) {
                cb(r.takeError());
                return;
            }
            Owned<Stream> s = std::move(r).value();
            cb(Owned<TcpStream>(static_cast<TcpStream*>(s.release())));
        }));
    int rc = uv_tcp_connect(pending->request(), tcp, reinterpret_cast<const sockaddr*>(&addr.value()),
                            [](uv_connect_t* req, int status) { PendingConnect::onConnect(req, status); });
    if (rc < 0) {
        pending->abandon();
        return uvError(rc, "connect " + target);
    }
    return pending;
}

Status TcpStream::setNoDelay(bool enable) {
    if (closing()) return closedError("nodelay " + peerName());
    return uvStatus(uv_tcp_nodelay(raw(), enable ? 1 : 0), "nodelay " + peerName());
}

Status TcpStream::setKeepAlive(bool enable, unsigned delaySeconds) {
    if (closing()) return closedError("keepalive " + peerName());
    return uvStatus(uv_tcp_keepalive(raw(), enable ? 1 : 0, delaySeconds), "keepalive " + peerName());
}

// ---- TcpListener --------------------------------------------------------------------

TcpListener::TcpListener(Loop& loop) : Handle(loop, UV_TCP) {}

uv_tcp_t* TcpListener::raw() const {
    return reinterpret_cast<uv_tcp_t*>(rawHandle());
}

Result<Owned<TcpListener>> TcpListener::create(Loop& loop, std::string_view hostPort,
                                               ConnectionCallback callback, int backlog) {
    auto where = parseHostPort(hostPort);
    if (!where.ok()) return where.takeError();
    return create(loop, where.value(), std::move(callback), backlog);
}

Result<Owned<TcpListener>> TcpListener::create(Loop& loop, const HostPort& where, ConnectionCallback callback,
                                               int backlog) {
    std::string host = where.host.empty() || where.host == "*" ? "0.0.0.0" : where.host;
    auto addr = numericAddress(host, where.port);
    if (!addr.ok()) return addr.takeError();
    std::string wanted = formatHostPort(stripBrackets(host), where.port);

    Owned<TcpListener> self(new TcpListener(loop));
    int rc = uv_tcp_init(loop.raw(), self->raw());
    if (rc < 0) {
        self->markInitFailed();
        return uvError(rc, "uv_tcp_init");
    }
    self->callback_ = std::move(callback);
    rc = uv_tcp_bind(self->raw(), reinterpret_cast<const sockaddr*>(&addr.value()), 0);
    if (rc < 0) return uvError(rc, "bind " + wanted);
    // libuv reports most bind errors (EADDRINUSE) only here.
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(self->raw()), backlog, [](uv_stream_t* s, int status) {
        static_cast<TcpListener*>(s->data)->onConnection(status);
    });
    if (rc < 0) return uvError(rc, "listen " + wanted);

    sockaddr_storage bound{};
    int len = sizeof bound;
    rc = uv_tcp_getsockname(self->raw(), reinterpret_cast<sockaddr*>(&bound), &len);
    if (rc < 0) return uvError(rc, "getsockname " + wanted);
    self->address_ = nameOf(bound);
    self->port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                    : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    return self;
}

void TcpListener::onConnection(int status) {
    if (closing()) return;
    if (status < 0) {
        // EMFILE and friends: the pending connection stays queued; log and go on.
        LOG(Uv, Warning) << "accept on " << address_ << ": " << uv_strerror(status);
        return;
    }
    auto made = TcpStream::make(*loop());
    if (!made.ok()) {
        LOG(Uv, Warning) << "accept on " << address_ << ": " << made.error().message;
        return;
    }
    Owned<TcpStream> stream = std::move(made).value();
    int rc = uv_accept(reinterpret_cast<uv_stream_t*>(raw()), reinterpret_cast<uv_stream_t*>(stream->raw()));
    if (rc < 0) {
        LOG(Uv, Warning) << "accept on " << address_ << ": " << uv_strerror(rc);
        return;
    }
    sockaddr_storage peer{};
    int len = sizeof peer;
    if (uv_tcp_getpeername(stream->raw(), reinterpret_cast<sockaddr*>(&peer), &len) == 0)
        stream->setPeerName(nameOf(peer));
    else
        stream->setPeerName("?");
    invokeSlot(callback_, std::move(stream));
}

}  // namespace possync::uv
