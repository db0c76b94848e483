#include "child.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <optional>

#include "base/host_port.h"

namespace possync::bench {

namespace {

volatile sig_atomic_t gInterrupted = 0;

void onInterrupt(int) {
    gInterrupted = 1;
}

std::string errnoText(const char* what) {
    return std::string(what) + ": " + std::strerror(errno);
}

int msUntil(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(left);
}

}  // namespace

void catchInterrupts() {
    struct sigaction sa {};
    sa.sa_handler = onInterrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocked poll() returns EINTR
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted() {
    return gInterrupted != 0;
}

Result<std::unique_ptr<Child>> Child::start(const std::vector<std::string>& argv,
                                            const std::string& logPath) {
    if (argv.empty()) return makeError(Errc::InvalidArgument, "no program to start");
    int logFd = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logFd < 0) return makeError(Errc::Io, errnoText(("open " + logPath).c_str()));
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
        ::close(logFd);
        return makeError(Errc::Io, errnoText("pipe"));
    }
    // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const char* path = argv[0].c_str();
    static const char kExecFailed[] = "exec failed: cannot run ";
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(p[0]);
        ::close(p[1]);
        ::close(logFd);
        return makeError(Errc::Io, errnoText("fork"));
    }
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
        int devNull = ::open("/dev/null", O_RDONLY);
        if (devNull >= 0) ::dup2(devNull, 0);
        ::dup2(p[1], 1);
        ::dup2(p[1], 2);
        ::execv(path, args.data());
        (void)!::write(2, kExecFailed, sizeof kExecFailed - 1);
        (void)!::write(2, path, std::strlen(path));
        (void)!::write(2, "\n", 1);
        ::_exit(127);
    }
    ::close(p[1]);
    ::fcntl(p[0], F_SETFL, ::fcntl(p[0], F_GETFL) | O_NONBLOCK);
    std::string what = argv[0].substr(argv[0].rfind('/') + 1);
    for (size_t i = 1; i < argv.size() && i < 8; ++i) what += " " + argv[i];
    if (argv.size() > 8) what += " ...";
    return std::unique_ptr<Child>(new Child(pid, p[0], logFd, logPath, std::move(what)));
}

Child::Child(pid_t pid, int fd, int logFd, std::string logPath, std::string what)
    : pid_(pid),
      fd_(fd),
      logFd_(logFd),
      logPath_(std::move(logPath)),
      what_(std::move(what)),
      startedAt_(Clock::now()) {}

Child::~Child() {
    kill();
    ::close(fd_);
    ::close(logFd_);
}

void Child::kill() {
    if (exited_) return;
    ::kill(pid_, SIGKILL);
    reap(true);
}

bool Child::reap(bool block) {
    if (exited_) return true;
    int st = 0;
    pid_t r;
    do {
        r = ::waitpid(pid_, &st, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR && block);
    if (r != pid_) return false;
    exited_ = true;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return true;
}

bool Child::readSome(int timeoutMs) {
    if (eof_) return false;
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, timeoutMs) <= 0) return true;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n > 0) {
            (void)!::write(logFd_, buf, static_cast<size_t>(n));
            partial_.append(buf, static_cast<size_t>(n));
            continue;
        }
        if (n == 0) eof_ = true;
        break;
    }
    auto now = Clock::now();
    takeLines(now);
    if (eof_ && !partial_.empty()) {  // a last line without its newline
        lines_.push_back(Line{now, partial_});
        partial_.clear();
    }
    return !eof_;
}

void Child::takeLines(Clock::time_point at) {
    size_t start = 0, nl;
    while ((nl = partial_.find('\n', start)) != std::string::npos) {
        lines_.push_back(Line{at, partial_.substr(start, nl - start)});
        start = nl + 1;
    }
    partial_.erase(0, start);
}

void Child::drain() {
    readSome(0);
}

long Child::findLine(std::string_view needle, size_t from) const {
    for (size_t i = from; i < lines_.size(); ++i)
        if (lines_[i].text.find(needle) != std::string::npos) return static_cast<long>(i);
    return -1;
}

