#include "console/tokenizer.h"

namespace possync::console {

Result<std::vector<std::string>> tokenize(std::string_view line) {
    std::vector<std::string> words;
    std::string word;
    bool inWord = false;
    size_t i = 0;
    while (i < line.size()) {
        char c = line[i];
        if (c == ' ' || c == '\t') {
            if (inWord) words.push_back(std::move(word));
            word.clear();
            inWord = false;
            ++i;
        } else if (c == '"') {
            inWord = true;
            ++i;
            bool closed = false;
            while (i < line.size()) {
                char q = line[i++];
                if (q == '"') {
                    closed = true;
                    break;
                }
                if (q == '\\') {
                    if (i == line.size()) break;
                    q = line[i++];
                }
                word += q;
            }
            if (!closed) return makeError(Errc::InvalidArgument, "unterminated quote");
        } else if (c == '\'') {
            inWord = true;
            size_t end = line.find('\'', i + 1);
            if (end == std::string_view::npos) return makeError(Errc::InvalidArgument, "unterminated quote");
            word.append(line.substr(i + 1, end - i - 1));
            i = end + 1;
        } else if (c == '\\') {
            if (i + 1 == line.size()) return makeError(Errc::InvalidArgument, "backslash at end of line");
            inWord = true;
            word += line[i + 1];
            i += 2;
        } else {
            inWord = true;
            word += c;
            ++i;
        }
    }
    if (inWord) words.push_back(std::move(word));
    return words;
}

std::string quoteWord(std::string_view word) {
    bool plain = !word.empty();
    for (char c : word)
        if (c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '\\') plain = false;
    if (plain) return std::string(word);
    std::string out = "\"";
    for (char c : word) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    return out;
}

std::string joinWords(const std::vector<std::string>& words) {
    std::string out;
    for (const std::string& w : words) {
        if (!out.empty()) out += ' ';
        out += quoteWord(w);
    }
    return out;
}

}  // namespace possync::console
