// seal_tunnel: a relay between plaintext and sealed links, so the scenario tests' Python peers
// (peers.py), which speak the plaintext sync protocol, can talk to daemons that seal every link
// (trust/handshake.h, trust/secure_stream.h, sync/secure_link.h).
//
//   seal_tunnel connect --port P --key-seed HEX64 [--pairing]
//       Listens on 127.0.0.1 (port from the kernel) and prints "port N". For each plaintext
//       client: connects to the daemon at 127.0.0.1:P, opens the link as the handshake's
//       initiator (M1 flags kFlagPairing with --pairing), then relays: the client's bytes go
//       sealed to the daemon, the daemon's records go opened to the client.
//   seal_tunnel accept --port P --key-seed HEX64
//       The reverse, for a fake master: a daemon connects, the tunnel answers as the responder,
//       then connects to the plaintext server at 127.0.0.1:P and relays.
//   seal_tunnel key --key-seed HEX64
//       Prints "key HEX" (64 hex digits) and "fingerprint FP" of the seed's key pair.
//
// The tunnel takes any peer key as a Member: it stands in for a board the daemon under test
// trusts or refuses, and judges nobody itself. Each connection runs on its own thread and ends
// with ONE line on stderr, "tunnel: REASON" (the handshake's failure, a bad record, which side
// closed first), which the tests read. A half-close passes through: once a side ends its writes
// and what it sent went out, the tunnel ends its writes to the other side, so the test still
// sees "the peer closed". The program ends on SIGTERM or SIGINT, and when stdin reaches EOF: a
// test starts it with a pipe, so no tunnel outlives its test.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

#include "trust/handshake.h"
#include "trust/identity.h"
#include "trust/keys.h"
#include "trust/secure_stream.h"
#include "wire/frame.h"

namespace possync::scenario {
namespace {

constexpr size_t kRecordHeaderBytes = 4;
// The largest record a daemon with the default --max-frame sends: a whole frame and its seal
// (a daemon given a larger --max-frame may send more, and the tunnel refuses it).
constexpr size_t kMaxRecordBytes = wire::kDefaultMaxFrameBytes + wire::kFrameHeaderBytes + trust::kSealBytes;
// Plaintext per sealed record. A daemon refuses records over its --max-frame plus a frame
// header and the seal, and --max-frame may be as low as 4096: records of this size pass
// whatever the daemon's limit (its decoder joins frames across records).
constexpr size_t kChunkBytes = 4096;
constexpr size_t kReadBytes = 64u << 10;
// Bytes queued for one side before the tunnel stops reading the other (backpressure).
constexpr size_t kHighWater = 1u << 20;
constexpr int kHandshakeTimeoutMs = 10000;

// Written by the signal handler and once stdin ends; never drained, so every thread polling its
// read end sees it readable from then on.
int stopPipe[2] = {-1, -1};

void requestStop() {
    char byte = 1;
    // A full pipe (EAGAIN) already says "stop".
    [[maybe_unused]] ssize_t n = ::write(stopPipe[1], &byte, 1);
}

void onSignal(int) {
    int saved = errno;
    requestStop();
    errno = saved;
}

int64_t nowMs() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

Error ioError(const std::string& what, int err) {
    return makeError(Errc::Io, what + ": " + std::strerror(err));
}

// An owned file descriptor.
class Fd final {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

sockaddr_in loopback(uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

Result<Fd> listenLoopback() {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return ioError("socket", errno);
    sockaddr_in addr = loopback(0);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return ioError("bind", errno);
    if (::listen(fd.get(), 64) != 0) return ioError("listen", errno);
    return fd;
}

uint16_t localPort(int fd) {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    return ntohs(addr.sin_port);
}

// A non-blocking socket connected to 127.0.0.1:port (a loopback connect does not wait).
Result<Fd> connectLoopback(uint16_t port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return ioError("socket", errno);
    sockaddr_in addr = loopback(port);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        return ioError("connect to 127.0.0.1:" + std::to_string(port), errno);
    ::fcntl(fd.get(), F_SETFL, O_NONBLOCK);
    return fd;
}

// Waits during the handshake until `fd` is ready for `events`. Errors: Closed when the program
// stops, Busy when `deadline` (steady clock, ms) passes first.
Status waitFor(int fd, short events, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - nowMs();
        if (left <= 0) {
            return makeError(Errc::Busy, "handshake: not done within " +
                                             std::to_string(kHandshakeTimeoutMs / 1000) + " s");
        }
        pollfd fds[2] = {{stopPipe[0], POLLIN, 0}, {fd, events, 0}};
        int n = ::poll(fds, 2, static_cast<int>(left));
        if (n < 0 && errno != EINTR) return ioError("poll", errno);
        if (n <= 0) continue;
        if (fds[0].revents) return makeError(Errc::Closed, "stopped");
        if (fds[1].revents) return {};
    }
}

enum class Mode { Connect, Accept };

struct Config {
    Mode mode;
    uint16_t port;  // the daemon's (connect) or the plaintext server's (accept)
    trust::Identity identity;
    uint32_t flags;  // M1's flags (connect)
};

// One end of a tunnel: its socket and the bytes queued for it.
struct Side {
    std::string name;  // "client", "server" or "daemon", for the reasons
    Fd fd;
    std::vector<uint8_t> out;
    size_t outSent = 0;   // bytes of `out` already written
    bool reading = true;  // the side has not ended its writes (nor failed)
    bool shut = false;    // the tunnel ended its writes to the side