Result<size_t> Child::waitForLine(std::string_view needle, Clock::time_point deadline,
                                  const std::function<void()>& onIdle, size_t from) {
    for (;;) {
        long at = findLine(needle, from);
        if (at >= 0) return static_cast<size_t>(at);
        std::string last = lines_.empty() ? "(no output)" : lines_.back().text;
        if (interrupted())
            return makeError(Errc::Closed, "interrupted while waiting for \"" + std::string(needle) + "\"");
        if (eof_ || reap(false)) {
            drain();
            if (findLine(needle, from) >= 0) continue;
            reap(true);
            return makeError(Errc::Closed, "'" + what_ + "' exited (status " + std::to_string(status_) +
                                               ") before \"" + std::string(needle) +
                                               "\"; last line: " + last + " (log " + logPath_ + ")");
        }
        if (Clock::now() >= deadline)
            return makeError(Errc::Busy, "no \"" + std::string(needle) + "\" from '" + what_ +
                                             "' before the deadline; last line: " + last + " (log " +
                                             logPath_ + ")");
        readSome(std::min(10, msUntil(deadline)));
        if (onIdle) onIdle();
    }
}

Result<int> Child::waitExit(Clock::time_point deadline) {
    while (!(eof_ && reap(false))) {
        if (interrupted() || Clock::now() >= deadline) {
            kill();
            return makeError(interrupted() ? Errc::Closed : Errc::Busy,
                             std::string(interrupted() ? "interrupted" : "deadline passed") +
                                 " waiting for '" + what_ + "' to exit (killed; log " + logPath_ + ")");
        }
        if (eof_) {
            ::poll(nullptr, 0, std::min(10, msUntil(deadline)));
        } else {
            readSome(std::min(10, msUntil(deadline)));
        }
    }
    return status_;
}

Result<int> Child::stop(Clock::time_point deadline) {
    if (!exited_) ::kill(pid_, SIGTERM);
    return waitExit(deadline);
}

std::string Child::output() const {
    std::string out;
    for (const auto& l : lines_) out += l.text + "\n";
    return out;
}

Result<std::string> runTool(const std::vector<std::string>& argv, const std::string& logPath,
                            Clock::time_point deadline) {
    auto child = Child::start(argv, logPath);
    if (!child) return child.takeError();
    auto rc = (*child)->waitExit(deadline);
    if (!rc) return rc.takeError();
    const auto& lines = (*child)->lines();
    if (*rc != 0) {
        std::string cmd;
        for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
        return makeError(Errc::Io, "'" + cmd + "' failed (status " + std::to_string(*rc) + "): " +
                                       (lines.empty() ? std::string("(no output)") : lines.back().text));
    }
    return (*child)->output();
}

Result<Binaries> findBinaries(std::string binDir) {
    namespace fs = std::filesystem;
    if (binDir.empty()) {
        // This program lives in BUILD/tools/bench/.
        std::error_code ec;
        auto self = fs::read_symlink("/proc/self/exe", ec);
        if (ec)
            return makeError(Errc::NotFound, "cannot find this program's build directory: give --bin-dir");
        binDir = self.parent_path().parent_path().parent_path().string();
    }
    auto pick = [&](const char* name, const char* inBuild) -> std::optional<std::string> {
        for (std::string p : {binDir + "/" + name, binDir + "/" + inBuild})
            if (::access(p.c_str(), X_OK) == 0) return p;
        return std::nullopt;
    };
    auto d = pick("possyncd", "firmware/daemon/possyncd");
    auto t = pick("possync", "tools/possync/possync");
    if (!d || !t)
        return makeError(Errc::NotFound,
                         std::string("no executable ") + (d ? "possync" : "possyncd") + " in " + binDir +
                             " (give --bin-dir: a build directory or the binaries' directory)");
    return Binaries{*d, *t};
}

Result<std::string> listeningAddress(Child& master, Clock::time_point deadline) {
    auto listening = master.waitForLine("Daemon: listening on ", deadline);
    if (!listening) return listening.takeError();
    const std::string& line = master.lines()[*listening].text;
    const std::string marker = "listening on ";
    auto bound = parseHostPort(line.substr(line.find(marker) + marker.size()), PortUse::Connect);
    if (!bound) return makeError(Errc::Protocol, "cannot read the master's address from: " + line);
    return formatHostPort(bound->host, bound->port);
}

Status stopDaemon(Child& c) {
    auto rc = c.stop(Clock::now() + std::chrono::seconds(10));
    if (!rc) return rc.takeError();
    if (*rc != 0)
        return makeError(Errc::Io, "a daemon exited with status " + std::to_string(*rc) +
                                       " after SIGTERM (log " + c.logPath() + ")");
    return {};
}

}  // namespace possync::bench
