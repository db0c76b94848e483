#include "console/line_editor.h"

namespace possync::console {

namespace {

constexpr unsigned char kCtrlC = 0x03;
constexpr unsigned char kCtrlD = 0x04;
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
                escape_ = c == '[' ? Escape::Csi : c == 'O' ? Escape::Ss3 : Escape::None;
                return;
            case Escape::Ss3: escape_ = Escape::None; return;
            case Escape::Csi:
                if (c >= 0x40 && c <= 0x7e) {
                    escape_ = Escape::None;
                    return;
                }
                if (c >= 0x20 && c <= 0x3f && escapeLength_ < kMaxEscape) return;
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
            if (!line_.empty() && !tooLong_) {
                line_.pop_back();
                writeIfEcho("\b \b");
            }
            return;
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

    if (c == kTab) c = ' ';
    if (c < 0x20 || c > 0x7e) {
        spoiled_ = true;
        return;
    }
    if (tooLong_) return;
    if (line_.size() >= options_.maxLine) {
        tooLong_ = true;
        line_.clear();
        line_.shrink_to_fit();
        return;
    }
    line_ += static_cast<char>(c);
    if (options_.echo) handler_.write(std::string_view(line_).substr(line_.size() - 1));
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
        inLine_ = true;
        handler_.onLine(line);
        inLine_ = false;
    }
    if (!ended_ && !paused_) writeIfEcho(options_.prompt);
}

}  // namespace possync::console
