// console::Session: one console conversation over a byte stream (LineEditor + Interpreter).
//
// Transport-free: bytes in through feed(), bytes out through the send callback. The two
// transports (serial_console.h, socket_console.h) own the streams and pick the mode:
//
// Terminal mode (the serial console; a person at picocom/screen/minicom):
//   a banner line and the prompt "possync> " on start; typed bytes are echoed; every output
//   line ends in CRLF; an answer is followed by the prompt. Ctrl-D does nothing.
//
// Script mode (the Unix socket; used by `possync console --socket` and scripts):
//   no banner, no echo, no prompt, lines end in LF. Every line received gets exactly one
//   answer, terminated by an end marker line:
//       .ok        the command succeeded
//       .error     the command failed (the answer holds an `error: <reason>` line)
//   An answer line that itself starts with '.' is sent with one more '.' in front (as in
//   SMTP), so the markers can never be confused with answer text; a client strips one
//   leading '.' from such lines. A blank line answers just ".ok". Ctrl-D (0x04) on an
//   empty line, like the end of the stream, ends the session.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "console/interpreter.h"
#include "console/line_editor.h"

namespace possync::console {

enum class SessionMode {
    Terminal,  // echo, prompt, CRLF (serial)
    Script,    // no echo, LF, end marker per answer (socket)
};

inline constexpr std::string_view kPrompt = "possync> ";
inline constexpr std::string_view kOkMarker = ".ok";
inline constexpr std::string_view kErrorMarker = ".error";

class Session final : private LineEditor::Handler {
public:
    using Send = std::function<void(std::string_view bytes)>;
    using End = std::function<void()>;

    // `interpreter` is borrowed. `send` gets every byte to transmit, in order, in pieces:
    // typed echo as it comes, and each answer in one piece (with its prompt in Terminal
    // mode, with its end marker in Script mode). `onEnd` is
    // called (from inside feed) when a Script session's peer sent Ctrl-D; the transport
    // must defer destroying the session until feed returned.
    Session(Interpreter& interpreter, SessionMode mode, Send send, End onEnd, size_t maxLine = 512);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Writes the banner and the first prompt (Terminal mode); nothing in Script mode.
    void start();
    void feed(std::string_view bytes);
    // The other side went away: forget a half typed line so it never runs later.
    void hangUp();

    SessionMode mode() const { return mode_; }
    uint64_t commands() const { return commands_; }  // lines run (blank lines excluded)
    uint64_t errors() const { return errors_; }      // error answers, bad lines included
    // A command's answer is still to come (Reply::later): input typed meanwhile waits.
    bool waiting() const { return editor_.paused(); }

private:
    void write(std::string_view bytes) override;
    void onLine(std::string_view line) override;
    void onBadLine(std::string_view reason) override;
    void onEndOfInput() override;
    std::vector<std::string> complete(std::string_view before) override;
    void answer(bool ok, std::string_view text);
    void flushHeld();

    Interpreter& interpreter_;
    SessionMode mode_;
    Send send_;
    End onEnd_;
    LineEditor editor_;
    std::string held_;  // Terminal mode: an answer waiting to go out with its prompt
    // Cleared when the session goes: a deferred answer (Reply::later) that comes after that
    // is dropped.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    uint64_t commands_ = 0;
    uint64_t errors_ = 0;
};

}  // namespace possync::console
