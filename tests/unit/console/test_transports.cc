// The console's transports on a real loop: the serial console on a pseudo-terminal driven
// from the master side as a technician would, and the socket console with several sessions.
// Every wait is bounded in loop turns (and so in time); each test closes its loop cleanly.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <pty.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>

#include "log/log.h"

#include "console/serial_console.h"
#include "console/socket_console.h"
#include "fake_backend.h"
#include "possync_config.h"

using namespace possync;
using namespace possync::console;
using possync::console::test::FakeBackend;

namespace {

constexpr int kMaxTurns = 3000;  // x 1 ms: every wait gives up after about 3 s

// Appends whatever fd has to `out` (non-blocking). Returns false on EOF or an error.
bool drain(int fd, std::string& out) {
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            out.append(buf, static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        return false;
    }
}

void writeAll(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        REQUIRE(n > 0);
        bytes.remove_prefix(static_cast<size_t>(n));
    }
}

void setNonBlocking(int fd) {
    REQUIRE(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
}

// Turns the loop without blocking until `done` holds; false if it never did.
bool pumpUntil(uv::Loop& loop, const std::function<bool()>& done) {
    for (int turn = 0; turn < kMaxTurns; ++turn) {
        loop.runNoWait();
        if (done()) return true;
        usleep(1000);
    }
    return false;
}

bool endsWith(const std::string& s, std::string_view tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A pty pair whose slave is reached through a symlink (so a test can swap the device).
struct Pty {
    int master = -1;
    std::string slaveName;

    Pty() {
        int slave = -1;
        char name[128];
        REQUIRE(openpty(&master, &slave, name, nullptr, nullptr) == 0);
        ::close(slave);  // the console opens it by name
        slaveName = name;
        setNonBlocking(master);
    }
    ~Pty() { closeMaster(); }
    void closeMaster() {
        if (master >= 0) ::close(master);
        master = -1;
    }
};

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/possync-console-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::string cmd = "rm -rf '" + path + "'";
        CHECK(std::system(cmd.c_str()) == 0);
    }
};

// A terminal on the pty master: types, and collects everything the console prints.
struct Terminal {
    Pty& pty;
    uv::Loop& loop;
    std::string seen;

    void type(std::string_view bytes) { writeAll(pty.master, bytes); }
    // Waits until the console printed `text` followed by the prompt; returns what came
    // since the last call.
    std::string waitFor(std::string_view text) {
        bool ok = pumpUntil(loop, [&] {
            drain(pty.master, seen);
            size_t at = seen.find(text);
            return at != std::string::npos && endsWith(seen, kPrompt) &&
                   seen.size() >= at + text.size() + kPrompt.size();
        });
        CHECK_MESSAGE(ok, "waiting for '" << text << "', got '" << seen << "'");
        std::string out = std::move(seen);
        seen.clear();
        return out;
    }
};

std::unique_ptr<uv::Loop> makeLoop() {
    auto loop = uv::Loop::create();
    REQUIRE(loop.ok());
    return std::move(*loop);
}

const std::string kStatusAnswer =
    "role: slave\r\nstore: shop1\r\ndevice: till-2\r\nkey: 4f1c9a20b7d3e865\r\ngeneration: "
    "0123456789abcdef\r\n"
    "term: 0\r\nposition: 41\r\nmaster_head: 42\r\nlag_changes: 1\r\nlag_ms: 15\r\nlink: connected\r\n"
    "uptime_s: 3600\r\ndiscovery: avahi\r\nwaiting: -\r\nfailover: -\r\ntrust: -\r\n";

}  // namespace

