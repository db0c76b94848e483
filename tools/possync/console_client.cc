#include "console_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "serial/serial.h"

#include "console/line_editor.h"
#include "console/reply_reader.h"
#include "console/tokenizer.h"

using namespace possync;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitErrorAnswer = 1;
constexpr int kExitNoConsole = 2;

constexpr char kConsoleUsage[] =
    "usage: possync console (--serial DEV [--baud N] | --socket PATH.sock) [--timeout MS] "
    "[COMMAND...]";

struct Options {
    std::string serial;
    uint32_t baud = serial::kDefaultBaud;
    std::string socket;
    uint64_t timeoutMs = 5000;
    std::vector<std::string> command;
};

int fail(const std::string& reason) {
    std::fprintf(stderr, "possync console: %s\n", reason.c_str());
    return kExitNoConsole;
}

Result<Options> parseArgs(int argc, char** argv) {
    Options o;
    int i = 0;
    auto value = [&](const char* flag) -> Result<std::string> {
        if (i + 1 >= argc) return makeError(Errc::InvalidArgument, std::string(flag) + " needs a value");
        return std::string(argv[++i]);
    };
    for (; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--") {
            ++i;
            break;
        }
        if (arg.rfind("--", 0) != 0) break;
        if (arg == "--serial" || arg == "--socket" || arg == "--baud" || arg == "--timeout") {
            Result<std::string> v = value(arg.c_str());
            if (!v) return v.takeError();
            if (arg == "--serial") {
                o.serial = *v;
            } else if (arg == "--socket") {
                o.socket = *v;
            } else {
                std::optional<uint64_t> n = parseU64(*v);
                if (!n || *n == 0 || *n > UINT32_MAX)
                    return makeError(Errc::InvalidArgument,
                                     arg + " needs a positive number, not '" + *v + "'");
                if (arg == "--baud") {
                    if (!serial::isSupportedBaud(static_cast<uint32_t>(*n)))
                        return makeError(
                            Errc::InvalidArgument,
                            "unsupported baud rate " + *v + " (supported: " + serial::supportedBauds() + ")");
                    o.baud = static_cast<uint32_t>(*n);
                } else {
                    o.timeoutMs = *n;
                }
            }
        } else {
            return makeError(Errc::InvalidArgument, "unknown option " + arg + "\n" + kConsoleUsage);
        }
    }
    for (; i < argc; ++i) o.command.emplace_back(argv[i]);
    if (o.serial.empty() == o.socket.empty())
        return makeError(Errc::InvalidArgument,
                         std::string("give exactly one of --serial and --socket\n") + kConsoleUsage);
    for (const std::string& word : o.command)
        for (char c : word)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
                return makeError(Errc::InvalidArgument,
                                 "COMMAND words must be text (give binary keys as 0x-hex)");
    return o;
}

// A non-blocking descriptor with bounded waits.
class Link final {
public:
    // zeroIsEof: read() == 0 means the end of the stream (a socket). On a raw tty
    // (VMIN = VTIME = 0) it only means "nothing yet"; a hang-up shows up as POLLHUP or EIO.
    Link(int fd, std::string name, uint64_t timeoutMs, bool zeroIsEof)
        : fd_(fd),
          name_(std::move(name)),
          timeoutMs_(static_cast<int>(std::min<uint64_t>(timeoutMs, INT32_MAX))),
          zeroIsEof_(zeroIsEof) {}

