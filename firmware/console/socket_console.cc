#include "console/socket_console.h"

#include <vector>

#include "log/log.h"

namespace possync::console {

POSSYNC_LOG_DECLARE(Console);

struct SocketConsole::Client {
    uint64_t id = 0;
    uv::Owned<uv::PipeStream> stream;
    std::unique_ptr<Session> session;
    bool ending = false;  // finish() called: no more input, closing after the answers
    bool dead = false;    // to be destroyed by reap()
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
        LOG(Console, Warning) << "console socket: refused a session (" << options_.maxSessions << " open)";
        send(c, "error: too many console sessions\n");
        send(c, kErrorMarker);
        send(c, "\n");
        finish(c);
        reap();
        return;
    }
    ++counters_.accepted;
    uint64_t id = c.id;
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
    uint64_t before = c.session->commands();
    c.session->feed(bytes);
    counters_.commands += c.session->commands() - before;
    reap();
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