TEST_CASE("serial console: a technician types, sends garbage, hangs up mid-command and comes back") {
    log::setStderr(false);
    TempDir dir;
    auto pty = std::make_unique<Pty>();
    std::string link = dir.path + "/ttyCONSOLE";
    REQUIRE(symlink(pty->slaveName.c_str(), link.c_str()) == 0);

    auto loop = makeLoop();
    FakeBackend backend;
    Interpreter interpreter(backend);
    SerialConsole::Options options;
    options.path = link;
    options.reopenMs = 10;
    auto console = SerialConsole::create(*loop, interpreter, options);
    REQUIRE(console.ok());
    CHECK((*console)->lineUp());

    Terminal term{*pty, *loop, {}};
    std::string banner = term.waitFor("possync console ");
    CHECK(banner == "\r\npossync console " POSSYNC_VERSION " (type help)\r\npossync> ");

    term.type("status\r");
    CHECK(term.waitFor("trust: -") == "status\r\n" + kStatusAnswer + "possync> ");

    // A terminal program sending CRLF gives one answer, not an extra empty prompt.
    term.type("version\r\n");
    std::string v = term.waitFor("format: 1");
    CHECK(v.find("version\r\nversion: ") == 0);
    CHECK(v.find("possync> ") == v.size() - kPrompt.size());

    // Backspace fixes a typo, echo shows it.
    term.type("statx\x7fus\r");
    CHECK(term.waitFor("trust: -") == "statx\b \bus\r\n" + kStatusAnswer + "possync> ");

    // Random binary noise: error lines, never a crash; Ctrl-C and the console answers.
    std::mt19937 rng(42);
    std::string noise(4096, '\0');
    for (char& c : noise) c = static_cast<char>(rng());
    term.type(noise);
    term.type("\x03status\r");
    std::string afterNoise = term.waitFor(kStatusAnswer);
    CHECK(afterNoise.find("error: ") != std::string::npos);

    // A 2000-byte line is refused once when it ends.
    term.type(std::string(2000, 'x') + "\r");
    std::string longLine = term.waitFor("ignored");
    CHECK(longLine ==
          std::string(512, 'x') + "\r\nerror: line too long (more than 512 bytes), ignored\r\npossync> ");
    CHECK((*console)->counters().hangups == 0);
    term.type("get orders 0x00ff\r");
    CHECK(term.waitFor("value: 0x0102").find("key: 0x00ff\r\n") != std::string::npos);

    // Half a command, then the terminal goes away: nothing runs, the console keeps going.
    term.type("resy");
    CHECK(pumpUntil(*loop, [&] { return drain(pty->master, term.seen) && endsWith(term.seen, "resy"); }));
    pty->closeMaster();
    CHECK(pumpUntil(*loop, [&] { return !(*console)->lineUp(); }));
    CHECK((*console)->counters().hangups == 1);
    for (int i = 0; i < 20; ++i) loop->runNoWait();  // no busy error loop, no crash
    CHECK(backend.resyncs == 0);

    // A new terminal behind the same path: reopened, banner, prompt; the old half line is gone.
    auto pty2 = std::make_unique<Pty>();
    REQUIRE(unlink(link.c_str()) == 0);
    REQUIRE(symlink(pty2->slaveName.c_str(), link.c_str()) == 0);
    Terminal term2{*pty2, *loop, {}};
    term2.waitFor("possync console ");
    CHECK((*console)->lineUp());
    CHECK((*console)->counters().reopens == 1);
    term2.type("nc\r");
    CHECK(term2.waitFor("try help") == "nc\r\nerror: unknown command 'nc' (try help)\r\npossync> ");
    CHECK(backend.resyncs == 0);
    term2.type("resync\r");
    CHECK(term2.waitFor("resync: full sync requested").find("resync\r\n") == 0);
    CHECK(backend.resyncs == 1);
    CHECK((*console)->counters().bytesIn > 4096);

    console->reset();
    CHECK(loop->close().ok());
}

TEST_CASE("serial console: a terminal that stops reading loses output, not the loop") {
    log::setStderr(false);
    Pty pty;
    auto loop = makeLoop();
    FakeBackend backend;
    Interpreter interpreter(backend);
    SerialConsole::Options options;
    options.path = pty.slaveName;
    options.maxPendingOutput = 1024;
    auto console = SerialConsole::create(*loop, interpreter, options);
    REQUIRE(console.ok());

    // An answer far over the limit still arrives whole at a terminal that reads.
    for (int i = 0; i < 20; ++i) backend.data["big"]["k" + std::to_string(100 + i)] = std::string(1000, 'v');
    Terminal reader{pty, *loop, {}};
    reader.waitFor("possync console");
    reader.type("scan big \"\" 50\r");
    std::string big = reader.waitFor("k119");
    CHECK(big.size() > 20 * 1000);
    CHECK(big.find("rows: 20\r\nmore: no\r\n") != std::string::npos);
    CHECK((*console)->counters().droppedBytes == 0);

    // Several hundred kB of answers to a terminal that reads nothing.
    std::string helps;
    for (int i = 0; i < 300; ++i) helps += "help\r";
    writeAll(pty.master, helps);
    CHECK(pumpUntil(*loop, [&] { return (*console)->session().commands() == 301; }));
    CHECK((*console)->counters().droppedBytes > 0);
    CHECK((*console)->counters().hangups == 0);

    // Reading again: the console catches up and answers.
    Terminal term{pty, *loop, {}};
    CHECK(pumpUntil(*loop, [&] {
        std::string sink;
        drain(pty.master, sink);
        return sink.empty();
    }));
    term.seen.clear();
    term.type("\x03version\r");
    CHECK(term.waitFor("format: 1").find("version\r\nversion: ") != std::string::npos);

    console->reset();
    CHECK(loop->close().ok());
}