    size_t pending() const { return out.size() - outSent; }
};

// What one read from a side gave.
struct Received {
    size_t bytes = 0;    // appended to the buffer
    bool ended = false;  // the side ended its writes, or its socket failed (`why`)
    std::string why;
};

// One connection: the handshake with the daemon, then the relay until both directions ended.
class Tunnel final {
public:
    Tunnel(const Config& config, Fd accepted);
    // Runs the connection to its end; returns why it ended.
    std::string run();

private:
    Status handshake();
    Status relay();
    // Reads what `side` has now (at most kReadBytes) onto the end of `into`.
    Received receive(Side& side, std::vector<uint8_t>& into);
    // Writes what `side` takes now of its queued bytes. Io when the side is gone.
    Status flush(Side& side);
    // Queues `payload` as one record to the daemon and waits until it went out.
    Status sendHandshakeRecord(const std::vector<uint8_t>& payload, int64_t deadline);
    // The next whole record from the daemon (valid until the inbox is read into again), nullopt
    // while it is not whole; TooLarge for a length over `limit`, before its bytes are awaited.
    Result<std::optional<Bytes>> nextRecord(size_t limit);
    void fromPlain();
    Status fromDaemon();
    // Opens the whole records in the inbox and queues their plaintext for the plain side.
    Status openRecords();
    // Once `from` ended its writes and all it sent reached `to`, ends the writes to `to`.
    static void passEnd(const Side& from, Side& to);
    // Keeps the first reason a direction ended: the line tells which side closed first.
    void note(std::string reason);
    std::string counts() const;

