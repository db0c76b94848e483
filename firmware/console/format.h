// Console text conventions: how bytes are shown and typed, and aligned tables.
//
// Output is `key: value` lines, or a table: one header line of lower-case column names,
// then one line per row, columns separated by at least two spaces, no trailing spaces,
// an empty cell shown as "-". Both read well on a terminal and split easily in a script.
//
// Bytes (keys and values of business tables) follow the tool's rule (base/bytes.h
// displayBytes): text when they are UTF-8 without control characters, not empty and not
// themselves starting with "0x"; otherwise "0x" + lower-case hex ("0x" alone is the empty
// string). Keys are also shown as hex when they contain a space, so a table row always splits
// into the right columns. Typed keys follow the same rule backwards: a word starting with "0x"
// is hex, anything else is the literal text. So every key printed can be typed back as it is.
//
// status, peers, tables and stats take a last word `--json` for scripts and monitoring: the
// same facts as one line of JSON (an object; peers and tables: an array of objects).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

#include "console/backend.h"

namespace possync::console {

std::string displayKey(std::string_view bytes);
std::string displayValue(std::string_view bytes);
// A typed key/prefix: "0x..." is hex (InvalidArgument "bad hex in '0x4g'"), else literal.
Result<std::string> parseBytesWord(std::string_view word);

// The number, or "-" when unknown.
std::string numberOrDash(const std::optional<uint64_t>& v);
// The text, or "-" when empty.
std::string textOrDash(std::string_view text);

class Table final {
public:
    explicit Table(std::vector<std::string> columns);
    // A row with fewer cells than columns is padded with "-"; extra cells are dropped.
    void addRow(std::vector<std::string> cells);
    size_t rows() const { return rows_.size(); }
    // Header and rows, each line ending in '\n'.
    std::string render() const;
    // The rows as one JSON array of objects (column name -> cell) and '\n': a cell "-" is null,
    // a cell of a column in `numeric` that is all digits a number, any other cell a string.
    std::string renderJson(const std::vector<std::string>& numeric = {}) const;

private:
    std::vector<std::string> columns_;
    std::vector<std::vector<std::string>> rows_;
};

// The `outbox` answer (console and `possync outbox`): one `key: value` line per fact, "-" for
// what is unknown; the last rejection stays on one line.
std::string formatOutbox(const OutboxInfo& info);
// The `clients` answer: a `clients: N` line, then a table (device, last_request, last_seq,
// applied, rejected), one row per device.
std::string formatClients(const std::vector<ClientInfo>& clients);

}  // namespace possync::console
