// console::LineEditor: turns the raw bytes a terminal sends into command lines, with echo.
//
// Input rules (the same for every transport; echo, prompt and line ending are options):
// - printable ASCII is inserted at the cursor and echoed;
// - backspace (0x08) and DEL (0x7f) erase the character before the cursor (echo "\b \b" at
//   the end of the line; in the middle the rest of the line is redrawn);
// - editing keys, as BusyBox's and U-Boot's shells have them: Left/Right arrows move the
//   cursor, Home/End (or Ctrl-A/Ctrl-E) jump to the line's ends, Delete erases under the
//   cursor, Ctrl-U erases the whole line, Ctrl-W the word before the cursor, Ctrl-L clears the
//   screen and redraws the prompt and line, Up/Down walk the history (the last 32 lines run,
//   consecutive repeats once; the line being typed comes back after the newest);
// - tab completes the word before the cursor from Handler::complete (command names, table
//   names): one candidate is completed with a space after it, several are extended to their
//   common start or listed under the line; with no candidate (or no echo) tab is a space;
// - CR, LF and CRLF each end exactly one line (the LF of a CRLF is swallowed, so a terminal
//   sending CRLF does not produce an empty second line); the end is echoed as the line
//   ending option, then the line goes to Handler::onLine, then the prompt is written;
// - Ctrl-C (0x03) drops the line being typed (echo "^C", line ending, prompt);
// - Ctrl-D (0x04) on an empty line calls Handler::onEndOfInput (a socket session closes;
//   the serial console ignores it); elsewhere it is ignored;
// - other ANSI escape sequences (function keys: ESC [ ... final, ESC O x) are swallowed whole
//   so they do not leave "[A" in the line; a lone ESC before an ordinary key is dropped, the
//   key is not;
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
#include <vector>

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
        // Tab: the full words that could complete the last word of `before` (the line up to
        // the cursor). None by default.
        virtual std::vector<std::string> complete(std::string_view before) {
            (void)before;
            return {};
        }
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
    size_t cursor() const { return cursor_; }
    // Lines kept for Up/Down, oldest first.
    const std::vector<std::string>& history() const { return history_; }
    static constexpr size_t kHistory = 32;
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
    void insert(char c);
    void eraseBefore(size_t n);  // the n characters before the cursor
    void eraseAt();              // the character under the cursor (Delete)
    void moveTo(size_t pos);
    void replaceLine(std::string text);
    void redraw();
    void historyStep(int direction);
    void completeWord();
    void onKey(char final, std::string_view params);
    void feedAll(std::string_view bytes);
    void endLine();
    void writeIfEcho(std::string_view bytes);

    Options options_;
    Handler& handler_;
    bool paused_ = false;
    bool inLine_ = false;  // inside endLine's onLine call
    std::string kept_;     // bytes fed while paused
    std::string line_;
    size_t cursor_ = 0;  // where typed text goes, 0..line_.size()
    std::vector<std::string> history_;
    size_t historyAt_ = 0;  // history_.size() when not walking the history
    std::string draft_;     // the line being typed when Up was first pressed
    std::string escapeParams_;
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
