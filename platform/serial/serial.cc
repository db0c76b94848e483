#include "serial/serial.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace possync::serial {

namespace {

struct Speed {
    uint32_t baud;
    speed_t code;
};

// Standard speeds only: a custom divisor (BOTHER) is board specific and not needed for
// a console.
constexpr Speed kSpeeds[] = {
    {1200, B1200},       {2400, B2400},   {4800, B4800},     {9600, B9600},     {19200, B19200},
    {38400, B38400},     {57600, B57600}, {115200, B115200}, {230400, B230400},
#ifdef B460800
    {460800, B460800},
#endif
#ifdef B500000
    {500000, B500000},
#endif
#ifdef B576000
    {576000, B576000},
#endif
#ifdef B921600
    {921600, B921600},
#endif
#ifdef B1000000
    {1000000, B1000000},
#endif
#ifdef B1500000
    {1500000, B1500000},
#endif
#ifdef B2000000
    {2000000, B2000000},
#endif
#ifdef B3000000
    {3000000, B3000000},
#endif
#ifdef B4000000
    {4000000, B4000000},
#endif
};

const Speed* findSpeed(uint32_t baud) {
    for (const Speed& s : kSpeeds)
        if (s.baud == baud) return &s;
    return nullptr;
}

Error osError(const std::string& path, const char* what, int err) {
    return makeError(Errc::Io, "serial " + path + ": " + what + ": " + std::strerror(err));
}

// Opens without configuring; checks the speed first so a bad --baud fails before any I/O.
Result<int> openTty(const std::string& path, uint32_t baud) {
    if (!findSpeed(baud))
        return makeError(Errc::InvalidArgument, "serial " + path + ": unsupported baud rate " +
                                                    std::to_string(baud) +
                                                    " (supported: " + supportedBauds() + ")");
    int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return osError(path, "open", errno);
    if (!isatty(fd)) {
        ::close(fd);
        return makeError(Errc::InvalidArgument, "serial " + path + ": not a tty");
    }
    return fd;
}

Status configure(int fd, const std::string& path, uint32_t baud) {
    struct termios tio;
    if (tcgetattr(fd, &tio) != 0) return osError(path, "tcgetattr", errno);
    cfmakeraw(&tio);
    tio.c_cflag &= ~static_cast<tcflag_t>(CSIZE | PARENB | CSTOPB | CRTSCTS);
    tio.c_cflag |= CS8 | CLOCAL | CREAD;
    tio.c_iflag &= ~static_cast<tcflag_t>(IXON | IXOFF | IXANY);
    // Reads never wait: the descriptor is non-blocking and polled by the event loop.
    tio.c_cc[VMIN] = 0;
    tio.c_cc[VTIME] = 0;
    speed_t code = findSpeed(baud)->code;
    if (cfsetispeed(&tio, code) != 0 || cfsetospeed(&tio, code) != 0)
        return osError(path, "cfsetspeed", errno);
    if (tcsetattr(fd, TCSANOW, &tio) != 0) return osError(path, "tcsetattr", errno);
    // Bytes that arrived before we owned the line belong to nobody.
    tcflush(fd, TCIFLUSH);
    return {};
}

}  // namespace

bool isSupportedBaud(uint32_t baud) {
    return findSpeed(baud) != nullptr;
}

std::string supportedBauds() {
    std::string out;
    for (const Speed& s : kSpeeds) {
        if (!out.empty()) out += ", ";
        out += std::to_string(s.baud);
    }
    return out;
}

Result<int> openRaw(const std::string& path, uint32_t baud) {
    Result<int> fd = openTty(path, baud);
    if (!fd) return fd;
    Status st = configure(*fd, path, baud);
    if (!st) {
        ::close(*fd);
        return st.takeError();
    }
    return fd;
}

struct Port::Saved {
    struct termios tio;
};

Port::Port(int fd, std::string path, uint32_t baud, std::unique_ptr<Saved> saved)
    : fd_(fd), path_(std::move(path)), baud_(baud), saved_(std::move(saved)) {}

Result<std::unique_ptr<Port>> Port::open(const std::string& path, uint32_t baud) {
    Result<int> fd = openTty(path, baud);
    if (!fd) return fd.takeError();
    auto saved = std::make_unique<Saved>();
    if (tcgetattr(*fd, &saved->tio) != 0) {
        Error e = osError(path, "tcgetattr", errno);
        ::close(*fd);
        return e;
    }
    Status st = configure(*fd, path, baud);
    if (!st) {
        ::close(*fd);
        return st.takeError();
    }
    return std::unique_ptr<Port>(new Port(*fd, path, baud, std::move(saved)));
}

Port::~Port() {
    // TCSANOW, not TCSADRAIN: a terminal that stopped reading must not block the close.
    // A hung-up line refuses the call; there is nothing left to restore then.
    tcsetattr(fd_, TCSANOW, &saved_->tio);
    ::close(fd_);
}

struct RawInput::Saved {
    termios tio;
};

Result<std::unique_ptr<RawInput>> RawInput::enter(int fd) {
    auto saved = std::make_unique<Saved>();
    if (tcgetattr(fd, &saved->tio) != 0)
        return makeError(Errc::Io, std::string("tcgetattr: ") + std::strerror(errno));
    termios raw = saved->tio;
    raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN);
    raw.c_iflag &= ~tcflag_t(IXON | ICRNL);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSAFLUSH, &raw) != 0)
        return makeError(Errc::Io, std::string("tcsetattr: ") + std::strerror(errno));
    return std::unique_ptr<RawInput>(new RawInput(fd, std::move(saved)));
}

RawInput::RawInput(int fd, std::unique_ptr<Saved> saved) : fd_(fd), saved_(std::move(saved)) {}

RawInput::~RawInput() {
    tcsetattr(fd_, TCSAFLUSH, &saved_->tio);
}

}  // namespace possync::serial
