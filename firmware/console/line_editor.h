// console::LineEditor: turns the raw bytes a terminal sends into command lines, with echo.
//
// Input rules (the same for every transport; echo, prompt and line ending are options):
// - printable ASCII is appended to the line (tab counts as a space) and echoed;
// - backspace (0x08) and DEL (0x7f) erase the last character (echo "\b \b");
// - CR, LF and CRLF each end exactly one line (the LF of a CRLF is swallowed, so a terminal
//   sending CRLF does not produce an empty second line); the end is echoed as the line
//   ending option, then the line goes to Handler::onLine, then the prompt is written;
// - Ctrl-C (0x03) drops the line being typed (echo "^C", line ending, prompt);
// - Ctrl-D (0x04) on an empty line calls Handler::onEndOfInput (a socket session closes;
//   the serial console ignores it); elsewhere it is ignored;
// - ANSI escape sequences (arrow keys, function keys: ESC [ ... final, ESC O x) are
//   swallowed whole so they do not leave "[A" in the line;
// - any other byte (NUL, other control bytes, bytes >= 0x80) spoils the line: it is not
//   echoed and, when the line ends, Handler::onBadLine reports it instead of running it;
// - a line longer than maxLine is dropped: the bytes past the limit are neither kept nor
//   echoed, and when the line ends Handler::onBadLine reports it once.
// Memory stays bounded by maxLine whatever arrives. There is no I/O here: output goes to
// Handler::write, so the editor is tested byte for byte.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace possync::console {

class LineEditor final {
public:
    struct Options {
        bool echo = true;                  // echo typed bytes (interactive terminals)
        std::string prompt = "possync> ";  // written by start() and after every line
        std::string eol = "\r\n";          // line ending written for echoed line ends
        size_t maxLine = 512;              // longest line kept, in bytes
        // Ctrl-D on an empty line ends the input (a socket session closes). Off on a serial
        // line: there nobody can "reconnect" a terminal, and noise often holds 0x04 bytes.
        bool endOnCtrlD = true;
    };

    // The editor's user. Callbacks are made from inside feed(); the handler must not
    // destroy the editor from inside one (defer it to the next loop turn).
    class Handler {
    public:
        virtual ~Handler() = default;
        virtual void write(std::string_view bytes) = 0;       // echo and prompts
        virtual void onLine(std::string_view line) = 0;       // a complete line (no ending)
        virtual void onBadLine(std::string_view reason) = 0;  // a dropped line, why
        virtual void onEndOfInput() = 0;                      // Ctrl-D on an empty line
    };

    LineEditor(Options options, Handler& handler);
    LineEditor(const LineEditor&) = delete;
    LineEditor& operator=(const LineEditor&) = delete;

    // Writes the prompt.
    void start();
    // Processes bytes in order. After onEndOfInput the rest is ignored.
    void feed(std::string_view bytes);
    // Forgets a partly typed line and any half escape sequence (the line was hung up).
    void reset();
    // A command whose answer comes later: from the end of the current line on, bytes fed are
    // kept, not processed, and the prompt waits. resume() writes the prompt and processes
    // what was kept, in order. Safe to call from inside onLine.
    void pause();
    void resume();
    bool paused() const { return paused_; }

    const Options& options() const { return options_; }
    const std::string& pending() const { return line_; }
    uint64_t lines() const { return lines_; }        // lines passed to onLine
    uint64_t badLines() const { return badLines_; }  // lines passed to onBadLine

private:
    enum class Escape {
        None,  // ordinary input
        Esc,   // after ESC
        Csi,   // inside ESC [ ... (parameters until a final byte)
        Ss3,   // after ESC O: one more byte ends it
    };

    void feedByte(unsigned char c);
    void feedAll(std::string_view bytes);
    void endLine();
    void writeIfEcho(std::string_view bytes);

    Options options_;
    Handler& handler_;
    bool paused_ = false;
    bool inLine_ = false;  // inside endLine's onLine call
    std::string kept_;     // bytes fed while paused
    std::string line_;
    bool tooLong_ = false;  // the line passed maxLine
    bool spoiled_ = false;  // the line holds a byte that is not text
    bool afterCr_ = false;  // the previous byte was CR (a following LF is swallowed)
    bool ended_ = false;    // onEndOfInput was called
    Escape escape_ = Escape::None;
    size_t escapeLength_ = 0;
    uint64_t lines_ = 0;
    uint64_t badLines_ = 0;
};

}  // namespace possync::console
