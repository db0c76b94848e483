// console::Interpreter: one command line in, the text answer out (no I/O of its own).
//
// The console's commands over a Backend (the daemon's state) and platform/log. A reply is
// a list of '\n'-terminated lines: `key: value` lines or a table (see format.h). A failed
// command answers exactly one line `error: <reason>` and ok=false; nothing a line can
// contain (garbage, wrong arity, bad quoting, unknown commands) does more than that.
// Transports (session.h) add echo, prompts, CRLF and end markers.
//
// Commands (also listed by `help`):
//   help [COMMAND]            version                  status
//   peers                     tables                   get TABLE KEY
//   scan TABLE [PREFIX] [LIMIT]   (LIMIT alone: scan TABLE "" 50)
//   stats                     log [N]                  loglevel [CATEGORY] [LEVEL]
//   resync                    accept-generation        discovery
//   outbox                    clients                  promote [confirm]
//   rejoin
// Command names are case-insensitive; KEY and PREFIX may be given as 0x-hex.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "console/backend.h"

namespace possync::console {

struct Reply {
    bool ok = true;
    std::string text;  // zero or more lines, each ending in '\n'
    // Set (and ok/text unused) when the answer comes later: a command that runs off the event
    // loop (promote, rejoin). The session calls it once with where the answer goes, which is
    // then called once, on the loop, possibly at once; input typed meanwhile waits.
    std::function<void(std::function<void(Reply)>)> later;
};

class Interpreter final {
public:
    // Limits of `scan` and `log`; a bigger LIMIT/N is refused rather than clipped, so a
    // script never mistakes a clipped answer for the whole table.
    static constexpr size_t kDefaultScan = 20;
    static constexpr size_t kMaxScan = 1000;
    static constexpr size_t kDefaultLog = 20;
    static constexpr size_t kMaxLog = 1000;

    // `backend` is borrowed and must outlive the interpreter.
    explicit Interpreter(Backend& backend);
    Interpreter(const Interpreter&) = delete;
    Interpreter& operator=(const Interpreter&) = delete;

    // Runs one line (without its line ending). An empty or blank line answers nothing.
    Reply execute(std::string_view line);
    // Tab completion: the full words that may complete the last word of `before` (the typed
    // line up to the cursor): command names first, then table names after get/scan, command
    // names after help, log categories after loglevel.
    std::vector<std::string> complete(std::string_view before);

private:
    using Args = std::vector<std::string>;
    struct Command;
    static std::span<const Command> commands();
    static const Command* findCommand(std::string_view name);

    Reply help(const Args& args);
    Reply version(const Args& args);
    Reply status(const Args& args);
    Reply peers(const Args& args);
    Reply tables(const Args& args);
    Reply get(const Args& args);
    Reply scan(const Args& args);
    Reply stats(const Args& args);
    Reply recentLog(const Args& args);
    Reply logLevel(const Args& args);
    Reply resync(const Args& args);
    Reply acceptGeneration(const Args& args);
    Reply discovery(const Args& args);
    Reply outbox(const Args& args);
    Reply clients(const Args& args);
    Reply promote(const Args& args);
    Reply rejoin(const Args& args);
    Reply pair(const Args& args);
    // A Reply for a backend call that answers a one-line note through a callback: the reply
    // itself when it answered at once, else one whose `later` waits for it.
    static Reply noteReply(const char* key, const std::function<void(NoteDone)>& start);

    Backend& backend_;
    bool json_ = false;  // the running command was given `--json`
};

}  // namespace possync::console