TEST_CASE("serial console: a bad device or speed is a clear start-up error") {
    auto loop = makeLoop();
    FakeBackend backend;
    Interpreter interpreter(backend);
    SerialConsole::Options options;
    options.path = "/dev/null";
    auto notTty = SerialConsole::create(*loop, interpreter, options);
    REQUIRE_FALSE(notTty.ok());
    CHECK(notTty.error().message == "serial /dev/null: not a tty");
    Pty pty;
    options.path = pty.slaveName;
    options.baud = 1234;
    auto badBaud = SerialConsole::create(*loop, interpreter, options);
    REQUIRE_FALSE(badBaud.ok());
    CHECK(badBaud.error().message.find("unsupported baud rate 1234") != std::string::npos);
    CHECK(loop->close().ok());
}

namespace {

// A script client of the socket console: plain POSIX socket, non-blocking.
struct Client {
    int fd = -1;
    std::string seen;
    bool eof = false;

    explicit Client(const std::string& path) {
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        REQUIRE(path.size() < sizeof addr.sun_path);
        std::memcpy(addr.sun_path, path.data(), path.size());
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        setNonBlocking(fd);
    }
    ~Client() { closeNow(); }
    void closeNow() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
    void send(std::string_view bytes) { writeAll(fd, bytes); }
    void poll() {
        if (!eof && !drain(fd, seen)) eof = true;
    }
    // Waits for one whole answer (up to and including its marker line) and returns it.
    std::string answer(uv::Loop& loop) {
        size_t end = std::string::npos;
        bool ok = pumpUntil(loop, [&] {
            poll();
            for (std::string_view marker : {"\n.ok\n", "\n.error\n"}) {
                size_t at = ("\n" + seen).find(marker);
                if (at != std::string::npos) {
                    end = at + marker.size() - 1;
                    return true;
                }
            }
            return false;
        });
        CHECK_MESSAGE(ok, "no answer, got '" << seen << "'");
        if (!ok) return {};
        std::string out = seen.substr(0, end);
        seen.erase(0, end);
        return out;
    }
};

}  // namespace

TEST_CASE("socket console: sessions at once, garbage, half commands and a clean end") {
    log::setStderr(false);
    TempDir dir;
    auto loop = makeLoop();
    FakeBackend backend;
    Interpreter interpreter(backend);
    SocketConsole::Options options;
    options.path = dir.path + "/console.sock";
    auto console = SocketConsole::create(*loop, interpreter, options);
    REQUIRE(console.ok());
    struct stat st;
    REQUIRE(stat(options.path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));

    Client a(options.path), b(options.path);
    a.send("status\n");
    b.send("get orders a1\n");
    CHECK(b.answer(*loop) == "table: orders\nkey: a1\nvalue: one\n.ok\n");
    std::string statusAnswer = a.answer(*loop);
    CHECK(statusAnswer.find("role: slave\nstore: shop1\n") == 0);
    CHECK(endsWith(statusAnswer, "trust: -\n.ok\n"));
    CHECK((*console)->sessions() == 2);

    // Interleaved: a's half line waits while b is answered.
    a.send("ver");
    b.send("get orders nope\n");
    CHECK(b.answer(*loop) == "error: no key nope in table orders\n.error\n");
    CHECK(a.seen.empty());
    a.send("sion\n");
    CHECK(a.answer(*loop).find("version: ") == 0);

    // Garbage and an overlong line: error answers, the session goes on.
    b.send(std::string("\x01\x02\xff junk\n", 9));
    CHECK(b.answer(*loop) ==
          "error: line contains bytes that are not text, ignored (type binary keys as 0x-hex)\n.error\n");
    b.send(std::string(2000, 'y') + "\n");
    CHECK(b.answer(*loop) == "error: line too long (more than 512 bytes), ignored\n.error\n");
    b.send("frob\n");
    CHECK(b.answer(*loop) == "error: unknown command 'frob' (try help)\n.error\n");
    b.send("\n");
    CHECK(b.answer(*loop) == ".ok\n");

    // Ctrl-D ends a's session after the answers already asked for.
    a.send("tables\n\x04");
    CHECK(endsWith(a.answer(*loop), "orders  4        yes      00ff\n.ok\n"));
    CHECK(pumpUntil(*loop, [&] {
        a.poll();
        return a.eof;
    }));
    CHECK((*console)->sessions() == 1);

    // End of input (a script's `printf 'status\n' | ...`): the answer still comes, then EOF.
    Client c(options.path);
    c.send("stats\n");
    REQUIRE(::shutdown(c.fd, SHUT_WR) == 0);
    CHECK(c.answer(*loop) == "frames_in: 10\nbytes_in: 2048\nerrors_protocol: 0\n.ok\n");
    CHECK(pumpUntil(*loop, [&] {
        c.poll();
        return c.eof;
    }));

    // Half a command and a disconnect: nothing runs.
    CHECK((*console)->counters().commands == 7);
    b.send("resy");
    for (int i = 0; i < 20; ++i) {
        loop->runNoWait();
        usleep(1000);
    }
    b.closeNow();
    CHECK(pumpUntil(*loop, [&] { return (*console)->sessions() == 0; }));
    CHECK(backend.resyncs == 0);
    CHECK((*console)->counters().commands == 7);
    CHECK((*console)->counters().accepted == 3);

    console->reset();
    CHECK(stat(options.path.c_str(), &st) != 0);  // the socket file is gone
    CHECK(loop->close().ok());
}