    Status writeAll(std::string_view bytes) {
        while (!bytes.empty()) {
            ssize_t n = ::write(fd_, bytes.data(), bytes.size());
            if (n > 0) {
                bytes.remove_prefix(static_cast<size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                POSSYNC_TRY(wait(POLLOUT));
                continue;
            }
            return makeError(Errc::Io, "write to " + name_ + ": " + std::strerror(errno));
        }
        return {};
    }

    // Whatever arrives next; Errc::Closed at end of stream, Errc::Busy after the timeout.
    Result<std::string> readSome() {
        // A tty that polls readable yet keeps reading 0 bytes has hung up.
        int emptyReads = 0;
        for (;;) {
            char buf[4096];
            ssize_t n = ::read(fd_, buf, sizeof buf);
            if (n > 0) return std::string(buf, static_cast<size_t>(n));
            if (n == 0 && (zeroIsEof_ || ++emptyReads > 3))
                return makeError(Errc::Closed, name_ + " closed the connection");
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                return makeError(Errc::Io, "read from " + name_ + ": " + std::strerror(errno));
            POSSYNC_TRY(wait(POLLIN));
        }
    }

private:
    Status wait(short events) {
        struct pollfd p = {fd_, events, 0};
        for (;;) {
            int rc = ::poll(&p, 1, timeoutMs_);
            if (rc > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)) && !(p.revents & events))
                return makeError(Errc::Closed, name_ + " hung up");
            if (rc > 0) return {};
            if (rc == 0)
                return makeError(Errc::Busy,
                                 "no answer from " + name_ + " within " + std::to_string(timeoutMs_) + " ms");
            if (errno != EINTR) return makeError(Errc::Io, std::string("poll: ") + std::strerror(errno));
        }
    }

    int fd_;
    std::string name_;
    int timeoutMs_;
    bool zeroIsEof_;
};

// One conversation: send a line, get its answer.
class Conversation {
public:
    virtual ~Conversation() = default;
    virtual Result<console::Answer> ask(const std::string& line) = 0;
};

class SocketConversation final : public Conversation {
public:
    SocketConversation(int fd, const std::string& path, uint64_t timeoutMs)
        : fd_(fd), link_(fd, path, timeoutMs, true) {}
    ~SocketConversation() override { ::close(fd_); }

    Result<console::Answer> ask(const std::string& line) override {
        POSSYNC_TRY(link_.writeAll(line + "\n"));
        for (;;) {
            if (std::optional<console::Answer> a = reader_.next()) return std::move(*a);
            Result<std::string> bytes = link_.readSome();
            if (!bytes) return bytes.takeError();
            reader_.feed(*bytes);
        }
    }

private:
    int fd_;
    Link link_;
    console::ScriptReplyReader reader_;
};

class SerialConversation final : public Conversation {
public:
    SerialConversation(std::unique_ptr<serial::Port> port, uint64_t timeoutMs)
        : port_(std::move(port)), link_(port_->fd(), port_->path(), timeoutMs, false) {}

    // Ctrl-C: whatever was half typed on the console is dropped and the prompt answers.
    Status sync() {
        POSSYNC_TRY(link_.writeAll("\x03"));
        for (;;) {
            Result<std::string> bytes = link_.readSome();
            if (!bytes) {
                if (bytes.error().code == Errc::Busy)
                    return makeError(Errc::Busy,
                                     "no console prompt on " + port_->path() +
                                         " (is possyncd --serial running there, at this --baud?)");
                return bytes.takeError();
            }
            reader_.feed(*bytes);
            if (reader_.interrupted()) return {};
        }
    }

    Result<console::Answer> ask(const std::string& line) override {
        POSSYNC_TRY(link_.writeAll(line + "\r"));
        for (;;) {
            Result<std::string> bytes = link_.readSome();
            if (!bytes) return bytes.takeError();
            reader_.feed(*bytes);
            if (std::optional<console::Answer> a = reader_.next()) return std::move(*a);
        }
    }

private:
    std::unique_ptr<serial::Port> port_;
    Link link_;
    console::TerminalReplyReader reader_;
};

Result<std::unique_ptr<Conversation>> connectSocket(const Options& o) {
    sockaddr_un addr{};
    if (o.socket.size() >= sizeof addr.sun_path)
        return makeError(Errc::InvalidArgument, "socket path too long: " + o.socket);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return makeError(Errc::Io, std::string("socket: ") + std::strerror(errno));
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, o.socket.data(), o.socket.size());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int err = errno;
        ::close(fd);
        return makeError(Errc::Io, "connect " + o.socket + ": " + std::strerror(err));
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return std::unique_ptr<Conversation>(new SocketConversation(fd, o.socket, o.timeoutMs));
}

