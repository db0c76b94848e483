// console::SocketConsole: the console on a Unix socket (`possyncd --console PATH.sock`).
//
// Every accepted connection gets its own Script-mode Session (protocol in session.h: one
// command line in, the answer plus a ".ok"/".error" marker line out, no echo), so several
// sessions (a technician's `possync console`, a monitoring script) run at once. It is what
// `possync console --socket PATH.sock` talks to.
//
// Limits that keep the daemon safe from its clients:
// - at most Options::maxSessions at once; one more gets one line saying why, e.g.
//   "error: console busy: 8 socket sessions open (idle ones close after 300 s)" and ".error",
//   then is closed. The limit counts socket sessions only: the serial console
//   (serial_console.h) is a separate transport with its own session and is never refused
//   because of these;
// - a session that sent nothing for Options::idleMs is closed (answers already queued go
//   out first when the client reads them, else they are dropped), so idle sessions cannot
//   hold the limit and lock a technician out for ever. A session that is ending (its input
//   ended) but whose client does not read its last answers is closed at the same deadline;
// - a client that does not read its answers is disconnected when an answer would take the
//   bytes waiting for it past Options::maxQueuedOutput (dropping bytes would corrupt the
//   answer framing, so the connection goes instead). One answer is always accepted when
//   nothing waits, so memory stays within the limit plus one answer;
// - the end of a client's input (EOF, or Ctrl-D on an empty line) finishes the answers
//   already queued, then closes; a half-typed last line is never run.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "uv/loop.h"
#include "uv/pipe.h"
#include "uv/timer.h"

#include "console/session.h"

namespace possync::console {

class SocketConsole final {
public:
    struct Options {
        std::string path;  // PATH.sock
        size_t maxSessions = 8;
        size_t maxQueuedOutput = 1024 * 1024;  // per client
        size_t maxLine = 512;
        uint64_t idleMs = 300000;  // close a session that sent nothing this long (0: never)
    };
    struct Counters {
        uint64_t accepted = 0;    // sessions opened
        uint64_t refused = 0;     // connections over maxSessions
        uint64_t slowClosed = 0;  // clients closed for not reading their answers
        uint64_t idleClosed = 0;  // sessions closed after Options::idleMs without input
        uint64_t commands = 0;    // lines run, all sessions
    };

    // Listens on options.path (a stale socket file is replaced; a live one or a non-socket
    // is Errc::Exists). The socket file is removed when the console is destroyed.
    // `loop` and `interpreter` are borrowed and must outlive this.
    static Result<std::unique_ptr<SocketConsole>> create(uv::Loop& loop, Interpreter& interpreter,
                                                         Options options);
    ~SocketConsole();
    SocketConsole(const SocketConsole&) = delete;
    SocketConsole& operator=(const SocketConsole&) = delete;

    // Sessions open now (ending ones excluded).
    size_t sessions() const;
    const Counters& counters() const { return counters_; }
    const std::string& path() const { return options_.path; }

private:
    struct Client;
    SocketConsole(uv::Loop& loop, Interpreter& interpreter, Options options);

    void onConnection(uv::Owned<uv::PipeStream> stream);
    void onData(uint64_t id, std::string_view bytes);
    void onIdle(uint64_t id);
    // "console busy: 8 socket sessions open (idle ones close after 300 s)"
    std::string busyReason() const;
    void send(Client& client, std::string_view bytes);
    // Stops reading and closes after the queued answers went out.
    void finish(Client& client);
    // Closes at once (queued answers are dropped) at the next reap().
    void kill(Client& client);
    // Destroys killed clients; called where no Session of theirs is on the stack.
    void reap();

    uv::Loop& loop_;
    Interpreter& interpreter_;
    Options options_;
    Counters counters_;
    uv::Owned<uv::PipeListener> listener_;
    std::map<uint64_t, std::unique_ptr<Client>> clients_;
    uint64_t nextId_ = 1;
};

}  // namespace possync::console
