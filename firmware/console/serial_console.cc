#include "console/serial_console.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "log/log.h"

namespace possync::console {

POSSYNC_LOG_DECLARE(Console);
POSSYNC_LOG_CATEGORY(Console)

namespace {
// Per poll callback: enough for any human or paste, small enough to keep the loop moving
// under a flood of noise (the poll fires again on the next turn).
constexpr size_t kReadChunk = 1024;
constexpr int kReadsPerTurn = 8;
constexpr int kEmptyReadsForHangUp = 3;
}  // namespace

SerialConsole::SerialConsole(uv::Loop& loop, Interpreter& interpreter, Options options)
    : loop_(loop),
      options_(std::move(options)),
      session_(
          interpreter, SessionMode::Terminal, [this](std::string_view b) { send(b); }, {}, options_.maxLine) {
}

Result<std::unique_ptr<SerialConsole>> SerialConsole::create(uv::Loop& loop, Interpreter& interpreter,
                                                             Options options) {
    std::unique_ptr<SerialConsole> self(new SerialConsole(loop, interpreter, std::move(options)));
    auto timer = uv::Timer::create(loop);
    if (!timer) return timer.takeError();
    self->reopenTimer_ = std::move(*timer);
    POSSYNC_TRY(self->openPort());
    LOG(Console, Info) << "serial console on " << self->options_.path << " at " << self->options_.baud
                       << " baud";
    self->session_.start();
    return self;
}

SerialConsole::~SerialConsole() {
    poll_.reset();
    port_.reset();
}

Status SerialConsole::openPort() {
    auto port = serial::Port::open(options_.path, options_.baud);
    if (!port) return port.takeError();
    auto poll = uv::Poll::create(loop_, (*port)->fd());
    if (!poll) return poll.takeError();
    port_ = std::move(*port);
    poll_ = std::move(*poll);
    watched_ = 0;
    emptyReadable_ = 0;
    pending_.clear();
    watch();
    return {};
}

// Readable always; Writable only while output waits (else the poll would fire every turn).
void SerialConsole::watch() {
    if (!poll_) return;
    int want = uv::Poll::Readable | (pending_.empty() ? 0 : uv::Poll::Writable);
    if (want == watched_) return;
    Status st = poll_->start(want, [this](Status s, int events) { onPoll(std::move(s), events); });
    if (!st) {
        lost(st.error().message);
        return;
    }
    watched_ = want;
}

void SerialConsole::onPoll(Status status, int events) {
    if (!status) {
        hangUp(status.error().message);
        return;
    }
    if (events & uv::Poll::Writable) flush();
    if (port_ && (events & (uv::Poll::Readable | uv::Poll::Disconnect))) readInput();
}

void SerialConsole::readInput() {
    char buf[kReadChunk];
    for (int i = 0; i < kReadsPerTurn && port_; ++i) {
        ssize_t n = ::read(port_->fd(), buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        if (n < 0) {
            hangUp(std::strerror(errno));  // EIO: the other side is gone
            return;
        }
        if (n == 0) {
            // A raw tty (VMIN = VTIME = 0) reads 0 bytes when nothing is there, and also
            // after a hang-up. Only a tty that keeps polling readable with nothing to read
            // has hung up.
            if (i == 0 && ++emptyReadable_ >= kEmptyReadsForHangUp) hangUp("hung up");
            return;
        }
        emptyReadable_ = 0;
        counters_.bytesIn += static_cast<uint64_t>(n);
        inFeed_ = true;
        session_.feed(std::string_view(buf, static_cast<size_t>(n)));
        inFeed_ = false;
        if (!deferredHangUp_.empty()) {
            std::string why = std::move(deferredHangUp_);
            deferredHangUp_.clear();
            hangUp(why);
            return;
        }
        if (static_cast<size_t>(n) < sizeof buf) return;
    }
}

void SerialConsole::send(std::string_view bytes) {
    if (!port_ || !deferredHangUp_.empty()) {
        counters_.droppedBytes += bytes.size();
        return;
    }
    // Whole pieces only (an answer is one piece), and one always fits: a long answer to a
    // terminal that reads is never cut; one that stopped reading gets nothing more.
    if (pending_.size() >= options_.maxPendingOutput) {
        counters_.droppedBytes += bytes.size();
        return;
    }
    pending_.append(bytes);
    flush();
}

void SerialConsole::flush() {
    while (port_ && !pending_.empty()) {
        ssize_t n = ::write(port_->fd(), pending_.data(), pending_.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) {
            std::string why = std::string("write: ") + std::strerror(n < 0 ? errno : EIO);
            counters_.droppedBytes += pending_.size();
            pending_.clear();
            lost(why);
            return;
        }
        counters_.bytesOut += static_cast<uint64_t>(n);
        pending_.erase(0, static_cast<size_t>(n));
    }
    watch();
}

void SerialConsole::lost(std::string why) {
    // Inside session_.feed() the line editor is mid-line: reset it only once feed returned.
    if (inFeed_) {
        if (deferredHangUp_.empty()) deferredHangUp_ = std::move(why);
        return;
    }
    hangUp(why);
}

void SerialConsole::hangUp(const std::string& why) {
    if (!port_) return;
    ++counters_.hangups;
    LOG(Console, Warning) << "serial console " << options_.path << ": line lost (" << why
                          << "); reopening every " << options_.reopenMs << " ms";
    counters_.droppedBytes += pending_.size();
    pending_.clear();
    session_.hangUp();
    // The poll first: libuv must stop watching the descriptor before it is closed.
    poll_.reset();
    port_.reset();
    watched_ = 0;
    reopenFailLogged_ = false;
    reopenTimer_->start(options_.reopenMs, options_.reopenMs, [this] { tryReopen(); });
}

void SerialConsole::tryReopen() {
    Status st = openPort();
    if (!st) {
        if (!reopenFailLogged_) LOG(Console, Info) << "serial console: still down: " << st.error().message;
        reopenFailLogged_ = true;
        return;
    }
    reopenTimer_->stop();
    ++counters_.reopens;
    LOG(Console, Info) << "serial console " << options_.path << ": line back";
    session_.start();
}

}  // namespace possync::console
