// The client side: reply readers (pure), and `possync console` run as a child process
// against a socket console and a serial console on this test's loop.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <pty.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <sstream>

#include "log/log.h"

#include "console/reply_reader.h"
#include "console/serial_console.h"
#include "console/socket_console.h"
#include "fake_backend.h"

extern char** environ;

using namespace possync;
using namespace possync::console;
using possync::console::test::FakeBackend;

TEST_CASE("ScriptReplyReader splits answers at markers and undoes dot-stuffing") {
    ScriptReplyReader r;
    r.feed("a: 1\n..dot\n.o");
    CHECK_FALSE(r.next());
    r.feed("k\nerror: no\n.error\n.ok\n");
    auto first = r.next();
    REQUIRE(first);
    CHECK(first->ok);
    CHECK(first->text == "a: 1\n.dot\n");
    auto second = r.next();
    REQUIRE(second);
    CHECK_FALSE(second->ok);
    CHECK(second->text == "error: no\n");
    auto third = r.next();
    REQUIRE(third);
    CHECK(third->ok);
    CHECK(third->text.empty());
    CHECK_FALSE(r.next());
    CHECK(r.buffered() == 0);
}

TEST_CASE("TerminalReplyReader drops the echo and the prompt and tells errors") {
    TerminalReplyReader r;
    r.feed("\r\npossync console 1 (type help)\r\npossync> ");
    CHECK_FALSE(r.interrupted());
    r.feed("garbage^C\r\npossync");
    CHECK_FALSE(r.interrupted());
    r.feed("> ");
    CHECK(r.interrupted());
    r.feed("get t k\r\nkey: k\r\nvalue: v\r\n");
    CHECK_FALSE(r.next());
    r.feed("possync> ");
    auto a = r.next();
    REQUIRE(a);
    CHECK(a->ok);
    CHECK(a->text == "key: k\nvalue: v\n");
    r.feed("nope\r\nerror: unknown command 'nope' (try help)\r\npossync> ");
    a = r.next();
    REQUIRE(a);
    CHECK_FALSE(a->ok);
    CHECK(a->text == "error: unknown command 'nope' (try help)\n");
    r.feed("\r\npossync> ");
    a = r.next();
    REQUIRE(a);
    CHECK(a->ok);
    CHECK(a->text.empty());
}

namespace {

constexpr int kMaxTurns = 5000;  // x 1 ms

void setNonBlocking(int fd) {
    REQUIRE(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
}

void drainInto(int fd, std::string& out) {
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return;
        out.append(buf, static_cast<size_t>(n));
    }
}

struct Run {
    int exitCode = -1;
    std::string out;
    std::string err;
};

// Runs the client with `args` and `input` on stdin while turning `loop` (and calling
// `alsoEachTurn`); kills it if it takes more than kMaxTurns turns.
Run runClient(uv::Loop& loop, const std::vector<std::string>& args, const std::string& input = {},
              const std::function<void()>& alsoEachTurn = {}) {
    int in[2], out[2], err[2];
    REQUIRE(pipe(in) == 0);
    REQUIRE(pipe(out) == 0);
    REQUIRE(pipe(err) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) posix_spawn_file_actions_addclose(&fa, fd);
    // In a cross build the client is an ARM binary: run it behind Meson's exe wrapper (qemu).
    std::vector<std::string> words;
    if (const char* wrapper = std::getenv("MESON_EXE_WRAPPER")) {
        std::istringstream split(wrapper);
        for (std::string w; split >> w;) words.push_back(w);
    }
    words.push_back(POSSYNC_CONSOLE_CLIENT);
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : words) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    REQUIRE(posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    signal(SIGPIPE, SIG_IGN);  // a client that failed early does not read its stdin
    if (!input.empty()) CHECK(::write(in[1], input.data(), input.size()) == ssize_t(input.size()));
    ::close(in[1]);
    setNonBlocking(out[0]);
    setNonBlocking(err[0]);

    Run run;
    int status = 0;
    bool exited = false;
    for (int turn = 0; turn < kMaxTurns && !exited; ++turn) {
        loop.runNoWait();
        if (alsoEachTurn) alsoEachTurn();
        drainInto(out[0], run.out);
        drainInto(err[0], run.err);
        exited = waitpid(pid, &status, WNOHANG) == pid;
        if (!exited) usleep(1000);
    }
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        FAIL("the client did not finish: " << run.err);
    }
    drainInto(out[0], run.out);
    drainInto(err[0], run.err);
    ::close(out[0]);
    ::close(err[0]);
    run.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
}

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/possync-client-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::string cmd = "rm -rf '" + path + "'";
        CHECK(std::system(cmd.c_str()) == 0);
    }
};

std::unique_ptr<uv::Loop> makeLoop() {
    auto loop = uv::Loop::create();
    REQUIRE(loop.ok());
    return std::move(*loop);
}

const std::string kStatus =
    "role: slave\nstore: shop1\ndevice: till-2\nkey: 4f1c9a20b7d3e865\ngeneration: 0123456789abcdef\nterm: "
    "0\nposition: 41\n"
    "master_head: 42\nlag_changes: 1\nlag_ms: 15\nlink: connected\nuptime_s: 3600\n"
    "discovery: avahi\nwaiting: -\nfailover: -\ntrust: -\n";

// Two pseudo-terminals joined master to master: a null-modem cable between the console's
// tty (a.slave) and the client's (b.slave). pump() carries the bytes across.
struct NullModem {
    int aMaster = -1, bMaster = -1;
    std::string aSlave, bSlave;

