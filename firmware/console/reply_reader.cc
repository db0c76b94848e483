#include "console/reply_reader.h"

#include "console/session.h"

namespace possync::console {

std::optional<Answer> ScriptReplyReader::next() {
    Answer answer;
    size_t start = 0;
    while (start < buffer_.size()) {
        size_t end = buffer_.find('\n', start);
        if (end == std::string::npos) return std::nullopt;
        std::string_view line(buffer_.data() + start, end - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        start = end + 1;
        if (line == kOkMarker || line == kErrorMarker) {
            answer.ok = line == kOkMarker;
            buffer_.erase(0, start);
            return answer;
        }
        if (!line.empty() && line.front() == '.') line.remove_prefix(1);
        answer.text.append(line);
        answer.text += '\n';
    }
    return std::nullopt;
}

bool TerminalReplyReader::interrupted() {
    std::string tail = "^C\r\n" + std::string(kPrompt);
    if (buffer_.size() < tail.size() || buffer_.compare(buffer_.size() - tail.size(), tail.size(), tail) != 0)
        return false;
    buffer_.clear();
    return true;
}

std::optional<Answer> TerminalReplyReader::next() {
    std::string tail = "\r\n" + std::string(kPrompt);
    if (buffer_.size() < tail.size() || buffer_.compare(buffer_.size() - tail.size(), tail.size(), tail) != 0)
        return std::nullopt;
    std::string raw = buffer_.substr(0, buffer_.size() - kPrompt.size());
    buffer_.clear();
    // Drop the echo line.
    size_t echoEnd = raw.find("\r\n");
    raw.erase(0, echoEnd + 2);
    Answer answer;
    answer.text.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n') continue;
        answer.text += raw[i];
    }
    size_t firstEnd = answer.text.find('\n');
    answer.ok = !(answer.text.rfind("error: ", 0) == 0 && firstEnd == answer.text.size() - 1);
    return answer;
}

}  // namespace possync::console
