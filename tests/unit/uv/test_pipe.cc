// Unix-domain sockets: server + client, stale socket files, live sockets, bad paths.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "uv/pipe.h"

#include "fixture.h"

using namespace possync;
using possync::uvtest::LoopFixture;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/possync-uvpipe-XXXXXX";
        char* d = mkdtemp(tmpl);
        REQUIRE(d != nullptr);
        path = d;
    }
    ~TempDir() {
        std::string cmd = "rm -rf '" + path + "'";
        CHECK(std::system(cmd.c_str()) == 0);
    }
};

bool exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

// A socket file whose process is gone: bound, never listened on, fd closed, file kept.
void makeStaleSocket(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
}

}  // namespace

TEST_CASE("pipe: console socket server and client exchange lines; the socket file goes on close") {
    LoopFixture f;
    TempDir dir;
    std::string path = dir.path + "/console.sock";
    makeStaleSocket(path);  // left by a crashed daemon: listen must clean it up

    std::vector<uv::Owned<uv::PipeStream>> sessions;
    std::string serverGot, serverPeer;
    auto listener = uv::PipeListener::create(*f.loop, path, [&](uv::Owned<uv::PipeStream> s) {
        uv::PipeStream* raw = s.get();
        serverPeer = raw->peerName();
        sessions.push_back(std::move(s));
        (void)raw->startRead(
            [&, raw](Bytes d) {
                serverGot += d.str();
                if (serverGot.find('\n') != std::string::npos) {
                    std::string reply = "ok " + serverGot;
                    (void)raw->write(std::vector<uint8_t>(reply.begin(), reply.end()),
                                     [raw](Status) { (void)raw->shutdown(); });
                }
            },
            [](Status) {});
    });
    REQUIRE_MESSAGE(listener.ok(), (listener.ok() ? "" : listener.error().message));
    CHECK(listener.value()->path() == path);

    uv::Owned<uv::PipeStream> client;
    std::string clientGot;
    int ends = 0, endErrors = 0;
    auto pending = uv::PipeStream::connect(*f.loop, path, [&](Result<uv::Owned<uv::PipeStream>> r) {
        if (!r.ok()) return;
        client = std::move(r).value();
        (void)client->startRead([&](Bytes d) { clientGot += d.str(); },
                                [&](Status st) {
                                    ++ends;
                                    if (!st.ok()) ++endErrors;
                                    client.reset();
                                });
        std::string line = "status\n";
        (void)client->write(std::vector<uint8_t>(line.begin(), line.end()));
    });
    REQUIRE(pending.ok());
    f.runUntil([&] { return ends == 1; });
    CHECK_FALSE(f.timedOut);
    CHECK(serverGot == "status\n");
    CHECK(clientGot == "ok status\n");
    CHECK(serverPeer == path + "#1");
    CHECK(ends == 1);
    CHECK(endErrors == 0);

    // A second listener on a live socket is refused, and the first keeps its file.
    auto second = uv::PipeListener::create(*f.loop, path, [](uv::Owned<uv::PipeStream>) {});
    REQUIRE_FALSE(second.ok());
    CHECK(second.error().code == Errc::Exists);
    CHECK(exists(path));

    sessions.clear();
    listener.value().reset();
    pending.value().reset();
    f.finish();
    CHECK_FALSE(exists(path));
}

TEST_CASE("pipe: connect errors, long paths and non-socket files") {
    LoopFixture f;
    TempDir dir;
    int calls = 0;
    Errc code = Errc::Busy;
    std::string message;
    auto pending =
        uv::PipeStream::connect(*f.loop, dir.path + "/none.sock", [&](Result<uv::Owned<uv::PipeStream>> r) {
            ++calls;
            if (!r.ok()) {
                code = r.error().code;
                message = r.error().message;
            }
        });
    REQUIRE(pending.ok());
    f.run();
    CHECK_FALSE(f.timedOut);
    CHECK(calls == 1);
    CHECK(code == Errc::Io);
    CHECK(message == "connect " + dir.path + "/none.sock: no such file or directory");

    std::string longPath = dir.path + "/" + std::string(200, 'x');
    auto tooLong = uv::PipeStream::connect(*f.loop, longPath, [&](auto) { ++calls; });
    REQUIRE_FALSE(tooLong.ok());
    CHECK(tooLong.error().code == Errc::TooLarge);
    auto tooLongListen = uv::PipeListener::create(*f.loop, longPath, [](uv::Owned<uv::PipeStream>) {});
    REQUIRE_FALSE(tooLongListen.ok());
    CHECK(tooLongListen.error().code == Errc::TooLarge);

    // A socket in a directory that does not exist: ENOENT, named as such (libuv says EACCES).
    auto noDir =
        uv::PipeListener::create(*f.loop, dir.path + "/missing/c.sock", [](uv::Owned<uv::PipeStream>) {});
    REQUIRE_FALSE(noDir.ok());
    CHECK(noDir.error().code == Errc::NotFound);
    CHECK(noDir.error().message ==
          "bind " + dir.path + "/missing/c.sock: no such directory: " + dir.path + "/missing");

    std::string plain = dir.path + "/plain";
    int fd = ::open(plain.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    ::close(fd);
    auto notSocket = uv::PipeListener::create(*f.loop, plain, [](uv::Owned<uv::PipeStream>) {});
    REQUIRE_FALSE(notSocket.ok());
    CHECK(notSocket.error().code == Errc::Exists);
    CHECK(exists(plain));

    // Cancel: destroy before the loop runs; the callback never comes.
    int cancelledCalls = 0;
    auto listener = uv::PipeListener::create(*f.loop, dir.path + "/c.sock", [](uv::Owned<uv::PipeStream>) {});
    REQUIRE(listener.ok());
    auto cancelled = uv::PipeStream::connect(*f.loop, dir.path + "/c.sock", [&](auto) { ++cancelledCalls; });
    REQUIRE(cancelled.ok());
    cancelled.value().reset();
    f.spin(10);  // the listener keeps the loop alive: a few turns that never block
    CHECK_FALSE(f.timedOut);
    CHECK(cancelledCalls == 0);
    CHECK(calls == 1);
    listener.value().reset();
    pending.value().reset();
    f.finish();
}

TEST_CASE("pipe: the listening socket file is owner and group only, whatever the umask") {
    LoopFixture f;
    TempDir dir;
    for (mode_t mask : {mode_t(0), mode_t(022), mode_t(077)}) {
        CAPTURE(mask);
        std::string path = dir.path + "/console-" + std::to_string(mask) + ".sock";
        mode_t old = ::umask(mask);
        auto listener = uv::PipeListener::create(*f.loop, path, [](uv::Owned<uv::PipeStream>) {});
        ::umask(old);
        REQUIRE(listener.ok());
        struct stat st;
        REQUIRE(::lstat(path.c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
        CHECK((st.st_mode & 0777) == 0660);
        listener.value().reset();
        f.spin(2);
    }
}