    NullModem() {
        open(aMaster, aSlave);
        open(bMaster, bSlave);
    }
    ~NullModem() {
        ::close(aMaster);
        ::close(bMaster);
    }
    static void open(int& master, std::string& slaveName) {
        int slave = -1;
        char name[128];
        REQUIRE(openpty(&master, &slave, name, nullptr, nullptr) == 0);
        ::close(slave);
        slaveName = name;
        setNonBlocking(master);
    }
    void pump() {
        carry(aMaster, bMaster);
        carry(bMaster, aMaster);
    }
    static void carry(int from, int to) {
        std::string bytes;
        drainInto(from, bytes);
        size_t done = 0;
        for (int i = 0; i < 1000 && done < bytes.size(); ++i) {
            ssize_t n = ::write(to, bytes.data() + done, bytes.size() - done);
            if (n > 0)
                done += static_cast<size_t>(n);
            else
                usleep(100);
        }
    }
};

}  // namespace

TEST_CASE("possync console --socket: one command, exit codes, interactive, no console") {
    log::setStderr(false);
    TempDir dir;
    auto loop = makeLoop();
    FakeBackend backend;
    backend.data["orders"]["a b"] = ".leading dot";
    Interpreter interpreter(backend);
    SocketConsole::Options options;
    options.path = dir.path + "/console.sock";
    auto console = SocketConsole::create(*loop, interpreter, options);
    REQUIRE(console.ok());

    Run r = runClient(*loop, {"--socket", options.path, "status"});
    CHECK(r.exitCode == 0);
    CHECK(r.out == kStatus);
    CHECK(r.err.empty());

    r = runClient(*loop, {"--socket", options.path, "get", "orders", "a b"});
    CHECK(r.exitCode == 0);
    CHECK(r.out == "table: orders\nkey: 0x612062\nvalue: .leading dot\n");

    r = runClient(*loop, {"--socket", options.path, "get", "orders", "missing"});
    CHECK(r.exitCode == 1);
    CHECK(r.out == "error: no key missing in table orders\n");

    r = runClient(*loop, {"--socket", options.path, "frobnicate"});
    CHECK(r.exitCode == 1);

    r = runClient(*loop, {"--socket", options.path}, "status\nget orders a1\nnope\n");
    CHECK(r.exitCode == 0);
    CHECK(r.out ==
          kStatus + "table: orders\nkey: a1\nvalue: one\n" + "error: unknown command 'nope' (try help)\n");

    r = runClient(*loop, {"--socket", dir.path + "/nobody.sock", "status"});
    CHECK(r.exitCode == 2);
    CHECK(r.err == "possync console: connect " + dir.path + "/nobody.sock: No such file or directory\n");
    CHECK(r.out.empty());

    console->reset();
    CHECK(loop->close().ok());
}

TEST_CASE("possync console --serial: types the command, strips echo and prompt") {
    log::setStderr(false);
    NullModem cable;
    auto loop = makeLoop();
    FakeBackend backend;
    Interpreter interpreter(backend);
    SerialConsole::Options options;
    options.path = cable.aSlave;
    auto console = SerialConsole::create(*loop, interpreter, options);
    REQUIRE(console.ok());
    auto pump = [&] { cable.pump(); };

    Run r = runClient(*loop, {"--serial", cable.bSlave, "status"}, {}, pump);
    CHECK_MESSAGE(r.exitCode == 0, r.err);
    CHECK(r.out == kStatus);
    CHECK(r.err.empty());

    r = runClient(*loop, {"--serial", cable.bSlave, "--baud", "115200", "get", "orders", "nope"}, {}, pump);
    CHECK(r.exitCode == 1);
    CHECK(r.out == "error: no key nope in table orders\n");

    r = runClient(*loop, {"--serial", cable.bSlave}, "get orders 0x00ff\nversion\n", pump);
    CHECK(r.exitCode == 0);
    CHECK(r.out.find("table: orders\nkey: 0x00ff\nvalue: 0x0102\nversion: ") == 0);
    CHECK(r.out.find("\nformat: 1\n") != std::string::npos);

    // Nobody answers on the other end: a bounded wait and a clear reason.
    console->reset();
    cable.pump();
    r = runClient(*loop, {"--serial", cable.bSlave, "--timeout", "200", "status"});
    CHECK(r.exitCode == 2);
    CHECK(r.err.find("possync console: no console prompt on " + cable.bSlave) == 0);
    CHECK(loop->close().ok());
}

TEST_CASE("possync console: bad command lines get a usage error") {
    auto loop = makeLoop();
    Run r = runClient(*loop, {});
    CHECK(r.exitCode == 2);
    CHECK(r.err.find("possync console: give exactly one of --serial and --socket\nusage: ") == 0);
    r = runClient(*loop, {"--serial", "/dev/x", "--socket", "/y", "status"});
    CHECK(r.exitCode == 2);
    r = runClient(*loop, {"--serial", "/dev/ttyS0", "--baud", "12345", "status"});
    CHECK(r.exitCode == 2);
    CHECK(r.err.find("possync console: unsupported baud rate 12345 (supported: ") == 0);
    r = runClient(*loop, {"--socket"});
    CHECK(r.err == "possync console: --socket needs a value\n");
    r = runClient(*loop, {"--loud", "--socket", "/x"});
    CHECK(r.err.find("possync console: unknown option --loud") == 0);
    r = runClient(*loop, {"--serial", "/dev/null", "status"});
    CHECK(r.exitCode == 2);
    CHECK(r.err == "possync console: serial /dev/null: not a tty\n");
    r = runClient(*loop, {"--socket", "/x", "get", "t", "a\nb"});
    CHECK(r.exitCode == 2);
    CHECK(r.err == "possync console: COMMAND words must be text (give binary keys as 0x-hex)\n");
    CHECK(loop->close().ok());
}
