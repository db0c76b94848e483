#include "console/socket_console.h"

#include <cstdio>
#include <vector>

#include "log/log.h"

namespace possync::console {

POSSYNC_LOG_DECLARE(Console);

namespace {
// "300 s", "1.5 s", "300 ms": for people reading a refusal or the log.
std::string durationText(uint64_t ms) {
    if (ms < 1000) return std::to_string(ms) + " ms";
    std::string s = std::to_string(ms / 1000);
    if (ms % 1000) {
        char frac[8];
        snprintf(frac, sizeof frac, ".%03u", static_cast<unsigned>(ms % 1000));
        std::string f(frac);
        while (f.back() == '0') f.pop_back();
        s += f;
    }
    return s + " s";
}
}  // namespace

struct SocketConsole::Client {
    uint64_t id = 0;
    uv::Owned<uv::PipeStream> stream;
    std::unique_ptr<Session> session;
    uv::Owned<uv::Timer> idle;  // restarted by every byte received (Options::idleMs)
    bool ending = false;        // finish() called: no more input, closing after the answers
    bool dead = false;          // to be destroyed by reap()
};

SocketConsole::SocketConsole(uv::Loop& loop, Interpreter& interpreter, Options options)
    : loop_(loop), interpreter_(interpreter), options_(std::move(options)) {}

Result<std::unique_ptr<SocketConsole>> SocketConsole::create(uv::Loop& loop, Interpreter& interpreter,
                                                             Options options) {
    std::unique_ptr<SocketConsole> self(new SocketConsole(loop, interpreter, std::move(options)));
    SocketConsole* raw = self.get();
    auto listener = uv::PipeListener::create(
        loop, raw->options_.path,
        [raw](uv::Owned<uv::PipeStream> stream) { raw->onConnection(std::move(stream)); });
    if (!listener) return listener.takeError();
    self->listener_ = std::move(*listener);
    LOG(Console, Info) << "console socket on " << self->options_.path;
    return self;
}

SocketConsole::~SocketConsole() {
    clients_.clear();
    listener_.reset();
}

size_t SocketConsole::sessions() const {
    size_t n = 0;
    for (const auto& [id, c] : clients_) n += c->session && !c->ending && !c->dead;
    return n;
}

void SocketConsole::onConnection(uv::Owned<uv::PipeStream> stream) {
    auto client = std::make_unique<Client>();
    client->id = nextId_++;
    client->stream = std::move(stream);
    Client& c = *client;
    clients_.emplace(c.id, std::move(client));

    if (sessions() >= options_.maxSessions) {
        ++counters_.refused;
        std::string why = busyReason();
        LOG(Console, Warning) << "console socket: refused a session: " << why;
        send(c, "error: " + why + "\n");
        send(c, kErrorMarker);
        send(c, "\n");
        finish(c);
        reap();
        return;
    }
    ++counters_.accepted;
    uint64_t id = c.id;
    if (options_.idleMs > 0) {
        auto timer = uv::Timer::create(loop_);
        if (!timer) {
            LOG(Console, Warning) << "console socket: " << timer.error().message;
            kill(c);
            reap();
            return;
        }
        c.idle = std::move(*timer);
        c.idle->start(options_.idleMs, options_.idleMs, [this, id] { onIdle(id); });
    }
    c.session = std::make_unique<Session>(
        interpreter_, SessionMode::Script, [this, &c](std::string_view b) { send(c, b); },
        [this, &c] { finish(c); }, options_.maxLine);
    Status st = c.stream->startRead([this, id](Bytes data) { onData(id, data.view()); },
                                    [this, id](Status end) {
                                        auto it = clients_.find(id);
                                        if (it == clients_.end()) return;
                                        if (!end)
                                            LOG(Console, Debug) << "console socket: " << end.error().message;
                                        finish(*it->second);
                                        reap();
                                    });
    if (!st) {
        LOG(Console, Warning) << "console socket: " << st.error().message;
        kill(c);
        reap();
        return;
    }
    c.session->start();
}

void SocketConsole::onData(uint64_t id, std::string_view bytes) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    Client& c = *it->second;
    if (c.ending || c.dead) return;
    if (c.idle) c.idle->again();
    uint64_t before = c.session->commands();
    c.session->feed(bytes);
    counters_.commands += c.session->commands() - before;
    reap();
}

void SocketConsole::onIdle(uint64_t id) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    Client& c = *it->second;
    if (c.dead) return;
    if (c.ending) {
        // Its input ended an idle period ago and its last answers are still not read.
        kill(c);
        reap();
        return;
    }
    ++counters_.idleClosed;
    LOG(Console, Info) << "console socket: closing a session idle for " << durationText(options_.idleMs);
    // Answers still queued go out if the client reads them before the next deadline;
    // a client that reads nothing is then cut off by the branch above.
    finish(c);
    reap();
}

std::string SocketConsole::busyReason() const {
    std::string why = "console busy: " + std::to_string(options_.maxSessions) + " socket sessions open";
    if (options_.idleMs > 0)
        why += " (idle ones close after " + durationText(options_.idleMs) + ")";
    else
        why += " (no idle timeout)";
    return why;
}

void SocketConsole::send(Client& c, std::string_view bytes) {
    if (c.dead || bytes.empty()) return;
    // One answer always fits (however long a `scan` is); a client with answers still
    // queued past the limit is not reading them.
    size_t queued = c.stream->writeQueueBytes();
    if (queued > 0 && queued + bytes.size() > options_.maxQueuedOutput) {
        ++counters_.slowClosed;
        LOG(Console, Warning) << "console socket: closing a session that does not read its "
                                 "answers ("
                              << c.stream->writeQueueBytes() << " bytes queued)";
        kill(c);
        return;
    }
    Status st = c.stream->write(std::vector<uint8_t>(bytes.begin(), bytes.end()));
    if (!st) {
        LOG(Console, Debug) << "console socket: " << st.error().message;
        kill(c);
    }
}

void SocketConsole::finish(Client& c) {
    if (c.ending || c.dead) return;
    c.ending = true;
    c.stream->stopRead();
    uint64_t id = c.id;
    Status st = c.stream->shutdown([this, id](Status) {
        auto it = clients_.find(id);
        if (it == clients_.end()) return;
        it->second->dead = true;
        reap();
    });
    if (!st) kill(c);
}

void SocketConsole::kill(Client& c) {
    c.dead = true;
    if (c.stream) c.stream->stopRead();
}

void SocketConsole::reap() {
    for (auto it = clients_.begin(); it != clients_.end();) {
        if (it->second->dead)
            it = clients_.erase(it);
        else
            ++it;
    }
}

}  // namespace possync::console
