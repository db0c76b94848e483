// console::SerialConsole: the console on a tty (`possyncd --serial /dev/ttyX [--baud N]`).
//
// One Terminal-mode Session (see session.h) over a tty opened raw through platform/serial,
// watched with a uv::Poll on the daemon's loop. It is built to never hold up the sync loop:
// - reads are non-blocking and bounded per loop turn;
// - writes are non-blocking; what the terminal does not take at once waits in a buffer.
//   While that buffer holds Options::maxPendingOutput bytes or more, new output (echo, whole
//   answers) is dropped and counted (Counters::droppedBytes) instead of blocking or growing
//   memory, so a terminal program that stops reading (XOFF, unplugged cable) costs nothing.
//   Below the limit a whole answer is always taken, so a long `scan` to a slow but reading
//   terminal is never cut (memory: the limit plus one answer);
// - when the line goes away (read/write EIO, hang-up, poll error: a USB adapter unplugged,
//   the pty master closed) the half-typed line is forgotten, the tty is closed and reopened
//   every Options::reopenMs until it is back; then a banner and a fresh prompt are shown.
// Garbage on the line is the LineEditor's business: an error line, then the next prompt.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "serial/serial.h"
#include "uv/loop.h"
#include "uv/poll.h"
#include "uv/timer.h"

#include "console/session.h"

namespace possync::console {

class SerialConsole final {
public:
    struct Options {
        std::string path;  // the tty, e.g. /dev/ttyS0 or /dev/ttyGS0
        uint32_t baud = serial::kDefaultBaud;
        size_t maxPendingOutput = 64 * 1024;  // output waiting for a slow terminal
        uint64_t reopenMs = 1000;             // retry period after a hang-up
        size_t maxLine = 512;                 // longest command line
    };
    struct Counters {
        uint64_t bytesIn = 0;
        uint64_t bytesOut = 0;      // bytes the tty accepted
        uint64_t droppedBytes = 0;  // output dropped: terminal not reading, or line down
        uint64_t hangups = 0;       // times the line went away
        uint64_t reopens = 0;       // times it came back
    };

    // Opens and configures the tty now and shows the banner and prompt. Errors
    // (InvalidArgument: bad speed, not a tty; Io: cannot open) are for the daemon to
    // report at start-up. `loop` and `interpreter` are borrowed and must outlive this.
    static Result<std::unique_ptr<SerialConsole>> create(uv::Loop& loop, Interpreter& interpreter,
                                                         Options options);
    ~SerialConsole();
    SerialConsole(const SerialConsole&) = delete;
    SerialConsole& operator=(const SerialConsole&) = delete;

    // False between a hang-up and the reopen.
    bool lineUp() const { return port_ != nullptr; }
    const Counters& counters() const { return counters_; }
    const Session& session() const { return session_; }
    const Options& options() const { return options_; }

private:
    SerialConsole(uv::Loop& loop, Interpreter& interpreter, Options options);

    Status openPort();
    void onPoll(Status status, int events);
    void readInput();
    void send(std::string_view bytes);
    void flush();
    void watch();
    void lost(std::string why);
    void hangUp(const std::string& why);
    void tryReopen();

    uv::Loop& loop_;
    Options options_;
    Session session_;
    Counters counters_;
    // Declared before poll_ so the poll is closed before the descriptor.
    std::unique_ptr<serial::Port> port_;
    uv::Owned<uv::Poll> poll_;
    uv::Owned<uv::Timer> reopenTimer_;
    std::string pending_;         // output the tty has not taken yet
    int watched_ = 0;             // the Poll event mask in force
    int emptyReadable_ = 0;       // readable events in a row that read nothing
    bool inFeed_ = false;         // inside session_.feed(): hang-ups wait until it returns
    std::string deferredHangUp_;  // why, when a hang-up was seen inside feed
    bool reopenFailLogged_ = false;
};

}  // namespace possync::console