Result<std::unique_ptr<Conversation>> openSerial(const Options& o) {
    auto port = serial::Port::open(o.serial, o.baud);
    if (!port) return port.takeError();
    auto conv = std::make_unique<SerialConversation>(std::move(*port), o.timeoutMs);
    POSSYNC_TRY(conv->sync());
    return std::unique_ptr<Conversation>(std::move(conv));
}

void print(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

// On a terminal: the console's own line editor (console/line_editor.h) with the terminal in raw
// mode, so a technician at `possync console` edits as on the serial console: cursor keys,
// Home/End, Ctrl-U/W/L, history (Up/Down, the last 32 lines), Tab completing command names
// (from the daemon's help). Ctrl-D on an empty line ends the session.
class TerminalSession final : public console::LineEditor::Handler {
public:
    TerminalSession(Conversation& conv, std::vector<std::string> commands)
        : conv_(conv), commands_(std::move(commands)) {}
    void write(std::string_view bytes) override {
        std::fwrite(bytes.data(), 1, bytes.size(), stdout);
        std::fflush(stdout);
    }
    void onLine(std::string_view line) override {
        if (line.empty()) return;
        Result<console::Answer> answer = conv_.ask(std::string(line));
        if (!answer) {
            error_ = answer.error().message;
            done_ = true;
            return;
        }
        write(answer->text);
    }
    void onBadLine(std::string_view reason) override { write("error: " + std::string(reason) + "\n"); }
    void onEndOfInput() override { done_ = true; }
    std::vector<std::string> complete(std::string_view before) override {
        if (before.find(' ') != std::string_view::npos) return {};
        return commands_;
    }
    bool done() const { return done_; }
    const std::string& error() const { return error_; }

private:
    Conversation& conv_;
    std::vector<std::string> commands_;
    bool done_ = false;
    std::string error_;
};

int interactiveTerminal(Conversation& conv) {
    std::vector<std::string> commands;
    if (Result<console::Answer> help = conv.ask("help"); help && help->ok) {
        size_t at = 0;
        while (at < help->text.size()) {
            size_t nl = help->text.find('\n', at);
            if (nl == std::string::npos) nl = help->text.size();
            std::string line = help->text.substr(at, nl - at);
            if (size_t sp = line.find(' '); sp != 0 && !line.empty()) commands.push_back(line.substr(0, sp));
            at = nl + 1;
        }
    }
    auto raw = serial::RawInput::enter(STDIN_FILENO);  // Ctrl-C/D/U/W reach the editor
    if (!raw) return fail(raw.error().message);
    TerminalSession session(conv, std::move(commands));
    console::LineEditor::Options eo;
    eo.eol = "\n";  // the terminal's output processing (OPOST, left on) makes it CR LF
    console::LineEditor editor(eo, session);
    editor.start();
    char buf[256];
    while (!session.done()) {
        ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        editor.feed(std::string_view(buf, static_cast<size_t>(n)));
    }
    raw->reset();  // the shell's terminal settings back before the last line
    print("\n");
    if (!session.error().empty()) return fail(session.error());
    return kExitOk;
}

int interactive(Conversation& conv) {
    const bool terminal = isatty(STDIN_FILENO);
    if (terminal && isatty(STDOUT_FILENO)) return interactiveTerminal(conv);
    std::string line;
    for (;;) {
        if (terminal) print("possync> ");
        if (!std::getline(std::cin, line)) break;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        Result<console::Answer> answer = conv.ask(line);
        if (!answer) return fail(answer.error().message);
        print(answer->text);
    }
    if (terminal) print("\n");
    return kExitOk;
}

}  // namespace

int runConsoleClient(int argc, char** argv) {
    Result<Options> options = parseArgs(argc, argv);
    if (!options) return fail(options.error().message);
    Result<std::unique_ptr<Conversation>> conv =
        options->socket.empty() ? openSerial(*options) : connectSocket(*options);
    if (!conv) return fail(conv.error().message);
    if (options->command.empty()) return interactive(**conv);
    Result<console::Answer> answer = (*conv)->ask(console::joinWords(options->command));
    if (!answer) return fail(answer.error().message);
    print(answer->text);
    return answer->ok ? kExitOk : kExitErrorAnswer;
}
