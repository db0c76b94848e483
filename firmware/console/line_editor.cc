#include "console/line_editor.h"

namespace possync::console {

namespace {

constexpr unsigned char kCtrlA = 0x01;
constexpr unsigned char kCtrlC = 0x03;
constexpr unsigned char kCtrlD = 0x04;
constexpr unsigned char kCtrlE = 0x05;
constexpr unsigned char kCtrlL = 0x0c;
constexpr unsigned char kCtrlU = 0x15;
constexpr unsigned char kCtrlW = 0x17;
constexpr unsigned char kBackspace = 0x08;
constexpr unsigned char kTab = 0x09;
constexpr unsigned char kLf = 0x0a;
constexpr unsigned char kCr = 0x0d;
constexpr unsigned char kEsc = 0x1b;
constexpr unsigned char kDel = 0x7f;
// Longer "escape sequences" are noise, not keys.
constexpr size_t kMaxEscape = 16;

}  // namespace

LineEditor::LineEditor(Options options, Handler& handler) : options_(std::move(options)), handler_(handler) {}

void LineEditor::start() {
    writeIfEcho(options_.prompt);
}

void LineEditor::writeIfEcho(std::string_view bytes) {
    if (options_.echo && !bytes.empty()) handler_.write(bytes);
}

void LineEditor::reset() {
    line_.clear();
    cursor_ = 0;
    historyAt_ = history_.size();
    draft_.clear();
    escapeParams_.clear();
    tooLong_ = spoiled_ = afterCr_ = false;
    escape_ = Escape::None;
    escapeLength_ = 0;
}

void LineEditor::feed(std::string_view bytes) {
    if (paused_) {
        kept_.append(bytes);
        return;
    }
    feedAll(bytes);
}

void LineEditor::feedAll(std::string_view bytes) {
    for (size_t i = 0; i < bytes.size(); ++i) {
        if (ended_) return;
        if (paused_) {
            kept_.append(bytes.substr(i));
            return;
        }
        feedByte(static_cast<unsigned char>(bytes[i]));
    }
}

void LineEditor::pause() {
    paused_ = true;
}

void LineEditor::resume() {
    if (!paused_) return;
    paused_ = false;
    if (inLine_) return;  // answered at once: endLine writes the prompt and feeding goes on
    if (ended_) return;
    writeIfEcho(options_.prompt);
    std::string kept = std::move(kept_);
    kept_.clear();
    feedAll(kept);
}

void LineEditor::feedByte(unsigned char c) {
    bool afterCr = afterCr_;
    afterCr_ = false;

    if (escape_ != Escape::None) {
        ++escapeLength_;
        switch (escape_) {
            case Escape::Esc:
                escapeParams_.clear();
                if (c == '[' || c == 'O') {
                    escape_ = c == '[' ? Escape::Csi : Escape::Ss3;
                    return;
                }
                // A lone ESC (a terminal's Esc key) before an ordinary key: the key counts.
                escape_ = Escape::None;
                break;
            case Escape::Ss3:
                escape_ = Escape::None;
                onKey(static_cast<char>(c), {});
                return;
            case Escape::Csi:
                if (c >= 0x40 && c <= 0x7e) {
                    escape_ = Escape::None;
                    onKey(static_cast<char>(c), escapeParams_);
                    return;
                }
                if (c >= 0x20 && c <= 0x3f && escapeLength_ < kMaxEscape) {
                    escapeParams_ += static_cast<char>(c);
                    return;
                }
                // Not a key after all: the line is noise; look at this byte afresh.
                escape_ = Escape::None;
                spoiled_ = true;
                break;
            case Escape::None: break;
        }
    }

    switch (c) {
        case kCr:
            endLine();
            afterCr_ = true;
            return;
        case kLf:
            if (!afterCr) endLine();
            return;
        case kBackspace:
        case kDel:
            if (cursor_ > 0 && !tooLong_) eraseBefore(1);
            return;
        case kCtrlA: moveTo(0); return;
        case kCtrlE: moveTo(line_.size()); return;
        case kCtrlU:
            if (!tooLong_) replaceLine({});
            return;
        case kCtrlW: {
            if (tooLong_) return;
            size_t start = cursor_;
            while (start > 0 && line_[start - 1] == ' ') --start;
            while (start > 0 && line_[start - 1] != ' ') --start;
            eraseBefore(cursor_ - start);
            return;
        }
        case kCtrlL: redraw(); return;
        case kCtrlC:
            reset();
            writeIfEcho("^C");
            writeIfEcho(options_.eol);
            writeIfEcho(options_.prompt);
            return;
        case kCtrlD:
            if (options_.endOnCtrlD && line_.empty() && !tooLong_ && !spoiled_) {
                ended_ = true;
                handler_.onEndOfInput();
            }
            return;
        case kEsc:
            escape_ = Escape::Esc;
            escapeLength_ = 1;
            return;
        default: break;
    }

    if (c == kTab) {
        if (options_.echo && !tooLong_) {
            completeWord();
            return;
        }
        c = ' ';
    }
    if (c < 0x20 || c > 0x7e) {
        spoiled_ = true;
        return;
    }
    insert(static_cast<char>(c));
}

void LineEditor::insert(char c) {
    if (tooLong_) return;
    if (line_.size() >= options_.maxLine) {
        tooLong_ = true;
        line_.clear();
        line_.shrink_to_fit();
        cursor_ = 0;
        return;
    }
    line_.insert(line_.begin() + static_cast<std::ptrdiff_t>(cursor_), c);
    ++cursor_;
    if (!options_.echo) return;
    // The new character and what follows it, then back to the cursor.
    const size_t tail = line_.size() - cursor_;
    handler_.write(std::string_view(line_).substr(cursor_ - 1));
    if (tail) handler_.write(std::string(tail, '\b'));
}

void LineEditor::eraseBefore(size_t n) {
    if (n == 0 || n > cursor_) return;
    line_.erase(cursor_ - n, n);
    cursor_ -= n;
    if (!options_.echo) return;
    // Back n, the rest of the line, n spaces over the old end, back to the cursor.
    const std::string_view tail = std::string_view(line_).substr(cursor_);
    std::string out(n, '\b');
    out.append(tail).append(n, ' ').append(tail.size() + n, '\b');
    handler_.write(out);
}

void LineEditor::eraseAt() {
    if (cursor_ >= line_.size() || tooLong_) return;
    ++cursor_;
    if (options_.echo) handler_.write(std::string_view(line_).substr(cursor_ - 1, 1));
    eraseBefore(1);
}

void LineEditor::moveTo(size_t pos) {
    if (tooLong_ || pos > line_.size() || pos == cursor_) return;
    if (options_.echo) {
        if (pos < cursor_)
            handler_.write(std::string(cursor_ - pos, '\b'));
        else
            handler_.write(std::string_view(line_).substr(cursor_, pos - cursor_));
    }
    cursor_ = pos;
}

void LineEditor::replaceLine(std::string text) {
    const size_t old = line_.size();
    moveTo(0);
    line_ = std::move(text);
    if (line_.size() > options_.maxLine) line_.resize(options_.maxLine);
    cursor_ = line_.size();
    if (!options_.echo) return;
    std::string out = line_;
    if (old > line_.size()) out.append(old - line_.size(), ' ').append(old - line_.size(), '\b');
    if (!out.empty()) handler_.write(out);
}

void LineEditor::redraw() {
    if (!options_.echo) return;
    std::string out = "\x1b[H\x1b[2J" + options_.prompt + line_;
    out.append(line_.size() - cursor_, '\b');
    handler_.write(out);
}

void LineEditor::historyStep(int direction) {
    if (tooLong_ || history_.empty()) return;
    if (direction < 0) {
        if (historyAt_ == 0) return;
        if (historyAt_ == history_.size()) draft_ = line_;
        replaceLine(history_[--historyAt_]);
    } else {
        if (historyAt_ >= history_.size()) return;
        ++historyAt_;
        replaceLine(historyAt_ == history_.size() ? draft_ : history_[historyAt_]);
    }
}

void LineEditor::completeWord() {
    const std::string_view before = std::string_view(line_).substr(0, cursor_);
    const size_t start = before.rfind(' ') == std::string_view::npos ? 0 : before.rfind(' ') + 1;
    const std::string_view word = before.substr(start);
    std::vector<std::string> all = handler_.complete(before), candidates;
    for (auto& c : all)
        if (c.size() >= word.size() && std::string_view(c).substr(0, word.size()) == word)
            candidates.push_back(std::move(c));
    if (candidates.empty()) {
        insert(' ');  // nothing to complete: a tab is a space, as before
        return;
    }
    std::string common = candidates.front();
    for (const auto& c : candidates) {
        size_t n = 0;
        while (n < common.size() && n < c.size() && common[n] == c[n]) ++n;
        common.resize(n);
    }
    for (size_t i = word.size(); i < common.size(); ++i) insert(common[i]);
    if (candidates.size() == 1) {
        insert(' ');
        return;
    }
    if (common.size() > word.size()) return;
    // Several and nothing more in common: list them under the line, then the line again.
    std::string out = options_.eol;
    for (size_t i = 0; i < candidates.size(); ++i) out += (i ? "  " : "") + candidates[i];
    out += options_.eol + options_.prompt + line_;
    out.append(line_.size() - cursor_, '\b');
    handler_.write(out);
}

void LineEditor::onKey(char final, std::string_view params) {
    switch (final) {
        case 'A': historyStep(-1); return;
        case 'B': historyStep(+1); return;
        case 'C': moveTo(cursor_ + 1); return;
        case 'D':
            if (cursor_ > 0) moveTo(cursor_ - 1);
            return;
        case 'H': moveTo(0); return;
        case 'F': moveTo(line_.size()); return;
        case '~':
            if (params == "1" || params == "7") moveTo(0);
            if (params == "4" || params == "8") moveTo(line_.size());
            if (params == "3") eraseAt();
            return;
        default: return;  // a function key: nothing
    }
}

void LineEditor::endLine() {
    writeIfEcho(options_.eol);
    std::string line = std::move(line_);
    bool tooLong = tooLong_, spoiled = spoiled_;
    reset();
    if (tooLong) {
        ++badLines_;
        handler_.onBadLine("line too long (more than " + std::to_string(options_.maxLine) +
                           " bytes), ignored");
    } else if (spoiled) {
        ++badLines_;
        handler_.onBadLine("line contains bytes that are not text, ignored (type binary keys as 0x-hex)");
    } else {
        ++lines_;
        if (!line.empty() && (history_.empty() || history_.back() != line)) {
            history_.push_back(line);
            if (history_.size() > kHistory) history_.erase(history_.begin());
        }
        historyAt_ = history_.size();
        inLine_ = true;
        handler_.onLine(line);
        inLine_ = false;
    }
    if (!ended_ && !paused_) writeIfEcho(options_.prompt);
}

}  // namespace possync::console
