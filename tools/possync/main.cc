// possync: the board's data tool (DESIGN.md §5). Reads and writes a data directory through the
// same store API the daemon and POS applications use, so writes are captured and replicated.
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "log/log.h"

#include "commands.h"
#include "possync_config.h"

using namespace possync;

namespace {

const char* kUsage = R"(possync - read and write a possync board's data directory

usage:
  possync --data DIR put TABLE KEY (VALUE | --value-file PATH) [WRITE OPTIONS]
                                             write one key (a transaction of its own); PATH
                                             "-" reads the value from stdin, as raw bytes
  possync --data DIR add TABLE KEY DELTA [WRITE OPTIONS]
                                             add DELTA (signed) to a counter: an 8-byte
                                             big-endian signed integer (absent counts as 0)
  possync --data DIR del TABLE KEY [WRITE OPTIONS]
                                             delete one key (exit 1 when absent; on a slave
                                             the master decides, an absent key is no error)
  possync --data DIR get TABLE KEY           print the value (exit 1 when absent)
  possync --data DIR dump [TABLE]            print entries, one "key<TAB>value" per line
                                             (all tables: "table<TAB>key<TAB>value")
  possync --data DIR digest                  one line: position, digest and count over the
                                             watched tables (compare two boards with it)
  possync --data DIR load --records N --value-size B [--table T] [--start I] [--batch K]
                                             bulk-load synthetic records (benchmarks)
  possync --data DIR watch [T1,T2,...]       show or set the watched tables (listening config)
  possync --data DIR info                    role, device, generation, position, log
  possync --data DIR outbox                  slave: queued requests (count, bytes, limit,
                                             oldest request and age, held, next request, last
                                             rejection); master: the writing boards (device,
                                             last request, last seq, applied, rejected)
  possync --data DIR key                     this board's public key and fingerprint (made
                                             when missing): factory provisioning
  possync console (--serial DEV [--baud N] | --socket PATH) [COMMAND...]
                                             talk to a running daemon's console

write options (put, add, del; after the command name):
  --if-absent       only if KEY does not exist
  --if-present      only if KEY exists
  --if-value V      only if KEY holds V (compared by hash; hex with --hex)
  --no-wait         on a slave: return once the request is queued ("queued request N")
  --wait-ms MS      on a slave: how long to wait for the write to be applied (default 5000)
  --seq             print "seq N": the master's change that carries the write

A write is applied at once on the master (and on a slave's own unwatched tables). On a slave a
write to a table the master watches becomes a request in the board's outbox, durable once the
command returns; the daemon forwards it and the master applies it (checking the conditions) or
rejects it. By default the tool waits until the master's change is applied on this board, so
a read after it sees the write. A failed condition applies nothing: "rejected: <reason>", exit
1. When the wait ends first: "pending: request N queued, not yet applied", exit 3; the request
stays queued (possync outbox) and is applied later, or rejected.

options:
  --data DIR        the board's data directory (LMDB environment)
  --hex             KEY and VALUE are hex on input and output (binary data)
  --json            get, dump, digest and info print JSON for scripts (dump: one object per
                    entry and line; keys and values as shown as text and as *_hex)
  --map-size MIB    LMDB map size in MiB for this open (grows the map; never shrinks it)
  --version, --help

KEY and VALUE are text, or 0x followed by hex for any bytes (as on the console); get and dump
print text (UTF-8, no control characters) as it is and anything else, text beginning with 0x
included, as 0x-hex, so what they print can be typed back. With --hex, plain hex both ways (a
leading 0x is accepted). Every command exits 0 on success, 1 with a one-line reason on failure (a number
out of range included), 2 on bad usage (an unknown command or option, a missing argument, a
value that is no number), 3 when a slave's write is queued but not yet applied (see above).
`possync COMMAND --help` or `possync help COMMAND` describes one command.
)";

// A count given on the command line: decimal digits only (no sign: CLI11 would wrap "-5"
// around to 2^64-5), within uint64_t, and not 0 unless zero means something for `option`.
// InvalidArgument when the text is no such number (bad usage: exit 2), Refused when it is one
// but out of range (a checked bad value: exit 1).
Result<uint64_t> parseCount(const std::string& text, const char* option, bool zeroAllowed) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
    if (digits && ec == std::errc::result_out_of_range)
        return makeError(Errc::Refused, std::string(option) + " " + text + " is too large");
    if (!digits || ec != std::errc() || end != text.data() + text.size())
        return makeError(Errc::InvalidArgument, std::string(option) + " must be a " +
                                                    (zeroAllowed ? "non-negative" : "positive") +
                                                    " whole number, not '" + text + "'");
    if (v == 0 && !zeroAllowed) return makeError(Errc::Refused, std::string(option) + " must be at least 1");
    return v;
}

