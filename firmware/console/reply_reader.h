// console::ScriptReplyReader / TerminalReplyReader: a client's side of the console
// protocols of session.h: reassemble whole answers from the bytes a console sends.
//
// Used by `possync console` (tools/possync/console_client.cc) and by tests. Pure: bytes in,
// answers out; the caller does the I/O and the timeouts.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace possync::console {

struct Answer {
    bool ok = true;
    std::string text;  // the answer's lines, each ending in '\n' (markers, echo, prompt removed)
};

// Script mode (socket): lines up to a ".ok" / ".error" marker line; one leading '.' is
// removed from dot-stuffed lines. Several answers may be buffered; next() returns them in
// order.
class ScriptReplyReader final {
public:
    void feed(std::string_view bytes) { buffer_.append(bytes); }
    std::optional<Answer> next();
    // Bytes received but not yet part of a whole answer.
    size_t buffered() const { return buffer_.size(); }

private:
    std::string buffer_;
};

// Terminal mode (serial): after a command line was sent, everything up to the prompt that
// follows the answer is one answer. The first line is the console's echo of the command
// and is dropped; CRLF becomes '\n'. The answer failed when it is the single line
// `error: <reason>` (how the console reports every failure).
class TerminalReplyReader final {
public:
    void feed(std::string_view bytes) { buffer_.append(bytes); }
    // An answer once the buffer ends with CRLF + prompt; it then starts empty again.
    std::optional<Answer> next();
    // After sending Ctrl-C: true once the console acknowledged it (the buffer ends with
    // "^C", CRLF and the prompt; earlier output such as a banner is skipped). Clears the
    // buffer when it does.
    bool interrupted();
    size_t buffered() const { return buffer_.size(); }

private:
    std::string buffer_;
};

}  // namespace possync::console
