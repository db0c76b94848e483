// Latency figures of the benchmarks (latency.h).
#include "latency.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>

#include "child.h"

namespace possync::bench {

std::string errnoText(const std::string& what) {
    return what + ": " + std::strerror(errno);
}

double seconds(Clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

Percentiles percentiles(std::vector<double> v) {
    Percentiles p;
    if (v.empty()) return p;
    std::sort(v.begin(), v.end());
    auto rank = [&](double q) {
        size_t r = size_t(std::ceil(q * double(v.size())));
        return v[std::min(v.size(), std::max<size_t>(r, 1)) - 1] * 1e3;
    };
    p.p50 = rank(0.50);
    p.p99 = rank(0.99);
    p.max = v.back() * 1e3;
    return p;
}

Result<std::vector<double>> measureRtt(uint64_t count) {
    int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0) return makeError(Errc::Io, errnoText("socket"));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd, 1) != 0 ||
        ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        auto e = makeError(Errc::Io, errnoText("listen on 127.0.0.1"));
        ::close(lfd);
        return e;
    }
    int cfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (cfd < 0 || ::connect(cfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        auto e = makeError(Errc::Io, errnoText("connect to 127.0.0.1"));
        if (cfd >= 0) ::close(cfd);
        ::close(lfd);
        return e;
    }
    int sfd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    ::close(lfd);
    if (sfd < 0) {
        ::close(cfd);
        return makeError(Errc::Io, errnoText("accept"));
    }
    int one = 1;
    ::setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    constexpr size_t kSize = 64;
    // Reads exactly kSize bytes; false at end of stream or on an error.
    auto readAll = [](int fd, char* buf) {
        for (size_t got = 0; got < kSize;) {
            ssize_t n = ::read(fd, buf + got, kSize - got);
            if (n <= 0 && !(n < 0 && errno == EINTR)) return false;
            if (n > 0) got += size_t(n);
        }
        return true;
    };
    std::thread echo([&] {
        char buf[kSize];
        while (readAll(sfd, buf))
            if (::write(sfd, buf, kSize) != ssize_t(kSize)) break;
    });
    std::vector<double> rtts;
    char buf[kSize] = {};
    Status st;
    for (uint64_t i = 0; i < count && st; ++i) {
        auto t0 = Clock::now();
        if (::write(cfd, buf, kSize) != ssize_t(kSize) || !readAll(cfd, buf))
            st = makeError(Errc::Io, errnoText("echo on 127.0.0.1"));
        else
            rtts.push_back(seconds(Clock::now() - t0));
    }
    ::shutdown(cfd, SHUT_RDWR);
    echo.join();
    ::close(cfd);
    ::close(sfd);
    if (!st) return st.takeError();
    return rtts;
}

}  // namespace possync::bench
