#include "console/session.h"

#include "possync_config.h"

namespace possync::console {

static LineEditor::Options editorOptions(SessionMode mode, size_t maxLine) {
    LineEditor::Options o;
    o.maxLine = maxLine;
    if (mode == SessionMode::Terminal) {
        o.echo = true;
        o.prompt = std::string(kPrompt);
        o.eol = "\r\n";
        o.endOnCtrlD = false;  // a terminal's Ctrl-D (or a noise byte) must not silence the console
    } else {
        o.echo = false;
        o.prompt.clear();
        o.eol = "\n";
    }
    return o;
}

Session::Session(Interpreter& interpreter, SessionMode mode, Send send, End onEnd, size_t maxLine)
    : interpreter_(interpreter),
      mode_(mode),
      send_(std::move(send)),
      onEnd_(std::move(onEnd)),
      editor_(editorOptions(mode, maxLine), *this) {}

Session::~Session() {
    *alive_ = false;
}

void Session::start() {
    if (mode_ == SessionMode::Terminal) send_("\r\npossync console " POSSYNC_VERSION " (type help)\r\n");
    editor_.start();
}

void Session::feed(std::string_view bytes) {
    editor_.feed(bytes);
    flushHeld();
}

void Session::flushHeld() {
    if (held_.empty()) return;
    std::string out = std::move(held_);
    held_.clear();
    send_(out);
}

void Session::hangUp() {
    editor_.reset();
}

void Session::write(std::string_view bytes) {
    if (held_.empty()) {
        send_(bytes);
        return;
    }
    held_.append(bytes);
    flushHeld();
}

void Session::onLine(std::string_view line) {
    Reply reply = interpreter_.execute(line);
    if (line.find_first_not_of(" \t") != std::string_view::npos) ++commands_;
    if (!reply.later) {
        answer(reply.ok, reply.text);
        return;
    }
    // The answer comes later (or at once, from inside the call): until then what is typed
    // waits in the editor and no prompt is written.
    editor_.pause();
    reply.later([this, alive = alive_](Reply r) {
        if (!*alive) return;
        answer(r.ok, r.text);
        editor_.resume();
        flushHeld();
    });
}

void Session::onBadLine(std::string_view reason) {
    answer(false, "error: " + std::string(reason) + "\n");
}

std::vector<std::string> Session::complete(std::string_view before) {
    return interpreter_.complete(before);
}

void Session::onEndOfInput() {
    if (mode_ == SessionMode::Script && onEnd_) onEnd_();
}

void Session::answer(bool ok, std::string_view text) {
    if (!ok) ++errors_;
    std::string out;
    out.reserve(text.size() + text.size() / 16 + 8);
    const bool terminal = mode_ == SessionMode::Terminal;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(start, end - start);
        if (!terminal && !line.empty() && line.front() == '.') out += '.';
        out.append(line);
        out += terminal ? "\r\n" : "\n";
        start = end + 1;
    }
    if (!terminal) {
        out.append(ok ? kOkMarker : kErrorMarker);
        out += '\n';
    }
    if (out.empty()) return;
    // A terminal answer waits for the prompt the editor writes next, so both go out as one
    // piece (a transport that drops output under pressure drops whole pieces).
    if (terminal)
        held_.append(out);
    else
        send_(out);
}

}  // namespace possync::console
