#include "console/format.h"

#include <algorithm>

#include "base/bytes.h"

namespace possync::console {

// The tool's rule (base/bytes.h displayBytes/parseBytesArg), with keys in tables shown without
// spaces (a space would shift the columns).
std::string displayKey(std::string_view bytes) {
    return displayBytes(Bytes(bytes), false);
}
std::string displayValue(std::string_view bytes) {
    return displayBytes(Bytes(bytes), true);
}

Result<std::string> parseBytesWord(std::string_view word) {
    auto r = parseBytesArg(word, "word");
    if (!r) return makeError(Errc::InvalidArgument, "bad hex in '" + std::string(word) + "'");
    return r;
}

std::string numberOrDash(const std::optional<uint64_t>& v) {
    return v ? std::to_string(*v) : std::string("-");
}

std::string textOrDash(std::string_view text) {
    return text.empty() ? std::string("-") : std::string(text);
}

std::string formatOutbox(const OutboxInfo& info) {
    std::string rejection = info.lastRejection;
    for (char& c : rejection)
        if (c == '\n' || c == '\r') c = ' ';
    std::string out;
    auto add = [&](std::string_view key, std::string_view value) {
        out.append(key).append(": ").append(value).append("\n");
    };
    add("count", std::to_string(info.count));
    add("bytes", std::to_string(info.bytes));
    add("limit", std::to_string(info.limit));
    add("oldest_request", numberOrDash(info.oldestId));
    add("oldest_age_ms", numberOrDash(info.oldestAgeMs));
    add("held", std::to_string(info.held));
    add("next_request", std::to_string(info.nextRequest));
    add("last_rejection", textOrDash(rejection));
    return out;
}

std::string formatClients(const std::vector<ClientInfo>& clients) {
    Table t({"device", "last_request", "last_seq", "applied", "rejected"});
    for (const ClientInfo& c : clients)
        t.addRow({displayKey(c.device), std::to_string(c.lastRequest), std::to_string(c.lastSeq),
                  std::to_string(c.applied), std::to_string(c.rejected)});
    return "clients: " + std::to_string(clients.size()) + "\n" + t.render();
}

Table::Table(std::vector<std::string> columns) : columns_(std::move(columns)) {}

void Table::addRow(std::vector<std::string> cells) {
    cells.resize(columns_.size());
    for (std::string& c : cells)
        if (c.empty()) c = "-";
    rows_.push_back(std::move(cells));
}

std::string Table::render() const {
    std::vector<size_t> width(columns_.size());
    for (size_t i = 0; i < columns_.size(); ++i) width[i] = columns_[i].size();
    for (const auto& row : rows_)
        for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    std::string out;
    auto line = [&](const std::vector<std::string>& cells) {
        for (size_t i = 0; i < cells.size(); ++i) {
            out += cells[i];
            if (i + 1 < cells.size()) out.append(width[i] - cells[i].size() + 2, ' ');
        }
        out += '\n';
    };
    line(columns_);
    for (const auto& row : rows_) line(row);
    return out;
}

std::string Table::renderJson(const std::vector<std::string>& numeric) const {
    std::string out = "[";
    for (const auto& row : rows_) {
        if (out.size() > 1) out += ", ";
        out += "{";
        for (size_t i = 0; i < columns_.size() && i < row.size(); ++i) {
            if (i) out += ", ";
            out += jsonQuote(columns_[i]) + ": ";
            const std::string& cell = row[i];
            const bool isNumeric = std::find(numeric.begin(), numeric.end(), columns_[i]) != numeric.end();
            if (cell == "-")
                out += "null";
            else if (isNumeric && !cell.empty() && cell.find_first_not_of("0123456789") == std::string::npos)
                out += cell;
            else
                out += jsonQuote(cell);
        }
        out += "}";
    }
    return out + "]\n";
}

}  // namespace possync::console
