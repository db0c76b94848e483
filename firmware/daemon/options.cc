#include "daemon/options.h"

// toml++ header-only with exceptions off (no exceptions in firmware/): Debian's libtomlplusplus
// is built with exceptions, so its no-exception API is not in the shared library.
#define TOML_EXCEPTIONS 0
#define TOML_HEADER_ONLY 1
#include <functional>
#include <sstream>

#include <toml++/toml.h>

#include "base/bytes.h"
#include "base/host_port.h"
#include "log/log.h"

#include "possync_config.h"
#include "wire/bounds.h"

namespace possync::daemon {

namespace {

enum class Kind { Text, Number, Flag };

// One option. `name` is the command-line flag without "--"; the config key is the same with
// '_' for '-'. set() parses text into Options; get() prints the current value.
struct Spec {
    const char* name;
    Kind kind;
    const char* value;  // placeholder in --help
    const char* help;
    std::function<Status(Options&, const std::string&)> set;
    std::function<std::string(const Options&)> get;
    bool configFile = true;  // may appear in the config file
};

Status setNumber(uint64_t& field, const std::string& text, const char* name, uint64_t min, uint64_t max) {
    auto v = parseU64(text);
    if (!v || *v < min || *v > max)
        return makeError(Errc::InvalidArgument, std::string("--") + name + " must be a number from " +
                                                    std::to_string(min) + " to " + std::to_string(max) +
                                                    ", not '" + text + "'");
    field = *v;
    return {};
}

#define TEXT(field)                                  \
    [](Options& o, const std::string& t) -> Status { \
        o.field = t;                                 \
        return {};                                   \
    },                                               \
        [](const Options& o) { return o.field; }
#define NUMBER(field, min, max, nm)                                                                 \
    [](Options& o, const std::string& t) -> Status { return setNumber(o.field, t, nm, min, max); }, \
        [](const Options& o) { return std::to_string(o.field); }

const std::vector<Spec>& specs() {
    static const std::vector<Spec> all = {
        {"role", Kind::Text, "master|slave", "this board's role (required)",
         [](Options& o, const std::string& t) -> Status {
             if (t != "master" && t != "slave")
                 return makeError(Errc::InvalidArgument, "--role must be master or slave, not '" + t + "'");
             o.role = t;
             return {};
         },
         [](const Options& o) { return o.role; }},
        {"data", Kind::Text, "DIR", "data directory (LMDB environment; created when missing)", TEXT(data)},
        {"store", Kind::Text, "ID", "store id: a slave pairs only with a master of the same store",
         TEXT(store)},
        {"device", Kind::Text, "ID",
         "this board's device id (default: kept in the data directory, random at creation)", TEXT(device)},
        {"listen", Kind::Text, "ADDR:PORT",
         "master: address and TCP port to accept slaves on (port 0: any free port)", TEXT(listen)},
        {"master", Kind::Text, "HOST:PORT", "slave: the master's address or host name (static discovery)",
         TEXT(master)},
        {"discovery", Kind::Text, "avahi|static",
         "slave: how to find the master (default: static with --master, else avahi); master: avahi "
         "advertises on the LAN (default), static does not",
         [](Options& o, const std::string& t) -> Status {
             if (t != "avahi" && t != "static")
                 return makeError(Errc::InvalidArgument,
                                  "--discovery must be avahi or static, not '" + t + "'");
             o.discovery = t;
             return {};
         },
         [](const Options& o) { return o.discovery; }},
        {"tables", Kind::Text, "T1,T2,...",
         "master: the watched tables (listening configuration, kept in the data directory)", TEXT(tables)},
        {"serial", Kind::Text, "/dev/ttyX", "serve the diagnostic console on this serial port", TEXT(serial)},
        {"baud", Kind::Number, "N", "serial port speed",
         [](Options& o, const std::string& t) -> Status {
             uint64_t v = 0;
             POSSYNC_TRY(setNumber(v, t, "baud", 50, 4000000));
             o.baud = static_cast<uint32_t>(v);
             return {};
         },
         [](const Options& o) { return std::to_string(o.baud); }},
        {"console", Kind::Text, "PATH.sock", "serve the diagnostic console on this Unix socket",
         TEXT(console)},
        {"console-sessions", Kind::Number, "N",
         "socket console sessions open at once; one more is refused with the reason (the serial console "
         "is never refused because of them)",
         NUMBER(consoleSessions, 1, 256, "console-sessions")},
        {"console-idle-ms", Kind::Number, "MS",
         "close a socket console session that sent nothing this long (0: never)",
         NUMBER(consoleIdleMs, 0, 86400000, "console-idle-ms")},
        {"config", Kind::Text, "FILE", "read options from this TOML file (command line wins)", TEXT(config),
         false},
        {"log-level", Kind::Text, "LEVEL", "debug, info, warning or error",
         [](Options& o, const std::string& t) -> Status {
             if (!log::parseLevel(t))
                 return makeError(Errc::InvalidArgument,
                                  "--log-level must be debug, info, warning or error, not '" + t + "'");
             o.logLevel = t;
             return {};
         },
         [](const Options& o) { return o.logLevel; }},
        {"map-size", Kind::Number, "MIB",
         "LMDB map size in MiB (0: 1024, 512 on 32-bit); grows, never shrinks",
         NUMBER(mapSizeMiB, 0, 1u << 20, "map-size")},
        {"max-frame", Kind::Number, "BYTES",
         "largest frame accepted or sent (and largest transaction that replicates)",
         NUMBER(maxFrameBytes, 4096, 1u << 30, "max-frame")},
        {"heartbeat-ms", Kind::Number, "MS", "interval of Ping frames on an idle link",
         NUMBER(heartbeatMs, 10, 600000, "heartbeat-ms")},
        {"timeout-ms", Kind::Number, "MS", "close a link that was silent this long",
         NUMBER(timeoutMs, 50, 3600000, "timeout-ms")},
        {"backoff-min-ms", Kind::Number, "MS", "slave: first reconnect delay (doubles with jitter)",
         NUMBER(backoffMinMs, 1, 3600000, "backoff-min-ms")},
        {"backoff-max-ms", Kind::Number, "MS", "slave: reconnect delay cap",
         NUMBER(backoffMaxMs, 1, 3600000, "backoff-max-ms")},
        {"window", Kind::Number, "N", "master: change models in flight per slave before waiting for Acks",
         NUMBER(window, 1, 100000, "window")},
        {"send-buffer", Kind::Number, "BYTES",
         "master: queued bytes per slave before it stops reading the log",
         NUMBER(sendBufferBytes, 65536, 1u << 30, "send-buffer")},
        {"chunk-bytes", Kind::Number, "BYTES", "master: size of one FULL snapshot chunk",
         NUMBER(chunkBytes, 4096, 1u << 30, "chunk-bytes")},
        {"log-max-entries", Kind::Number, "N",
         "master: trim the change log to this many entries unless a slave needs them",
         NUMBER(logMaxEntries, 1, UINT64_MAX, "log-max-entries")},
        {"log-max-bytes", Kind::Number, "BYTES",
         "master: trim the change log to this size unless a slave needs it",
         NUMBER(logMaxBytes, 1, UINT64_MAX, "log-max-bytes")},
        {"log-hard-max-entries", Kind::Number, "N",
         "master: past this, entries go even if a slave needs them (it then gets FULL)",
         NUMBER(logHardMaxEntries, 1, UINT64_MAX, "log-hard-max-entries")},
        {"log-hard-max-bytes", Kind::Number, "BYTES", "master: the same limit in bytes",
         NUMBER(logHardMaxBytes, 1, UINT64_MAX, "log-hard-max-bytes")},
        {"new-generation", Kind::Text, "wait|accept",
         "slave: when the master's data was replaced (new generation), wait for the operator or accept at "
         "once",
         [](Options& o, const std::string& t) -> Status {
             if (t == "wait")
                 o.newGeneration = NewGenerationPolicy::Wait;
             else if (t == "accept")
                 o.newGeneration = NewGenerationPolicy::Accept;
             else
                 return makeError(Errc::InvalidArgument,
                                  "--new-generation must be wait or accept, not '" + t + "'");
             return {};
         },
         [](const Options& o) {
             return std::string(o.newGeneration == NewGenerationPolicy::Wait ? "wait" : "accept");
         }},
        {"sync", Kind::Text, "yes|no",
         "fsync every commit (no: faster, loses the last commits on power loss)",
         [](Options& o, const std::string& t) -> Status {
             if (t == "yes" || t == "true")
                 o.sync = true;
             else if (t == "no" || t == "false")
                 o.sync = false;
             else
                 return makeError(Errc::InvalidArgument, "--sync must be yes or no, not '" + t + "'");
             return {};
         },
         [](const Options& o) { return std::string(o.sync ? "yes" : "no"); }},
    };
    return all;
}

const Spec* findSpec(const std::string& name) {
    for (const auto& s : specs())
        if (name == s.name) return &s;
    return nullptr;
}

std::string configKey(const char* name) {
    std::string k(name);
    for (char& c : k)
        if (c == '-') c = '_';
    return k;
}

}  // namespace

Status loadConfigFile(const std::string& path, Options& out) {
    toml::parse_result parsed = toml::parse_file(path);
    if (!parsed) {
        const auto& err = parsed.error();
        std::ostringstream msg;
        msg << "config file " << path << ":" << err.source().begin.line << ": " << err.description();
        return makeError(Errc::InvalidArgument, msg.str());
    }
    const toml::table& table = parsed.table();
    for (auto&& [key, node] : table) {
        std::string k(key.str());
        const Spec* spec = nullptr;
        for (const auto& s : specs())
            if (configKey(s.name) == k && s.configFile) spec = &s;
        if (!spec)
            return makeError(Errc::InvalidArgument, "config file " + path + ": unknown option '" + k + "'");
        std::string text;
        if (auto s = node.value<std::string>())
            text = *s;
        else if (auto i = node.value<int64_t>()) {
            if (*i < 0)
                return makeError(Errc::InvalidArgument,
                                 "config file " + path + ": " + k + " must not be negative");
            text = std::to_string(*i);
        } else if (auto b = node.value<bool>())
            text = *b ? "yes" : "no";
        else if (auto arr = node.as_array()) {
            // tables = ["menu", "orders"] is accepted as well as "menu,orders".
            for (auto&& el : *arr) {
                auto item = el.value<std::string>();
                if (!item)
                    return makeError(Errc::InvalidArgument,
                                     "config file " + path + ": " + k + " must be a list of strings");
                if (!text.empty()) text += ",";
                text += *item;
            }
        } else {
            return makeError(Errc::InvalidArgument,
                             "config file " + path + ": " + k + " has an unsupported type");
        }
        auto r = spec->set(out, text);
        if (!r) return makeError(Errc::InvalidArgument, "config file " + path + ": " + r.error().message);
    }
    return {};
}

Result<ParseOutcome> parseOptions(int argc, char** argv, Options& out) {
    // First pass: find --config so the file is applied before the command line.
    std::vector<std::pair<const Spec*, std::string>> given;
    bool check = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") return ParseOutcome::Help;
        if (arg == "--version") return ParseOutcome::Version;
        if (arg == "--print-default-config") return ParseOutcome::PrintConfig;
        if (arg == "--check-config") {
            check = true;
            continue;
        }
        if (arg.rfind("--", 0) != 0)
            return makeError(Errc::InvalidArgument,
                             "unexpected argument '" + arg + "' (see possyncd --help)");
        std::string name = arg.substr(2), value;
        size_t eq = name.find('=');
        bool inlineValue = eq != std::string::npos;
        if (inlineValue) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        const Spec* spec = findSpec(name);
        if (!spec)
            return makeError(Errc::InvalidArgument, "unknown option '--" + name + "' (see possyncd --help)");
        if (!inlineValue) {
            if (i + 1 >= argc)
                return makeError(Errc::InvalidArgument,
                                 "option '--" + name + "' needs a value " + spec->value);
            value = argv[++i];
        }
        given.emplace_back(spec, value);
    }
    for (auto& [spec, value] : given)
        if (std::string(spec->name) == "config") POSSYNC_TRY(loadConfigFile(value, out));
    for (auto& [spec, value] : given) POSSYNC_TRY(spec->set(out, value));
    return check ? ParseOutcome::CheckConfig : ParseOutcome::Run;
}

