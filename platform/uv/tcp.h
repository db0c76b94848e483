// TCP streams and listeners on numeric IPv4/IPv6 addresses (uv_tcp_t), and "HOST:PORT"
// parsing. Names are resolved elsewhere (discovery); here a host is a numeric literal.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "uv/handle.h"
#include "uv/stream.h"

struct uv_tcp_s;

namespace possync::uv {

struct HostPort {
    std::string host;  // as written, without IPv6 brackets
    uint16_t port = 0;
};

// Splits "1.2.3.4:7000", "[::1]:7000" or "name:7000" (the host is not checked here).
// Errc::InvalidArgument with a one-line reason for a missing/bad port or bracket.
Result<HostPort> parseHostPort(std::string_view text);
// "1.2.3.4:7000" or "[::1]:7000".
std::string formatHostPort(std::string_view host, uint16_t port);

class TcpStream final : public Stream {
public:
    using ConnectCallback = std::function<void(Result<Owned<TcpStream>>)>;

    // Connects to a numeric IPv4/IPv6 host (brackets allowed). A non-numeric host is
    // Errc::InvalidArgument at once (callback never called). Otherwise `callback` runs
    // once with the connected stream or Errc::Io ("connect 127.0.0.1:9: connection
    // refused"), unless the returned PendingConnect is destroyed first (= cancel).
    static Result<std::unique_ptr<PendingConnect>> connect(Loop& loop, std::string_view host, uint16_t port,
                                                           ConnectCallback callback);

    Status setNoDelay(bool enable);
    // TCP keepalive probes after `delaySeconds` idle (ignored when disabling).
    Status setKeepAlive(bool enable, unsigned delaySeconds);

private:
    friend class TcpListener;
    explicit TcpStream(Loop& loop);
    static Result<Owned<TcpStream>> make(Loop& loop);
    uv_tcp_s* raw() const;
};

class TcpListener final : public Handle {
public:
    // Gets each accepted connection; dropping the Owned<TcpStream> closes it.
    using ConnectionCallback = std::function<void(Owned<TcpStream>)>;

    // Listens on "ADDR:PORT" ("0.0.0.0:7000", "[::]:7000", "127.0.0.1:0"; port 0 lets the
    // OS pick; an empty or "*" host means 0.0.0.0). Errc::InvalidArgument for bad text or
    // a non-numeric host, Errc::Io for bind/listen failures ("address already in use").
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
