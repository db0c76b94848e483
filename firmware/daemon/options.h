// possyncd's options: one table that drives the command line, the TOML config file, --help
// and --print-default-config. Every option is documented once, in options.cc.
//
// Precedence: built-in default < config file (--config FILE) < command line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

#include "trust/keys.h"

namespace possync::daemon {

enum class NewGenerationPolicy {
    Wait,    // keep the data, report, wait for the operator (console accept-generation)
    Accept,  // take a FULL sync of the new generation at once
};

struct Options {
    std::string role;  // "master" or "slave"
    std::string data;
    std::string store;
    std::string device;
    std::string listen = "0.0.0.0:7700";
    // --listen was given (command line or config file): a slave may be promoted only then, since
    // the default address is a master's, not one chosen for this board (DESIGN.md §10).
    bool listenSet = false;
    std::string master;     // HOST:PORT, slave with static discovery
    std::string discovery;  // "avahi" or "static"; empty = static when master is set
    std::string tables;     // comma-separated watched tables (master)
    std::string serial;
    uint32_t baud = 115200;
    std::string console;
    uint64_t consoleSessions = 8;     // socket console sessions at once (the serial one is apart)
    uint64_t consoleIdleMs = 300000;  // close a socket console session idle this long (0: never)
    std::string config;
    std::string logLevel = "info";
    uint64_t mapSizeMiB = 0;
    // Slave: bytes of writes queued for the master at most (DESIGN.md §9); past it writes fail.
    uint64_t outboxMaxBytes = uint64_t(64) << 20;
    uint64_t maxFrameBytes = 16u << 20;
    uint64_t heartbeatMs = 1000;
    uint64_t timeoutMs = 5000;
    uint64_t backoffMinMs = 500;
    uint64_t backoffMaxMs = 60000;
    uint64_t window = 64;
    uint64_t sendBufferBytes = 8u << 20;
    uint64_t helloTimeoutMs = 3000;
    uint64_t minFrameRate = 32u << 10;
    uint64_t maxLinks = 64;
    uint64_t maxLinksPerAddress = 16;
    uint64_t chunkBytes = 1u << 20;
    uint64_t logMaxEntries = 100000;
    uint64_t logMaxBytes = 256u << 20;
    uint64_t logHardMaxEntries = 1000000;
    uint64_t logHardMaxBytes = 1024u << 20;
    NewGenerationPolicy newGeneration = NewGenerationPolicy::Wait;
    // Slave: promote this board by itself after this long without a master (0: never; needs
    // --listen; daemon/auto_promote.h).
    uint64_t autoPromoteAfterS = 0;
    // Trust (DESIGN.md §11). Master: pairing open without confirmation for this long after start
    // (headless installs; 0: closed) and the public keys admitted at start (factory provisioning,
    // comma-separated hex). Slave: its master's public key, trusted before the first sync.
    uint64_t pairWindowS = 0;
    std::string trustedKeys;
    std::string masterKey;
    bool sync = true;  // fsync each commit (false only for benchmarks/tests)
    // The command line as given (argv[1..]): a reload (SIGHUP) parses it again, config file
    // included, so the command line still wins over the file.
    std::vector<std::string> args;
};

enum class ParseOutcome { Run, Help, Version, PrintConfig, CheckConfig };

// Parses argv (and the config file it names). Errors are one line, ready to print.
Result<ParseOutcome> parseOptions(int argc, char** argv, Options& out);
// Loads a TOML config file into `out` (keys are option names with '_' for '-').
Status loadConfigFile(const std::string& path, Options& out);
// --trusted-keys: comma-separated public keys (64 hex digits each).
Result<std::vector<trust::PublicKey>> parseKeyList(std::string_view text);
// The same for config text already in memory (`path` only names it in messages).
Status loadConfigText(std::string_view text, const std::string& path, Options& out);
// The options `running` was made from, parsed again (the config file read again) and validated:
// what a reload (SIGHUP) would run with.
Result<Options> reparse(const Options& running);
// The names of the options whose values differ ("log-level", "heartbeat-ms", ...), in --help order.
std::vector<std::string> changedOptions(const Options& a, const Options& b);
// Checks required options and combinations (role, data, store, addresses, tables, speed).
Status validate(const Options& o);
// Checks the paths the options name against the file system, as start would find them: --data
// a directory (or missing: it is made), --serial an existing character device, --console in an
// existing directory. For start and --check-config alike.
Status checkEnvironment(const Options& o);

std::string helpText();
// A commented TOML file with every option at its default.
// The commented config file --print-default-config prints; options set in `given` (given beside
// it on the command line) are written as set.
std::string defaultConfigText(const Options& given = Options{});

}  // namespace possync::daemon