// Per-command help (`possync COMMAND --help`, `possync help COMMAND`).
struct CommandHelp {
    const char* name;
    const char* text;
};
constexpr CommandHelp kCommandHelp[] = {
    {"put",
     "usage: possync --data DIR put TABLE KEY (VALUE | --value-file PATH)\n"
     "                              [--if-absent | --if-present | --if-value V]\n"
     "                              [--no-wait | --wait-ms MS] [--seq]\n"
     "Writes one key in a transaction of its own. --value-file PATH (- for stdin) takes the\n"
     "value's bytes from a file, as they are, of any size. On a slave, a write to a watched table is\n"
     "queued for the master (see possync --help, write options). Exit 0 written, 1 rejected\n"
     "or failed, 2 bad usage, 3 queued but not yet applied.\n"},
    {"add",
     "usage: possync --data DIR add TABLE KEY DELTA [write options]\n"
     "Adds DELTA (a signed whole number) to the counter at KEY: an 8-byte big-endian signed\n"
     "integer, absent counting as 0. Write options and exit codes as for put.\n"},
    {"del",
     "usage: possync --data DIR del TABLE KEY [write options]\n"
     "Deletes one key (exit 1 when absent on a master; on a slave the master decides).\n"},
    {"get",
     "usage: possync --data DIR get TABLE KEY\n"
     "Prints the value (non-printable bytes as 0x-hex unless --hex). Exit 1 when absent.\n"
     "A user who may only read the directory needs write access to its lock.mdb.\n"},
    {"dump",
     "usage: possync --data DIR dump [TABLE]\n"
     "Prints \"key<TAB>value\" per entry of TABLE, or \"table<TAB>key<TAB>value\" for all.\n"},
    {"digest",
     "usage: possync --data DIR digest\n"
     "One line: position, digest and count over the watched tables; equal lines on two boards\n"
     "mean equal data.\n"},
    {"info",
     "usage: possync --data DIR info\n"
     "Role, device, generation, position, log, history, watched tables, outbox.\n"},
    {"outbox",
     "usage: possync --data DIR outbox\n"
     "Slave: the requests queued for the master. Master: the writing boards.\n"},
    {"watch",
     "usage: possync --data DIR watch [T1,T2,...]\n"
     "Shows the watched tables, or sets them on a master's directory (not on a slave's).\n"},
    {"load",
     "usage: possync --data DIR load --records N --value-size B [--table T] [--start I]\n"
     "                               [--batch K] [--seed S]\n"
     "Bulk-loads N synthetic records (benchmarks). Numbers are whole and non-negative\n"
     "(--records and --batch at least 1): text that is no number exits 2, a number out of\n"
     "range exits 1.\n"},
    {"key",
     "usage: possync --data DIR key\n"
     "Prints this board's public key (64 hex digits) and its fingerprint, making the key first\n"
     "when the board has none (DIR/board.key, owner-only). For factory provisioning: the master's\n"
     "--trusted-keys takes the slaves' keys, a slave's --master-key the master's. The secret key\n"
     "is never printed.\n"},
    {"console",
     "usage: possync console (--serial DEV [--baud N] | --socket PATH.sock) [--timeout MS]\n"
     "                       [COMMAND...]\n"
     "Talks to a running daemon's console. With a COMMAND, prints its answer and exits (1 when\n"
     "the daemon answers an error). Without one, an interactive session with line editing and\n"
     "history; Ctrl-D on an empty line ends it. --timeout MS bounds the wait for each answer.\n"},
    {"help", "usage: possync help [COMMAND]\n"},
};

const char* commandHelp(std::string_view name) {
    for (const CommandHelp& h : kCommandHelp)
        if (name == h.name) return h.text;
    return nullptr;
}

