// Console command lines: split into words (with quotes) and join words back (the client).
//
// Words are separated by spaces or tabs. Double quotes group a word and allow the escapes
// \" and \\ inside; single quotes group a word literally. Quotes may start anywhere in a
// word (a"b c"d is one word, `ab cd`), and "" is an empty word.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace possync::console {

// InvalidArgument "unterminated quote" / "backslash at end of line" on a malformed line.
Result<std::vector<std::string>> tokenize(std::string_view line);

// The word as it must be typed so that tokenize gives it back unchanged.
std::string quoteWord(std::string_view word);
// quoteWord of each word, joined with single spaces.
std::string joinWords(const std::vector<std::string>& words);

}  // namespace possync::console