Status validate(const Options& o) {
    if (o.role.empty()) return makeError(Errc::InvalidArgument, "--role master|slave is required");
    if (o.data.empty()) return makeError(Errc::InvalidArgument, "--data DIR is required");
    if (o.store.empty()) return makeError(Errc::InvalidArgument, "--store ID is required");
    // The wire's bounds (wire/bounds.h): a master refuses a Hello whose ids break them.
    if (!wire::isIdText(o.store) || o.store.find_first_of(" =,") != std::string::npos)
        return makeError(Errc::InvalidArgument,
                         "--store must be 1 to 64 characters without spaces, '=', ',' or control characters");
    if (!wire::isIdText(o.device))
        return makeError(Errc::InvalidArgument,
                         "--device must be at most 64 bytes without control characters");
    if (o.role == "master") {
        auto listen = parseHostPort(o.listen, PortUse::Listen);
        if (!listen) return makeError(listen.error().code, "--listen: " + listen.error().message);
        if (!o.master.empty())
            return makeError(Errc::InvalidArgument, "--master is for slaves; a master uses --listen");
    } else {
        if (!o.master.empty()) {
            auto master = parseHostPort(o.master, PortUse::Connect);
            if (!master) return makeError(master.error().code, "--master: " + master.error().message);
        }
        if (o.discovery == "static" && o.master.empty())
            return makeError(Errc::InvalidArgument, "--discovery static needs --master HOST:PORT");
        if (!o.tables.empty())
            return makeError(Errc::InvalidArgument,
                             "--tables is for the master; slaves replicate what the master watches");
#if !POSSYNC_HAVE_AVAHI
        if (o.master.empty() || o.discovery == "avahi")
            return makeError(Errc::InvalidArgument,
                             "this build has no Avahi discovery: give --master HOST:PORT");
#endif
    }
    if (o.timeoutMs <= o.heartbeatMs)
        return makeError(Errc::InvalidArgument, "--timeout-ms must be larger than --heartbeat-ms");
    if (o.backoffMaxMs < o.backoffMinMs)
        return makeError(Errc::InvalidArgument, "--backoff-max-ms must not be below --backoff-min-ms");
    return {};
}