// Root on a data directory owned by another user (a setup script, an operator's sudo) acts as
// that directory's owner, so every file it creates (data.mdb, lock.mdb on first use,
// possync.notify) stays usable by the daemon's user. Returns a reason when it cannot.
Status actAsDirectoryOwner(const std::string& dir) {
    struct stat st;
    if (::geteuid() != 0 || ::stat(dir.c_str(), &st) != 0 || st.st_uid == 0) return {};
    struct passwd* pw = ::getpwuid(st.st_uid);
    int rc = pw ? ::initgroups(pw->pw_name, st.st_gid) : ::setgroups(0, nullptr);
    if (rc == 0) rc = ::setresgid(st.st_gid, st.st_gid, st.st_gid);
    if (rc == 0) rc = ::setresuid(st.st_uid, st.st_uid, st.st_uid);
    if (rc != 0)
        return makeError(Errc::Refused,
                         "running as root on " + dir + " (owned by uid " + std::to_string(st.st_uid) +
                             "), cannot act as its owner: " + strerror(errno) + "; run possync as that user");
    return {};
}

}  // namespace

#ifdef POSSYNC_HAVE_CONSOLE_CLIENT
int runConsoleClient(int argc, char** argv);
#else
static int runConsoleClient(int, char**) {
    fprintf(stderr, "possync: this build has no console client\n");
    return 2;
}
#endif

