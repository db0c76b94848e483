#include "uv/tcp.h"

#include <algorithm>
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
    return makeError(Errc::InvalidArgument, "not a numeric IP address: '" + host + "'");
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

Result<std::unique_ptr<PendingConnect>> TcpStream::connect(Loop& loop, std::string_view hostText,
                                                           uint16_t port, ConnectCallback callback) {
    std::string host(stripBrackets(hostText));
    if (host.empty()) return makeError(Errc::InvalidArgument, "connect: no host given");
    auto addr = numericAddress(host, port);
    if (addr.ok()) return connectTo(loop, addr.value(), std::move(callback));
    return resolveThenConnect(loop, host, port, std::move(callback));
}

Result<std::unique_ptr<PendingConnect>> TcpStream::connectTo(Loop& loop, const sockaddr_storage& addr,
                                                             ConnectCallback callback) {
    auto made = make(loop);
    if (!made.ok()) return made.takeError();
    uv_tcp_t* tcp = made.value()->raw();
    std::string target = nameOf(addr);
    std::unique_ptr<PendingConnect> pending(new PendingConnect(
        std::move(made).value(), target, [cb = std::move(callback)](Result<Owned<Stream>> r) {
            if (!r.ok()) {
                cb(r.takeError());
                return;
            }
            Owned<Stream> s = std::move(r).value();
            cb(Owned<TcpStream>(static_cast<TcpStream*>(s.release())));
        }));
    int rc = uv_tcp_connect(pending->request(), tcp, reinterpret_cast<const sockaddr*>(&addr),
                            [](uv_connect_t* req, int status) { PendingConnect::onConnect(req, status); });
    if (rc < 0) {
        pending->abandon();
        return uvError(rc, "connect " + target);
    }
    return pending;
}

// ---- Resolving a name ---------------------------------------------------------------

// Owned by libuv from uv_getaddrinfo until onResolved, which deletes it.
struct PendingConnect::Resolve {
    uv_getaddrinfo_t req;
    Loop* loop;
    PendingConnect* owner;  // nullptr once the PendingConnect was destroyed
};

void PendingConnect::cancel(Resolve* resolve) {
    resolve->owner = nullptr;
    // Fails once the lookup is running on the thread pool: onResolved then frees it.
    (void)uv_cancel(reinterpret_cast<uv_req_t*>(&resolve->req));
}

void PendingConnect::onResolved(uv_getaddrinfo_t* req, int status, addrinfo* result) {
    std::unique_ptr<Resolve> r(static_cast<Resolve*>(req->data));
    std::vector<std::string> addresses;
    for (addrinfo* ai = result; ai; ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN] = {};
        if (ai->ai_family == AF_INET)
            uv_ip4_name(reinterpret_cast<const sockaddr_in*>(ai->ai_addr), text, sizeof text);
        else if (ai->ai_family == AF_INET6)
            uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(ai->ai_addr), text, sizeof text);
        else
            continue;
        std::string a(text);
        if (std::find(addresses.begin(), addresses.end(), a) == addresses.end()) addresses.push_back(a);
    }
    uv_freeaddrinfo(result);
    PendingConnect* self = r->owner;
    if (!self) return;
    self->resolve_ = nullptr;
    if (r->loop->closing()) return;  // no callbacks once the loop closes (handle.h)
    // The callback may destroy `self`: it runs from the stack.
    ResolvedCallback resolved = std::move(self->resolved_);
    resolved(status, std::move(addresses));
}

namespace {

// The connects after a resolve: one address after the other until one answers.
struct Attempts {
    Loop* loop;
    PendingConnect* outer;
    std::string name;  // "master.lan:7700", for errors
    uint16_t port;
    std::vector<std::string> addresses;
    size_t next = 0;
    std::string lastError;
    TcpStream::ConnectCallback callback;
};

}  // namespace

Result<std::unique_ptr<PendingConnect>> TcpStream::resolveThenConnect(Loop& loop, const std::string& host,
                                                                      uint16_t port,
                                                                      ConnectCallback callback) {
    std::string name = formatHostPort(host, port);
    std::unique_ptr<PendingConnect> pending(new PendingConnect(Owned<Stream>(), name, nullptr));
    auto attempts = std::make_shared<Attempts>();
    attempts->loop = &loop;
    attempts->outer = pending.get();
    attempts->name = name;
    attempts->port = port;
    attempts->callback = std::move(callback);
    pending->resolved_ = [attempts](int status, std::vector<std::string> addresses) {
        if (status < 0 || addresses.empty()) {
            ConnectCallback cb = std::move(attempts->callback);
            cb(status < 0
                   ? uvError(status, "resolve " + attempts->name)
                   : makeError(Errc::NotFound, "resolve " + attempts->name + ": no IPv4/IPv6 address"));
            return;
        }
        attempts->addresses = std::move(addresses);
        tryNextAddress(attempts);
    };
    auto* r = new PendingConnect::Resolve{};
    r->req.data = r;
    r->loop = &loop;
    r->owner = pending.get();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(
        loop.raw(), &r->req,
        [](uv_getaddrinfo_t* req, int status, addrinfo* result) {
            PendingConnect::onResolved(req, status, result);
        },
        host.c_str(), nullptr, &hints);
    if (rc < 0) {
        delete r;
        return uvError(rc, "resolve " + name);
    }
    pending->resolve_ = r;
    return pending;
}

void TcpStream::tryNextAddress(const std::shared_ptr<void>& state) {
    auto attempts = std::static_pointer_cast<Attempts>(state);
    while (attempts->next < attempts->addresses.size()) {
        const std::string& address = attempts->addresses[attempts->next++];
        auto addr = numericAddress(address, attempts->port);
        if (!addr.ok()) {
            attempts->lastError = addr.error().message;
            continue;
        }
        auto p = connectTo(*attempts->loop, addr.value(), [attempts](Result<Owned<TcpStream>> r) {
            if (r.ok()) {
                ConnectCallback cb = std::move(attempts->callback);
                cb(std::move(r));
                return;
            }
            attempts->lastError = r.error().message;
            tryNextAddress(attempts);  // replaces the attempt whose callback this is
        });
        if (p.ok()) {
            attempts->outer->attempt_ = std::move(p).value();
            return;
        }
        attempts->lastError = p.error().message;
    }
    attempts->outer->attempt_.reset();
    ConnectCallback cb = std::move(attempts->callback);
    cb(makeError(Errc::Io, attempts->name + ": " + attempts->lastError));
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
    auto where = parseHostPort(hostPort, PortUse::Listen);
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