TEST_CASE("socket console: session limit and clients that do not read") {
    log::setStderr(false);
    TempDir dir;
    auto loop = makeLoop();
    FakeBackend backend;
    Interpreter interpreter(backend);
    SocketConsole::Options options;
    options.path = dir.path + "/console.sock";
    options.maxSessions = 2;
    options.maxQueuedOutput = 8 * 1024;
    auto console = SocketConsole::create(*loop, interpreter, options);
    REQUIRE(console.ok());

    Client a(options.path), b(options.path);
    CHECK(pumpUntil(*loop, [&] { return (*console)->sessions() == 2; }));
    Client c(options.path);
    CHECK(c.answer(*loop) ==
          "error: console busy: 2 socket sessions open (idle ones close after 300 s)\n.error\n");
    CHECK(pumpUntil(*loop, [&] {
        c.poll();
        return c.eof;
    }));
    CHECK((*console)->counters().refused == 1);

    // One answer longer than the limit is fine.
    for (int i = 0; i < 20; ++i) backend.data["big"]["k" + std::to_string(100 + i)] = std::string(1000, 'v');
    b.send("scan big \"\" 50\n");
    std::string big = b.answer(*loop);
    CHECK(big.size() > 20 * 1000);
    CHECK(endsWith(big, std::string(1000, 'v') + "\n.ok\n"));
    CHECK((*console)->counters().slowClosed == 0);

    // a asks for megabytes of answers and never reads: it is cut off, b is unaffected.
    std::string helps;
    for (int i = 0; i < 2000; ++i) helps += "help\n";
    a.send(helps);
    CHECK(pumpUntil(*loop, [&] { return (*console)->counters().slowClosed == 1; }));
    CHECK(pumpUntil(*loop, [&] { return (*console)->sessions() == 1; }));
    b.send("version\n");
    CHECK(b.answer(*loop).find("version: ") == 0);

    console->reset();
    CHECK(loop->close().ok());
}

TEST_CASE("socket console: idle sessions time out and a refusal says why") {
    // Eight idle socket sessions used to hold the console for ever: a ninth (the technician)
    // got "too many console sessions" until someone restarted the daemon.
    log::setStderr(false);
    TempDir dir;
    auto loop = makeLoop();
    FakeBackend backend;
    Interpreter interpreter(backend);
    SocketConsole::Options options;
    options.path = dir.path + "/console.sock";
    options.idleMs = 300;
    auto console = SocketConsole::create(*loop, interpreter, options);
    REQUIRE(console.ok());
    REQUIRE(options.maxSessions == 8);

    std::vector<std::unique_ptr<Client>> idle;
    for (int i = 0; i < 8; ++i) idle.push_back(std::make_unique<Client>(options.path));
    CHECK(pumpUntil(*loop, [&] { return (*console)->sessions() == 8; }));
    idle[0]->send("version\n");  // input before the deadline is fine
    CHECK(idle[0]->answer(*loop).find("version: ") == 0);

    Client refused(options.path);
    CHECK(refused.answer(*loop) ==
          "error: console busy: 8 socket sessions open (idle ones close after 300 ms)\n.error\n");
    CHECK((*console)->counters().refused == 1);

    // Nobody types: every idle session is closed (the client sees the end of the stream)...
    CHECK(pumpUntil(*loop, [&] {
        bool all = true;
        for (auto& c : idle) {
            c->poll();
            all = all && c->eof;
        }
        return all;
    }));
    CHECK((*console)->counters().idleClosed == 8);
    CHECK((*console)->sessions() == 0);
    // ...and the technician gets in.
    Client technician(options.path);
    technician.send("status\n");
    CHECK(technician.answer(*loop).find("role: slave\n") == 0);

    console->reset();
    CHECK(loop->close().ok());
}

TEST_CASE("socket console: a live socket is not taken over") {
    TempDir dir;
    auto loop = makeLoop();
    FakeBackend backend;
    Interpreter interpreter(backend);
    SocketConsole::Options options;
    options.path = dir.path + "/console.sock";
    auto first = SocketConsole::create(*loop, interpreter, options);
    REQUIRE(first.ok());
    auto second = SocketConsole::create(*loop, interpreter, options);
    REQUIRE_FALSE(second.ok());
    CHECK(second.error().code == Errc::Exists);
    first->reset();
    CHECK(loop->close().ok());
}