    const Config& config_;
    Side plain_;   // the client (connect) or the plaintext server (accept)
    Side daemon_;  // the sealed side
    std::unique_ptr<trust::Sealer> sealer_;
    std::unique_ptr<trust::Opener> opener_;
    std::vector<uint8_t> inbox_;  // bytes from the daemon not yet consumed as records
    size_t inboxStart_ = 0;
    std::vector<uint8_t> scratch_;  // the client's or server's latest bytes
    std::vector<uint8_t> opened_;   // the latest opened record
    uint64_t sealedBytes_ = 0;
    uint64_t openedBytes_ = 0;
    std::string reason_;
};

Tunnel::Tunnel(const Config& config, Fd accepted) : config_(config) {
    plain_.name = config.mode == Mode::Connect ? "client" : "server";
    daemon_.name = "daemon";
    ::fcntl(accepted.get(), F_SETFL, O_NONBLOCK);
    (config.mode == Mode::Connect ? plain_ : daemon_).fd = std::move(accepted);
}

std::string Tunnel::run() {
    if (config_.mode == Mode::Connect) {
        auto daemon = connectLoopback(config_.port);
        if (!daemon) return "cannot reach the daemon: " + daemon.error().message;
        daemon_.fd = std::move(*daemon);
    }
    if (Status st = handshake(); !st) return st.error().message;
    if (config_.mode == Mode::Accept) {
        auto server = connectLoopback(config_.port);
        if (!server) return "cannot reach the server: " + server.error().message;
        plain_.fd = std::move(*server);
    }
    Status st = relay();
    if (st) return reason_ + counts();
    if (reason_.empty()) return st.error().message + counts();
    return reason_ + ", then " + st.error().message + counts();
}

std::string Tunnel::counts() const {
    return " (sealed " + std::to_string(sealedBytes_) + " bytes, opened " + std::to_string(openedBytes_) +
           ")";
}

void Tunnel::note(std::string reason) {
    if (reason_.empty()) reason_ = std::move(reason);
}

Status Tunnel::handshake() {
    // The tunnel is whichever board the test wants: the daemon under test decides about its key.
    trust::PeerCheck anyMember = [](const trust::PublicKey&, uint32_t) -> Result<trust::PeerStanding> {
        return trust::PeerStanding::Member;
    };
    auto hs = config_.mode == Mode::Connect
                  ? trust::Handshake::initiator(config_.identity, anyMember, config_.flags)
                  : trust::Handshake::responder(config_.identity, anyMember);
    int64_t deadline = nowMs() + kHandshakeTimeoutMs;
    if (hs.role() == trust::Handshake::Role::Initiator)
        POSSYNC_TRY(sendHandshakeRecord(hs.start(), deadline));
    while (hs.state() != trust::Handshake::State::Done) {
        auto record = nextRecord(trust::kHandshakeMessageMaxBytes);
        if (!record) return makeError(Errc::TooLarge, "handshake: " + record.error().message);
        if (*record) {
            auto reply = hs.receive(**record);
            if (!reply) return reply.takeError();
            if (!reply->empty()) POSSYNC_TRY(sendHandshakeRecord(*reply, deadline));
            continue;
        }
        POSSYNC_TRY(waitFor(daemon_.fd.get(), POLLIN, deadline));
        Received got = receive(daemon_, inbox_);
        if (got.ended) {
            // Past M1 the daemon has seen this side's key: closing then is how it refuses it.
            bool keySeen = hs.state() != trust::Handshake::State::AwaitM1;
            return makeError(Errc::Closed, std::string("handshake: ") + got.why + " in state " +
                                               trust::handshakeStateName(hs.state()) +
                                               (keySeen ? " (it may not trust this key)" : ""));
        }
    }
    auto streams = hs.takeStreams();
    sealer_ = std::move(streams.send);
    opener_ = std::move(streams.receive);
    return {};
}

Status Tunnel::sendHandshakeRecord(const std::vector<uint8_t>& payload, int64_t deadline) {
    size_t at = daemon_.out.size();
    daemon_.out.resize(at + kRecordHeaderBytes);
    putLe32(daemon_.out.data() + at, static_cast<uint32_t>(payload.size()));
    daemon_.out.insert(daemon_.out.end(), payload.begin(), payload.end());
    for (;;) {
        POSSYNC_TRY(flush(daemon_));
        if (daemon_.pending() == 0) return {};
        POSSYNC_TRY(waitFor(daemon_.fd.get(), POLLOUT, deadline));
    }
}

Received Tunnel::receive(Side& side, std::vector<uint8_t>& into) {
    size_t at = into.size();
    into.resize(at + kReadBytes);
    ssize_t n;
    do {
        n = ::recv(side.fd.get(), into.data() + at, kReadBytes, 0);
    } while (n < 0 && errno == EINTR);
    into.resize(at + (n > 0 ? static_cast<size_t>(n) : 0));
    if (n > 0) return {static_cast<size_t>(n), false, {}};
    if (n == 0) return {0, true, "the " + side.name + " closed the link"};
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
    return {0, true, "reading from the " + side.name + " failed: " + std::strerror(errno)};
}

Status Tunnel::flush(Side& side) {
    while (side.pending() > 0) {
        ssize_t n = ::send(side.fd.get(), side.out.data() + side.outSent, side.pending(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n < 0) return ioError("writing to the " + side.name + " failed", errno);
        side.outSent += static_cast<size_t>(n);
    }
    if (side.outSent == side.out.size()) {
        side.out.clear();
        side.outSent = 0;
    } else if (side.outSent > kReadBytes && side.outSent * 2 > side.out.size()) {
        side.out.erase(side.out.begin(), side.out.begin() + static_cast<std::ptrdiff_t>(side.outSent));
        side.outSent = 0;
    }
    return {};
}

Result<std::optional<Bytes>> Tunnel::nextRecord(size_t limit) {
    size_t have = inbox_.size() - inboxStart_;
    if (have < kRecordHeaderBytes) return std::optional<Bytes>{};
    uint32_t length = getLe32(inbox_.data() + inboxStart_);
    if (length > limit) {
        return makeError(Errc::TooLarge, "a record of " + std::to_string(length) +
                                             " bytes from the daemon (limit " + std::to_string(limit) + ")");
    }
    if (have < kRecordHeaderBytes + length) return std::optional<Bytes>{};
    Bytes record(inbox_.data() + inboxStart_ + kRecordHeaderBytes, length);
    inboxStart_ += kRecordHeaderBytes + length;
    return std::optional<Bytes>(record);
}

void Tunnel::fromPlain() {
    scratch_.clear();
    Received got = receive(plain_, scratch_);
    for (size_t at = 0; at < got.bytes; at += kChunkBytes) {
        size_t n = std::min(kChunkBytes, got.bytes - at);
        size_t head = daemon_.out.size();
        daemon_.out.resize(head + kRecordHeaderBytes);
        putLe32(daemon_.out.data() + head, static_cast<uint32_t>(n + trust::kSealBytes));
        sealer_->seal(Bytes(scratch_.data() + at, n), daemon_.out);
        sealedBytes_ += n;
    }
    if (got.ended) {
        plain_.reading = false;
        note(got.why);
    }
}

Status Tunnel::fromDaemon() {
    if (inboxStart_ == inbox_.size()) {
        inbox_.clear();
        inboxStart_ = 0;
    } else if (inboxStart_ > kReadBytes) {
        inbox_.erase(inbox_.begin(), inbox_.begin() + static_cast<std::ptrdiff_t>(inboxStart_));
        inboxStart_ = 0;
    }
    Received got = receive(daemon_, inbox_);
    POSSYNC_TRY(openRecords());
    if (got.ended) {
        daemon_.reading = false;
        note(got.why);
        // A cut record is one whose seal was never checked: none of it may reach the other side.
        if (inboxStart_ != inbox_.size())
            return makeError(Errc::Corrupt, "the daemon's link ended in the middle of a record");
    }
    return {};
}

Status Tunnel::openRecords() {
    for (;;) {
        auto record = nextRecord(kMaxRecordBytes);
        if (!record) return record.takeError();
        if (!*record) return {};
        if (Status st = opener_->open(**record, opened_); !st)
            return makeError(Errc::Corrupt, "a record from the daemon does not open: " + st.error().message);
        plain_.out.insert(plain_.out.end(), opened_.begin(), opened_.end());
        openedBytes_ += opened_.size();
    }
}

void Tunnel::passEnd(const Side& from, Side& to) {
    if (from.reading || to.pending() > 0 || to.shut) return;
    ::shutdown(to.fd.get(), SHUT_WR);
    to.shut = true;
}

Status Tunnel::relay() {
    auto interest = [](const Side& side, const Side& other) {
        short events = static_cast<short>((side.reading && other.pending() < kHighWater ? POLLIN : 0) |
                                          (side.pending() > 0 ? POLLOUT : 0));
        return pollfd{events ? side.fd.get() : -1, events, 0};
    };
    // Records that came with the handshake's last message wait in the inbox.
    POSSYNC_TRY(openRecords());
    for (;;) {
        passEnd(plain_, daemon_);
        passEnd(daemon_, plain_);
        if (plain_.shut && daemon_.shut) return {};
        pollfd fds[3] = {{stopPipe[0], POLLIN, 0}, interest(plain_, daemon_), interest(daemon_, plain_)};
        if (::poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            return ioError("poll", errno);
        }
        if (fds[0].revents) return makeError(Errc::Closed, "stopped");
        constexpr short kOut = POLLOUT | POLLERR | POLLHUP, kIn = POLLIN | POLLERR | POLLHUP;
        if ((fds[1].revents & kOut) && plain_.pending() > 0) POSSYNC_TRY(flush(plain_));
        if ((fds[2].revents & kOut) && daemon_.pending() > 0) POSSYNC_TRY(flush(daemon_));
        if ((fds[1].revents & kIn) && plain_.reading) fromPlain();
        if ((fds[2].revents & kIn) && daemon_.reading) POSSYNC_TRY(fromDaemon());
    }
}

std::optional<trust::Identity> identityFromHex(const std::string& hex) {
    auto bytes = fromHex(hex);
    if (!bytes || bytes->size() != 32) return std::nullopt;
    std::array<uint8_t, 32> seed{};
    std::memcpy(seed.data(), bytes->data(), seed.size());
    return trust::Identity::fromSeed(seed);
}

// A finished worker is joined at the next accept, the others when the program stops.
struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
};

void startWorker(std::list<Worker>& workers, const Config& config, Fd accepted) {
    for (auto it = workers.begin(); it != workers.end();) {
        if (!it->done) {
            ++it;
            continue;
        }
        it->thread.join();
        it = workers.erase(it);
    }
    Worker& worker = workers.emplace_back();
    worker.thread = std::thread([&config, &worker, fd = std::move(accepted)]() mutable {
        std::string why = Tunnel(config, std::move(fd)).run();
        std::fprintf(stderr, "tunnel: %s\n", why.c_str());
        worker.done = true;
    });
}

// Drains stdin; false once it reached EOF (or is not readable at all): the test is gone.
bool stdinOpen() {
    char buf[512];
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    return n > 0 || (n < 0 && (errno == EINTR || errno == EAGAIN));
}

int runTunnels(const Config& config) {
    if (::pipe2(stopPipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        std::fprintf(stderr, "seal_tunnel: pipe: %s\n", std::strerror(errno));
        return 1;
    }
    struct sigaction sa {};
    sa.sa_handler = onSignal;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    auto listener = listenLoopback();
    if (!listener) {
        std::fprintf(stderr, "seal_tunnel: %s\n", listener.error().message.c_str());
        return 1;
    }
    std::printf("port %u\n", localPort(listener->get()));
    std::fflush(stdout);
    std::list<Worker> workers;
    for (;;) {
        pollfd fds[3] = {{stopPipe[0], POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}, {listener->get(), POLLIN, 0}};
        if (::poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[0].revents) break;
        if (fds[1].revents && !stdinOpen()) break;
        if (fds[2].revents) {
            Fd accepted(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (accepted.get() >= 0) startWorker(workers, config, std::move(accepted));
        }
    }
    requestStop();
    for (auto& worker : workers) worker.thread.join();
    return 0;
}

int usage() {
    std::fprintf(stderr,
                 "usage: seal_tunnel connect --port P --key-seed HEX64 [--pairing]\n"
                 "       seal_tunnel accept --port P --key-seed HEX64\n"
                 "       seal_tunnel key --key-seed HEX64\n");
    return 2;
}

int run(int argc, char** argv) {
    if (argc < 2) return usage();
    std::string mode = argv[1], seedHex, portText;
    if (mode != "connect" && mode != "accept" && mode != "key") return usage();
    bool pairing = false;
    for (int i = 2; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--pairing") {
            pairing = true;
        } else if (arg == "--port" && i + 1 < argc) {
            portText = argv[++i];
        } else if (arg == "--key-seed" && i + 1 < argc) {
            seedHex = argv[++i];
        } else {
            return usage();
        }
    }
    if (!trust::initSodium()) {
        std::fprintf(stderr, "seal_tunnel: libsodium does not work here\n");
        return 1;
    }
    auto identity = identityFromHex(seedHex);
    if (!identity) {
        std::fprintf(stderr, "seal_tunnel: --key-seed takes 64 hex digits\n");
        return 2;
    }
    if (mode == "key") {
        if (!portText.empty() || pairing) return usage();
        std::printf("key %s\nfingerprint %s\n", trust::publicKeyHex(identity->publicKey()).c_str(),
                    identity->fingerprint().c_str());
        return 0;
    }
    if (pairing && mode != "connect") return usage();
    auto port = parseU64(portText);
    if (!port || *port == 0 || *port > 65535) {
        std::fprintf(stderr, "seal_tunnel: --port takes a port number\n");
        return 2;
    }
    Config config{mode == "connect" ? Mode::Connect : Mode::Accept, static_cast<uint16_t>(*port), *identity,
                  pairing ? trust::kFlagPairing : 0};
    return runTunnels(config);
}

}  // namespace
}  // namespace possync::scenario

int main(int argc, char** argv) {
    return possync::scenario::run(argc, argv);
}
