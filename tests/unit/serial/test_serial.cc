// Unit tests for platform/serial on a real pseudo-terminal pair.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "serial/serial.h"

using namespace possync;

namespace {

// An openpty pair closed at the end of the test.
struct Pty {
    int master = -1;
    int slave = -1;
    std::string slaveName;

    Pty() {
        char name[128];
        REQUIRE(openpty(&master, &slave, name, nullptr, nullptr) == 0);
        slaveName = name;
    }
    ~Pty() {
        if (master >= 0) ::close(master);
        if (slave >= 0) ::close(slave);
    }
};

// Reads what is available on fd within ~1 s, stopping once `want` bytes arrived.
std::string readSome(int fd, size_t want) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        char buf[256];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

}  // namespace

TEST_CASE("openRaw puts a tty in raw 8N1 mode at the asked speed") {
    Pty pty;
    Result<int> fd = serial::openRaw(pty.slaveName, 9600);
    REQUIRE(fd.ok());
    struct termios tio;
    REQUIRE(tcgetattr(*fd, &tio) == 0);
    CHECK((tio.c_lflag & (ICANON | ECHO | ECHONL | ISIG | IEXTEN)) == 0);
    CHECK((tio.c_iflag & (ICRNL | INLCR | IGNCR | IXON | IXOFF | ISTRIP | BRKINT)) == 0);
    CHECK((tio.c_oflag & OPOST) == 0);
    CHECK((tio.c_cflag & CSIZE) == CS8);
    CHECK((tio.c_cflag & (PARENB | CSTOPB | CRTSCTS)) == 0);
    CHECK((tio.c_cflag & (CLOCAL | CREAD)) == (CLOCAL | CREAD));
    CHECK(cfgetispeed(&tio) == B9600);
    CHECK(cfgetospeed(&tio) == B9600);
    CHECK((fcntl(*fd, F_GETFL) & O_NONBLOCK) != 0);
    CHECK((fcntl(*fd, F_GETFD) & FD_CLOEXEC) != 0);

    // Raw both ways: CR and LF pass untranslated, nothing is echoed back.
    REQUIRE(::write(pty.master, "a\r\n", 3) == 3);
    CHECK(readSome(*fd, 3) == "a\r\n");
    REQUIRE(::write(*fd, "x\n", 2) == 2);
    CHECK(readSome(pty.master, 2) == "x\n");
    CHECK(readSome(pty.master, 1).empty());
    ::close(*fd);
}

TEST_CASE("openRaw accepts every standard speed and rejects others with a clear error") {
    Pty pty;
    for (uint32_t baud : {1200u, 19200u, 57600u, 115200u, 230400u}) {
        CAPTURE(baud);
        CHECK(serial::isSupportedBaud(baud));
        Result<int> fd = serial::openRaw(pty.slaveName, baud);
        REQUIRE(fd.ok());
        ::close(*fd);
    }
    CHECK(serial::supportedBauds().find("115200") != std::string::npos);

    Result<int> bad = serial::openRaw(pty.slaveName, 12345);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code == Errc::InvalidArgument);
    CHECK(bad.error().message.find("unsupported baud rate 12345") != std::string::npos);
    CHECK(bad.error().message.find(pty.slaveName) != std::string::npos);
    CHECK_FALSE(serial::isSupportedBaud(0));
}

TEST_CASE("openRaw refuses what is not a tty and reports a missing device") {
    Result<int> notTty = serial::openRaw("/dev/null", 115200);
    REQUIRE_FALSE(notTty.ok());
    CHECK(notTty.error().code == Errc::InvalidArgument);
    CHECK(notTty.error().message == "serial /dev/null: not a tty");

    Result<int> missing = serial::openRaw("/dev/possync-no-such-tty", 115200);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == Errc::Io);
    CHECK(missing.error().message.find("No such file") != std::string::npos);
}

TEST_CASE("Port restores the original settings when closed") {
    Pty pty;
    struct termios cooked;
    REQUIRE(tcgetattr(pty.slave, &cooked) == 0);
    cooked.c_lflag |= ICANON | ECHO;
    cfsetispeed(&cooked, B38400);
    cfsetospeed(&cooked, B38400);
    REQUIRE(tcsetattr(pty.slave, TCSANOW, &cooked) == 0);
    {
        auto port = serial::Port::open(pty.slaveName, 115200);
        REQUIRE(port.ok());
        CHECK((*port)->baud() == 115200);
        CHECK((*port)->path() == pty.slaveName);
        struct termios now;
        REQUIRE(tcgetattr((*port)->fd(), &now) == 0);
        CHECK((now.c_lflag & (ICANON | ECHO)) == 0);
        CHECK(cfgetospeed(&now) == B115200);
    }
    struct termios after;
    REQUIRE(tcgetattr(pty.slave, &after) == 0);
    CHECK((after.c_lflag & (ICANON | ECHO)) == (ICANON | ECHO));
    CHECK(cfgetospeed(&after) == B38400);

    auto bad = serial::Port::open(pty.slaveName, 7);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code == Errc::InvalidArgument);
}
