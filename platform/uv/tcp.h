// TCP streams and listeners (uv_tcp_t): connect to a numeric address or a name (resolved with
// uv_getaddrinfo on libuv's thread pool, the answer on the loop), listen on a numeric address.
// HOST:PORT text is read with base/host_port.h, the one parser of the tree.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/host_port.h"
#include "base/result.h"
#include "uv/handle.h"
#include "uv/stream.h"

struct uv_tcp_s;
struct sockaddr_storage;

namespace possync::uv {

class TcpStream final : public Stream {
public:
    using ConnectCallback = std::function<void(Result<Owned<TcpStream>>)>;

    // Connects to `host`: a numeric IPv4/IPv6 address (brackets allowed), or a name that is
    // first resolved asynchronously (uv_getaddrinfo; the first address that answers wins,
    // in the resolver's order). `callback` runs once with the connected stream or an error
    // ("resolve nosuch.lan: unknown node or service", "connect 127.0.0.1:9: connection
    // refused"), unless the returned PendingConnect is destroyed first (= cancel, also of a
    // resolve still running). An empty host is Errc::InvalidArgument at once (callback never
    // called).
    static Result<std::unique_ptr<PendingConnect>> connect(Loop& loop, std::string_view host, uint16_t port,
                                                           ConnectCallback callback);

    Status setNoDelay(bool enable);
    // TCP keepalive probes after `delaySeconds` idle (ignored when disabling).
    Status setKeepAlive(bool enable, unsigned delaySeconds);

private:
    friend class TcpListener;
    explicit TcpStream(Loop& loop);
    static Result<Owned<TcpStream>> make(Loop& loop);
    static Result<std::unique_ptr<PendingConnect>> connectTo(Loop& loop, const sockaddr_storage& addr,
                                                             ConnectCallback callback);
    static Result<std::unique_ptr<PendingConnect>> resolveThenConnect(Loop& loop, const std::string& host,
                                                                      uint16_t port,
                                                                      ConnectCallback callback);
    // The next connect of a resolveThenConnect (state: its Attempts, tcp.cc).
    static void tryNextAddress(const std::shared_ptr<void>& state);
    uv_tcp_s* raw() const;
};

class TcpListener final : public Handle {
public:
    // Gets each accepted connection; dropping the Owned<TcpStream> closes it.
    using ConnectionCallback = std::function<void(Owned<TcpStream>)>;

    // Listens on "ADDR:PORT" ("0.0.0.0:7000", "[::]:7000", "127.0.0.1:0"; port 0 lets the
    // OS pick; a "*" host means 0.0.0.0). Errc::InvalidArgument for bad text or a
    // non-numeric host, Errc::Io for bind/listen failures ("address already in use").
    static Result<Owned<TcpListener>> create(Loop& loop, std::string_view hostPort,
                                             ConnectionCallback callback, int backlog = 128);
    static Result<Owned<TcpListener>> create(Loop& loop, const HostPort& where, ConnectionCallback callback,
                                             int backlog = 128);

    // The bound port (the OS's choice when asked for port 0).
    uint16_t port() const { return port_; }
    // The bound address, e.g. "127.0.0.1:43210".
    const std::string& address() const { return address_; }

private:
    explicit TcpListener(Loop& loop);
    uv_tcp_s* raw() const;
    void onConnection(int status);

    ConnectionCallback callback_;
    uint16_t port_ = 0;
    std::string address_;
};

}  // namespace possync::uv