std::string helpText() {
    std::string s =
        "possyncd - keeps the point-of-sale boards of one store in sync over the store's LAN\n\n"
        "usage:\n"
        "  possyncd --role master --data DIR --store ID [--listen ADDR:PORT] [--tables T1,T2,...]\n"
        "  possyncd --role slave  --data DIR --store ID [--master HOST:PORT | --discovery avahi]\n"
        "  possyncd --config FILE [options]    options from a TOML file, the command line wins\n"
        "  possyncd --print-default-config     a commented config file with every default\n"
        "  possyncd --config FILE --check-config   check a configuration, start nothing\n\n"
        "A master owns the business data and streams every committed change of its watched\n"
        "tables to its slaves; a slave mirrors them read-only, resuming from its position after\n"
        "restarts. SIGTERM/SIGINT stop it cleanly.\n\noptions:\n";
    for (const auto& spec : specs()) {
        std::string flag = std::string("  --") + spec.name + " " + spec.value;
        if (flag.size() < 32)
            flag.resize(32, ' ');
        else
            flag += "\n" + std::string(32, ' ');
        s += flag + spec.help + "\n";
    }
    s += "  --help, --version, --print-default-config, --check-config\n";
    return s;
}

std::string defaultConfigText() {
    Options defaults;
    std::string s =
        "# possyncd configuration (TOML). Every option of the command line, at its default.\n"
        "# The command line wins over this file. Generated by possyncd --print-default-config.\n\n";
    for (const auto& spec : specs()) {
        if (!spec.configFile) continue;
        s += "# " + std::string(spec.help) + "\n";
        std::string v = spec.get(defaults);
        std::string key = configKey(spec.name);
        bool required = std::string(spec.name) == "role" || std::string(spec.name) == "data" ||
                        std::string(spec.name) == "store";
        std::string value = spec.kind == Kind::Number ? v : "\"" + v + "\"";
        if (v.empty() || required)
            s += "# " + key + " = " + value + "\n\n";
        else
            s += key + " = " + value + "\n\n";
    }
    return s;
}

}  // namespace possync::daemon