int main(int argc, char** argv) {
    if (argc >= 2 && std::strcmp(argv[1], "console") == 0) {
        if (argc >= 3 && (std::strcmp(argv[2], "--help") == 0 || std::strcmp(argv[2], "-h") == 0)) {
            fputs(commandHelp("console"), stdout);
            return 0;
        }
        return runConsoleClient(argc - 2, argv + 2);
    }

    log::setAllLevels(log::Level::Warning);
    CLI::App app{"possync - read and write a possync board's data directory", "possync"};
    app.set_help_flag();
    bool help = false, version = false;
    app.add_flag("-h,--help", help);
    app.add_flag("--version", version);
    std::string dir;
    std::string helpTopic;
    tool::TextMode mode;
    std::string mapText;
    app.add_option("--data", dir);
    app.add_flag("--hex", mode.hex);
    app.add_flag("--json", mode.json);
    app.add_option("--map-size", mapText);
    app.require_subcommand(0, 1);

    std::string table, key, value, deltaText;
    tool::WriteOptions writeOpts;
    bool ifAbsent = false, ifPresent = false, noWait = false;
    std::string ifValue, waitMsText;
    bool ifValueGiven = false;
    auto writeOptions = [&](CLI::App* c) {
        c->add_flag("--if-absent", ifAbsent);
        c->add_flag("--if-present", ifPresent);
        c->add_option("--if-value", ifValue);
        c->add_flag("--no-wait", noWait);
        c->add_option("--wait-ms", waitMsText);
        c->add_flag("--seq", writeOpts.printSeq);
    };
    auto* put = app.add_subcommand("put");
    put->add_option("table", table)->required();
    put->add_option("key", key)->required();
    put->add_option("value", value);
    std::string valueFile;
    put->add_option("--value-file", valueFile);
    writeOptions(put);
    auto* add = app.add_subcommand("add");
    add->add_option("table", table)->required();
    add->add_option("key", key)->required();
    add->add_option("delta", deltaText)->required();
    writeOptions(add);
    auto* get = app.add_subcommand("get");
    get->add_option("table", table)->required();
    get->add_option("key", key)->required();
    auto* del = app.add_subcommand("del");
    del->add_option("table", table)->required();
    del->add_option("key", key)->required();
    writeOptions(del);
    auto* dump = app.add_subcommand("dump");
    dump->add_option("table", table);
    auto* digest = app.add_subcommand("digest");
    auto* info = app.add_subcommand("info");
    auto* outbox = app.add_subcommand("outbox");
    auto* keyCmd = app.add_subcommand("key");
    std::string watchList;
    auto* watch = app.add_subcommand("watch");
    watch->add_option("tables", watchList);
    tool::LoadOptions load;
    // Numbers as text, checked below (parseCount) with a reason naming the option.
    std::string recordsText, valueSizeText, startText, batchText, seedText;
    auto* loadCmd = app.add_subcommand("load");
    loadCmd->add_option("--records", recordsText)->required();
    loadCmd->add_option("--value-size", valueSizeText)->required();
    loadCmd->add_option("--table", load.table);
    loadCmd->add_option("--start", startText);
    loadCmd->add_option("--batch", batchText);
    loadCmd->add_option("--seed", seedText);
    auto* helpCmd = app.add_subcommand("help");
    helpCmd->add_option("command", helpTopic);
    for (CLI::App* c : app.get_subcommands({})) c->set_help_flag("-h,--help");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        // A command's --help: its own text, whatever else is missing on the line.
        for (CLI::App* c : app.get_subcommands({}))
            if (c->parsed()) {
                fputs(commandHelp(c->get_name()), stdout);
                return 0;
            }
        fputs(kUsage, stdout);
        return 0;
    } catch (const CLI::ExtrasError& e) {
        // A first word that is no command: say so, not CLI11's "argument was not expected".
        std::string first;
        for (int i = 1; i < argc; ++i) {
            std::string a = argv[i];
            if (a == "--data" || a == "--map-size") {
                ++i;
                continue;
            }
            if (a.rfind("-", 0) != 0) {
                first = a;
                break;
            }
        }
        if (!first.empty() && app.get_subcommands().empty())
            fprintf(stderr,
                    "possync: unknown command '%s' (commands: put, add, del, get, dump, digest, info, "
                    "outbox, watch, load, key, console, help; see possync --help)\n",
                    first.c_str());
        else
            fprintf(stderr, "possync: %s (see possync --help)\n", e.what());
        return 2;
    } catch (const CLI::ParseError& e) {
        fprintf(stderr, "possync: %s (see possync --help)\n", e.what());
        return 2;
    }
    if (help) {
        fputs(kUsage, stdout);
        return 0;
    }
    if (helpCmd->parsed()) {
        if (helpTopic.empty()) {
            fputs(kUsage, stdout);
            return 0;
        }
        if (const char* text = commandHelp(helpTopic)) {
            fputs(text, stdout);
            return 0;
        }
        fprintf(stderr, "possync: help: unknown command '%s' (see possync --help)\n", helpTopic.c_str());
        return 2;
    }
    if (version) {
        printf("possync %s (protocol %d, format %d)\n", POSSYNC_VERSION, POSSYNC_PROTOCOL_VERSION,
               POSSYNC_FORMAT_VERSION);
        return 0;
    }
    if (app.get_subcommands().empty()) {
        fprintf(stderr, "possync: no command given (see possync --help)\n");
        return 2;
    }
    if (dir.empty()) {
        fprintf(stderr, "possync: --data DIR is required\n");
        return 2;
    }
    auto* cmd = app.get_subcommands().front();
    // Bad usage (exit 2), except a value that was understood but is out of range (exit 1).
    auto usage = [](const Error& e) {
        fprintf(stderr, "possync: %s\n", e.message.c_str());
        return e.code == Errc::Refused ? 1 : 2;
    };
    uint64_t mapMiB = 0;
    if (!mapText.empty()) {
        auto v = parseCount(mapText, "--map-size", false);
        if (!v) return usage(v.error());
        mapMiB = *v;
    }
    if (cmd == loadCmd) {
        struct Number {
            const std::string& text;
            const char* option;
            bool zeroAllowed;
            uint64_t& out;
        };
        for (const Number& n :
             {Number{recordsText, "--records", false, load.records},
              Number{valueSizeText, "--value-size", true, load.valueSize},
              Number{startText, "--start", true, load.start}, Number{batchText, "--batch", false, load.batch},
              Number{seedText, "--seed", true, load.seed}}) {
            if (n.text.empty()) continue;  // not given: the default stays
            auto v = parseCount(n.text, n.option, n.zeroAllowed);
            if (!v) return usage(v.error());
            n.out = *v;
        }
        if (load.start > UINT64_MAX - load.records)
            return usage(makeError(Errc::Refused, "--start " + startText + " plus --records " + recordsText +
                                                      " goes past the largest record index"));
    }
    if (cmd == put) {
        const bool fromFile = put->count("--value-file") > 0, given = put->count("value") > 0;
        if (fromFile == given)
            return usage(makeError(Errc::InvalidArgument,
                                   "put needs VALUE or --value-file PATH (- for stdin), one of them"));
        if (fromFile) {
            // Any size and any bytes (a value on the command line is limited by the kernel's
            // argument space, about 128 KiB per argument).
            std::FILE* f = valueFile == "-" ? stdin : std::fopen(valueFile.c_str(), "rb");
            if (!f)
                return usage(makeError(Errc::Refused, "--value-file " + valueFile + ": " + strerror(errno)));
            std::string bytes;
            char buf[65536];
            for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) bytes.append(buf, n);
            const bool failed = std::ferror(f) != 0;
            if (f != stdin) std::fclose(f);
            if (failed) return usage(makeError(Errc::Refused, "--value-file " + valueFile + ": read error"));
            writeOpts.rawValue = std::move(bytes);
        }
    }
    int64_t delta = 0;
    if (cmd == put || cmd == add || cmd == del) {
        ifValueGiven = cmd->count("--if-value") > 0;
        if (int(ifAbsent) + int(ifPresent) + int(ifValueGiven) > 1)
            return usage(makeError(Errc::InvalidArgument,
                                   "--if-absent, --if-present and --if-value exclude each other"));
        using C = tool::WriteOptions::Condition;
        writeOpts.condition = ifAbsent       ? C::Absent
                              : ifPresent    ? C::Present
                              : ifValueGiven ? C::Value
                                             : C::None;
        writeOpts.ifValue = ifValue;
        if (noWait && !waitMsText.empty())
            return usage(makeError(Errc::InvalidArgument, "--no-wait and --wait-ms exclude each other"));
        writeOpts.wait = !noWait;
        if (!waitMsText.empty()) {
            auto v = parseCount(waitMsText, "--wait-ms", true);
            if (!v) return usage(v.error());
            writeOpts.waitMs = *v;
        }
    }
    if (cmd == add) {
        // A sign is allowed here (a decrement); from_chars takes '-' but not '+'.
        std::string_view digits = deltaText;
        if (!digits.empty() && digits[0] == '+') digits.remove_prefix(1);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), delta);
        if (digits.empty() || digits[0] == '+' || ec != std::errc() || end != digits.data() + digits.size())
            return usage(makeError(Errc::InvalidArgument,
                                   "DELTA must be a whole number from " + std::to_string(INT64_MIN) + " to " +
                                       std::to_string(INT64_MAX) + ", not '" + deltaText + "'"));
    }
    bool writes = cmd == put || cmd == add || cmd == del || cmd == loadCmd || cmd == keyCmd ||
                  (cmd == watch && watch->count("tables"));

    store::StoreOptions so;
    so.mapSize = size_t(mapMiB) << 20;
    if (mapMiB && so.mapSize >> 20 != mapMiB) {
        fprintf(stderr, "possync: --map-size %llu MiB is too large for this board\n",
                (unsigned long long)mapMiB);
        return 2;
    }
    // Reading never creates a directory; writing initialises a new one. A reader that may not
    // write data.mdb opens it read-only (get, dump, digest work as far as LMDB allows: its lock
    // file must still be writable, and lmdb::Env's error says so); one that may write opens it
    // as before, which also waits behind a daemon still initialising the directory.
    so.create = writes;
    so.readOnly = !writes && ::access((dir + "/data.mdb").c_str(), W_OK) != 0 && errno == EACCES;
    if (auto owner = actAsDirectoryOwner(dir); !owner) {
        fprintf(stderr, "possync: %s\n", owner.error().message.c_str());
        return 1;
    }
    auto s = store::Store::open(dir, so);
    if (!s) {
        fprintf(stderr, "possync: %s\n", s.error().message.c_str());
        return 1;
    }
    store::Store& st = **s;
    if (cmd == keyCmd) return tool::cmdKey(dir);
    if (cmd == put) return tool::cmdPut(st, mode, table, key, value, writeOpts);
    if (cmd == add) return tool::cmdAdd(st, mode, table, key, delta, writeOpts);
    if (cmd == get) return tool::cmdGet(st, mode, table, key);
    if (cmd == del) return tool::cmdDel(st, mode, table, key, writeOpts);
    if (cmd == outbox) return tool::cmdOutbox(st);
    if (cmd == dump) return tool::cmdDump(st, mode, table);
    if (cmd == digest) return tool::cmdDigest(st, mode);
    if (cmd == info) return tool::cmdInfo(st, mode);
    if (cmd == watch) return tool::cmdWatch(st, watch->count("tables") ? &watchList : nullptr);
    if (cmd == loadCmd) return tool::cmdLoad(st, load);
    return 2;
}
