// Serial ports: open a tty raw (8N1, no flow control) at a standard speed, and restore it on close.
//
// This is the only place that knows termios. Everything above sees a non-blocking file
// descriptor. The daemon's serial console (firmware/console) and the `possync console
// --serial` client both open their tty through here, so both sides agree on the settings:
// raw input (no line discipline, no echo, no signals), 8 data bits, no parity, 1 stop bit,
// CLOCAL (modem control lines ignored, so a missing DCD never blocks or hangs up the port),
// CREAD, no hardware or software flow control.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"

namespace possync::serial {

// The default speed of the console (the usual speed of board debug UARTs).
inline constexpr uint32_t kDefaultBaud = 115200;

// True if `baud` is one of the standard speeds openRaw accepts.
bool isSupportedBaud(uint32_t baud);
// The accepted speeds, for error and help messages: "1200, 2400, ..., 4000000".
std::string supportedBauds();

// Opens `path` with O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC and configures it raw 8N1 at
// `baud`; pending input is discarded. Returns the descriptor (the caller closes it).
// Errors: InvalidArgument for an unsupported speed or a path that is not a tty, Io (with
// the OS reason) when open or tcsetattr fail. The error message names the path.
Result<int> openRaw(const std::string& path, uint32_t baud);

// An open tty that gives back its original termios settings when destroyed
// (so a shell's terminal is left as it was found).
class Port final {
public:
    // Same checks and errors as openRaw.
    static Result<std::unique_ptr<Port>> open(const std::string& path, uint32_t baud);
    ~Port();
    Port(const Port&) = delete;
    Port& operator=(const Port&) = delete;

    int fd() const { return fd_; }
    const std::string& path() const { return path_; }
    uint32_t baud() const { return baud_; }

private:
    struct Saved;
    Port(int fd, std::string path, uint32_t baud, std::unique_ptr<Saved> saved);

    int fd_;
    std::string path_;
    uint32_t baud_;
    std::unique_ptr<Saved> saved_;
};

// A terminal the caller already has (a shell's stdin) switched to raw input for a line editor:
// no line buffering, no echo, no signal keys (Ctrl-C, Ctrl-D, Ctrl-U reach the program), CR not
// turned into LF; output processing stays on. The settings come back when it is destroyed.
class RawInput final {
public:
    static Result<std::unique_ptr<RawInput>> enter(int fd);
    ~RawInput();
    RawInput(const RawInput&) = delete;
    RawInput& operator=(const RawInput&) = delete;

private:
    struct Saved;
    RawInput(int fd, std::unique_ptr<Saved> saved);
    int fd_;
    std::unique_ptr<Saved> saved_;
};

}  // namespace possync::serial
