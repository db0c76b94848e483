#include "console/interpreter.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>

#include "base/bytes.h"
#include "log/log.h"

#include "console/format.h"
#include "console/tokenizer.h"
#include "possync_config.h"

namespace possync::console {

struct Interpreter::Command {
    const char* name;
    const char* usage;
    const char* summary;
    size_t minArgs;
    size_t maxArgs;
    Reply (Interpreter::*run)(const Args&);
    bool json = false;  // takes a last word `--json` (format.h)
};

namespace {

Reply fail(std::string_view reason) {
    return Reply{false, "error: " + std::string(reason) + "\n"};
}

// Builds `key: value` lines.
class Lines final {
public:
    Lines& add(std::string_view key, std::string_view value) {
        text_.append(key).append(": ").append(value).append("\n");
        json_.append(json_.empty() ? "{" : ", ").append(jsonQuote(key)).append(": ");
        json_.append(value == "-" ? std::string("null") : jsonQuote(value));
        return *this;
    }
    Lines& add(std::string_view key, uint64_t value) {
        text_.append(key).append(": ").append(std::to_string(value)).append("\n");
        json_.append(json_.empty() ? "{" : ", ")
            .append(jsonQuote(key))
            .append(": ")
            .append(std::to_string(value));
        return *this;
    }
    // A number that may be unknown: "-" in text, null in JSON.
    Lines& add(std::string_view key, const std::optional<uint64_t>& value) {
        if (value) return add(key, *value);
        return add(key, std::string_view("-"));
    }
    std::string take() { return std::move(text_); }
    // The same facts as one JSON object and '\n' ("-" is null; numbers given as numbers).
    std::string takeJson() { return (json_.empty() ? std::string("{") : std::move(json_)) + "}\n"; }

private:
    std::string text_;
    std::string json_;
};

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// A count argument in [1, max]; the error names the argument.
Result<size_t> parseCount(std::string_view word, const char* what, size_t max) {
    std::optional<uint64_t> n = parseU64(word);
    if (!n || *n < 1 || *n > max)
        return makeError(Errc::InvalidArgument, std::string(what) + " must be a number from 1 to " +
                                                    std::to_string(max) + ", not '" + std::string(word) +
                                                    "'");
    return static_cast<size_t>(*n);
}

log::Category* findCategoryAnyCase(std::string_view name) {
    if (log::Category* c = log::findCategory(name)) return c;
    std::string want = lower(name);
    for (log::Category* c : log::categories())
        if (lower(c->name()) == want) return c;
    return nullptr;
}

std::string categoryNames() {
    std::string out;
    for (log::Category* c : log::categories()) {
        if (!out.empty()) out += ", ";
        out += c->name();
    }
    return out;
}

}  // namespace

std::span<const Interpreter::Command> Interpreter::commands() {
    static const Command table[] = {
        {"help", "help [COMMAND]", "list the commands, or show how to use one", 0, 1, &Interpreter::help},
        {"version", "version", "software, protocol and data format versions", 0, 0, &Interpreter::version},
        {"status", "status", "role, position, master head, lag, link state, uptime", 0, 0,
         &Interpreter::status, true},
        {"peers", "peers", "master: every slave; slave: its master", 0, 0, &Interpreter::peers, true},
        {"tables", "tables", "tables with entries, watched flag and digest", 0, 0, &Interpreter::tables,
         true},
        {"get", "get TABLE KEY", "the value under KEY (KEY as text or 0x-hex)", 2, 2, &Interpreter::get},
        {"scan", "scan TABLE [PREFIX] [LIMIT]",
         "entries whose key starts with PREFIX (default all, LIMIT 20)", 1, 3, &Interpreter::scan},
        {"stats", "stats", "frames, bytes, changes, syncs, reconnects, errors", 0, 0, &Interpreter::stats,
         true},
        {"log", "log [N]", "the last N log lines (default 20)", 0, 1, &Interpreter::recentLog},
        {"loglevel", "loglevel [CATEGORY] [LEVEL]",
         "show log levels, or set one category's or every category's level", 0, 2, &Interpreter::logLevel},
        {"resync", "resync", "slave: drop the position and ask for a FULL sync", 0, 0, &Interpreter::resync},
        {"accept-generation", "accept-generation", "slave: accept the new master generation it is waiting on",
         0, 0, &Interpreter::acceptGeneration},
        {"discovery", "discovery", "what discovery currently sees", 0, 0, &Interpreter::discovery},
        {"outbox", "outbox", "slave: queued requests, bytes, limit, oldest age, last rejection", 0, 0,
         &Interpreter::outbox},
        {"clients", "clients", "writing boards: last request, last seq, applied, rejected", 0, 0,
         &Interpreter::clients},
        {"promote", "promote [confirm]",
         "slave: become the store's master when the master board is dead (then restarts as master)", 0, 1,
         &Interpreter::promote},
        {"rejoin", "rejoin",
         "master: export this board's changes to a file and become a slave of the newer master", 0, 0,
         &Interpreter::rejoin},
        {"pair", "pair [list | accept WHO | reject WHO | open SECONDS | close | remove WHO]",
         "the store's trust set and boards asking to pair; master: settle them (WHO: device or key "
         "fingerprint)",
         0, 2, &Interpreter::pair},
    };
    return table;
}

const Interpreter::Command* Interpreter::findCommand(std::string_view name) {
    std::string want = lower(name);
    for (const Command& c : commands())
        if (want == c.name) return &c;
    return nullptr;
}

Interpreter::Interpreter(Backend& backend) : backend_(backend) {}

Reply Interpreter::execute(std::string_view line) {
    Result<Args> words = tokenize(line);
    if (!words) return fail(words.error().message);
    if (words->empty()) return Reply{};
    const Command* cmd = findCommand(words->front());
    if (!cmd) {
        std::string shown = displayKey(words->front());
        if (shown.size() > 40) shown = shown.substr(0, 40) + "...";
        return fail("unknown command '" + shown + "' (try help)");
    }
    Args args(words->begin() + 1, words->end());
    // `--json` as the last word of a command that has a JSON form (status, peers, tables, stats).
    json_ = false;
    if (!args.empty() && args.back() == "--json" && cmd->json) {
        json_ = true;
        args.pop_back();
    }
    if (args.size() < cmd->minArgs || args.size() > cmd->maxArgs)
        return fail(std::string("usage: ") + cmd->usage);
    Reply r = (this->*cmd->run)(args);
    json_ = false;
    return r;
}

std::vector<std::string> Interpreter::complete(std::string_view before) {
    std::vector<std::string> words;
    size_t at = 0;
    while (at <= before.size()) {
        size_t space = before.find(' ', at);
        if (space == std::string_view::npos) space = before.size();
        if (space > at || space == before.size()) words.emplace_back(before.substr(at, space - at));
        at = space + 1;
    }
    std::vector<std::string> out;
    if (words.size() <= 1) {
        for (const Command& c : commands()) out.emplace_back(c.name);
        return out;
    }
    if (words.size() != 2) return out;
    const std::string first = lower(words[0]);
    if (first == "get" || first == "scan") {
        for (const TableInfo& t : backend_.tables()) out.push_back(displayKey(t.name));
    } else if (first == "help") {
        for (const Command& c : commands()) out.emplace_back(c.name);
    } else if (first == "pair") {
        for (const char* verb : {"list", "accept", "reject", "open", "close", "remove"})
            out.emplace_back(verb);
    } else if (first == "loglevel") {
        for (log::Category* c : log::categories()) out.emplace_back(c->name());
    }
    return out;
}

Reply Interpreter::help(const Args& args) {
    if (!args.empty()) {
        const Command* cmd = findCommand(args[0]);
        if (!cmd) return fail("unknown command '" + displayKey(args[0]) + "' (try help)");
        return Reply{true, Lines().add("usage", cmd->usage).add("about", cmd->summary).take()};
    }
    size_t width = 0;
    for (const Command& c : commands()) width = std::max(width, std::string_view(c.usage).size());
    std::string out;
    for (const Command& c : commands()) {
        std::string usage = c.usage;
        usage.resize(width + 2, ' ');
        out += usage + c.summary + "\n";
    }
    return Reply{true, std::move(out)};
}

Reply Interpreter::version(const Args&) {
    return Reply{true, Lines()
                           .add("version", POSSYNC_VERSION)
                           .add("protocol", uint64_t{POSSYNC_PROTOCOL_VERSION})
                           .add("format", uint64_t{POSSYNC_FORMAT_VERSION})
                           .take()};
}

Reply Interpreter::status(const Args&) {
    StatusInfo s = backend_.status();
    Lines lines;
    lines.add("role", textOrDash(s.role))
        .add("store", textOrDash(s.store))
        .add("device", textOrDash(s.device))
        .add("key", textOrDash(s.key))
        .add("generation", hex64(s.generation))
        .add("term", s.term)
        .add("position", s.position)
        .add("master_head", s.masterHead)
        .add("lag_changes", s.lagChanges)
        .add("lag_ms", s.lagMs)
        .add("link", textOrDash(s.link))
        .add("uptime_s", s.uptimeS)
        .add("discovery", textOrDash(s.discovery))
        .add("waiting", textOrDash(s.waiting))
        .add("failover", textOrDash(s.failover))
        .add("trust", textOrDash(s.trust));
    return Reply{true, json_ ? lines.takeJson() : lines.take(), {}};
}

Reply Interpreter::peers(const Args&) {
    Table t({"address", "device", "position", "lag_changes", "lag_ms", "state", "heartbeat_ms", "found_via"});
    for (const PeerInfo& p : backend_.peers())
        t.addRow({p.address, p.device, numberOrDash(p.position), numberOrDash(p.lagChanges),
                  numberOrDash(p.lagMs), p.state, numberOrDash(p.heartbeatAgoMs), p.foundVia});
    if (json_) return Reply{true, t.renderJson({"position", "lag_changes", "lag_ms", "heartbeat_ms"}), {}};
    return Reply{true, t.render()};
}

Reply Interpreter::tables(const Args&) {
    Table t({"name", "entries", "watched", "digest"});
    for (const TableInfo& i : backend_.tables())
        t.addRow({displayKey(i.name), std::to_string(i.entries), i.watched ? "yes" : "no", i.digest});
    if (json_) return Reply{true, t.renderJson({"entries"}), {}};
    return Reply{true, t.render()};
}

Reply Interpreter::get(const Args& args) {
    Result<std::string> key = parseBytesWord(args[1]);
    if (!key) return fail(key.error().message);
    Result<std::optional<std::string>> value = backend_.get(args[0], *key);
    if (!value) return fail(value.error().message);
    if (!*value) return fail("no key " + displayKey(*key) + " in table " + displayKey(args[0]));
    return Reply{true, Lines()
                           .add("table", displayKey(args[0]))
                           .add("key", displayKey(*key))
                           .add("value", displayValue(**value))
                           .take()};
}

Reply Interpreter::scan(const Args& args) {
    std::string prefix;
    if (args.size() >= 2) {
        Result<std::string> p = parseBytesWord(args[1]);
        if (!p) return fail(p.error().message);
        prefix = std::move(*p);
    }
    size_t limit = kDefaultScan;
    if (args.size() == 3) {
        Result<size_t> n = parseCount(args[2], "LIMIT", kMaxScan);
        if (!n) return fail(n.error().message);
        limit = *n;
    }
    // One more than asked tells whether the answer is complete.
    Result<std::vector<KeyValue>> rows = backend_.scan(args[0], prefix, limit + 1);
    if (!rows) return fail(rows.error().message);
    bool more = rows->size() > limit;
    if (more) rows->resize(limit);
    Table t({"key", "value"});
    for (const KeyValue& kv : *rows) t.addRow({displayKey(kv.first), displayValue(kv.second)});
    std::string out = Lines()
                          .add("table", displayKey(args[0]))
                          .add("rows", rows->size())
                          .add("more", more ? "yes" : "no")
                          .take();
    return Reply{true, out + t.render()};
}

Reply Interpreter::stats(const Args&) {
    Lines out;
    for (const auto& [name, value] : backend_.stats().counters) out.add(name, value);
    return Reply{true, json_ ? out.takeJson() : out.take(), {}};
}

Reply Interpreter::recentLog(const Args& args) {
    size_t n = kDefaultLog;
    if (!args.empty()) {
        Result<size_t> parsed = parseCount(args[0], "N", kMaxLog);
        if (!parsed) return fail(parsed.error().message);
        n = *parsed;
    }
    std::string out;
    for (const log::Line& line : log::recent(n)) {
        std::string text = log::format(line);
        // One log line must stay one console line.
        for (char& c : text)
            if (c == '\n' || c == '\r') c = ' ';
        out += text + "\n";
    }
    return Reply{true, std::move(out)};
}

Reply Interpreter::logLevel(const Args& args) {
    Table t({"category", "level"});
    if (args.empty()) {
        for (log::Category* c : log::categories()) t.addRow({c->name(), log::levelName(c->level())});
        return Reply{true, t.render()};
    }
    if (args.size() == 1) {
        if (std::optional<log::Level> level = log::parseLevel(lower(args[0]))) {
            log::setAllLevels(*level);
            for (log::Category* c : log::categories()) t.addRow({c->name(), log::levelName(c->level())});
            return Reply{true, t.render()};
        }
        if (log::Category* c = findCategoryAnyCase(args[0])) {
            t.addRow({c->name(), log::levelName(c->level())});
            return Reply{true, t.render()};
        }
        return fail("'" + displayKey(args[0]) +
                    "' is neither a level (debug, info, warning, error) nor a category (" + categoryNames() +
                    ")");
    }
    log::Category* c = findCategoryAnyCase(args[0]);
    if (!c) return fail("unknown log category '" + displayKey(args[0]) + "' (" + categoryNames() + ")");
    std::optional<log::Level> level = log::parseLevel(lower(args[1]));
    if (!level) return fail("unknown log level '" + displayKey(args[1]) + "' (debug, info, warning, error)");
    c->setLevel(*level);
    t.addRow({c->name(), log::levelName(c->level())});
    return Reply{true, t.render()};
}

Reply Interpreter::resync(const Args&) {
    Result<std::string> note = backend_.resync();
    if (!note) return fail(note.error().message);
    return Reply{true, Lines().add("resync", *note).take()};
}

Reply Interpreter::acceptGeneration(const Args&) {
    Result<std::string> note = backend_.acceptGeneration();
    if (!note) return fail(note.error().message);
    return Reply{true, Lines().add("accept-generation", *note).take()};
}

Reply Interpreter::discovery(const Args&) {
    std::vector<std::string> seen = backend_.discovery();
    std::string out = Lines().add("entries", seen.size()).take();
    for (std::string& line : seen) {
        for (char& c : line)
            if (c == '\n' || c == '\r') c = ' ';
        out += line + "\n";
    }
    return Reply{true, std::move(out)};
}

Reply Interpreter::outbox(const Args&) {
    Result<OutboxInfo> info = backend_.outbox();
    if (!info) return fail(info.error().message);
    return Reply{true, formatOutbox(*info)};
}

Reply Interpreter::clients(const Args&) {
    Result<std::vector<ClientInfo>> list = backend_.clients();
    if (!list) return fail(list.error().message);
    return Reply{true, formatClients(*list)};
}

Reply Interpreter::pair(const Args& args) {
    const std::string verb = args.empty() ? "list" : lower(args[0]);
    if (verb == "list") {
        if (args.size() > 1) return fail("usage: pair list");
        Result<PairInfo> info = backend_.pairList();
        if (!info) return fail(info.error().message);
        Table t({"state", "device", "key", "since_s", "detail"});
        for (const PairEntry& e : info->entries)
            t.addRow({e.state, displayKey(e.device), e.key, e.agoMs ? std::to_string(*e.agoMs / 1000) : "",
                      e.detail});
        return Reply{true, "trust: " + info->summary + "\n" + t.render()};
    }
    const bool needsArg = verb == "accept" || verb == "reject" || verb == "open" || verb == "remove";
    if (!needsArg && verb != "close")
        return fail("usage: pair [list | accept WHO | reject WHO | open SECONDS | close | remove WHO]");
    if (needsArg != (args.size() == 2))
        return fail("usage: pair " + verb + (needsArg ? (verb == "open" ? " SECONDS" : " WHO") : ""));
    const std::string arg = needsArg ? args[1] : std::string();
    return noteReply("pair", [this, verb, arg](NoteDone done) { backend_.pair(verb, arg, std::move(done)); });
}

Reply Interpreter::noteReply(const char* key, const std::function<void(NoteDone)>& start) {
    struct Pending {
        std::optional<Reply> reply;         // answered before anyone waited
        std::function<void(Reply)> answer;  // where a later answer goes
    };
    auto p = std::make_shared<Pending>();
    start([p, key](Result<std::string> note) {
        Reply r = note ? Reply{true, Lines().add(key, *note).take(), {}} : fail(note.error().message);
        if (p->answer)
            p->answer(std::move(r));
        else
            p->reply = std::move(r);
    });
    if (p->reply) return std::move(*p->reply);
    Reply r;
    r.later = [p](std::function<void(Reply)> answer) {
        if (p->reply)
            answer(std::move(*p->reply));
        else
            p->answer = std::move(answer);
    };
    return r;
}

Reply Interpreter::promote(const Args& args) {
    if (!args.empty() && lower(args[0]) != "confirm") return fail("usage: promote [confirm]");
    const bool confirmed = !args.empty();
    return noteReply("promote",
                     [this, confirmed](NoteDone done) { backend_.promote(confirmed, std::move(done)); });
}

Reply Interpreter::rejoin(const Args&) {
    return noteReply("rejoin", [this](NoteDone done) { backend_.rejoin(std::move(done)); });
}

}  // namespace possync::console
