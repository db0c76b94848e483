// Log categories, levels settable at run time, and sinks (stderr and an in-memory ring).
//
//   POSSYNC_LOG_CATEGORY(Sync)                 // once, in one .cc file
//   POSSYNC_LOG_DECLARE(Sync)                  // in headers/other files that log to it
//   LOG(Sync, Warning) << "slave " << id << " fell behind";
//
// Formatting only happens when the category's level lets the message through. All of this
// is used from the daemon's one loop thread; the registry is not locked.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <string>
#include <string_view>
#include <vector>

namespace possync::log {

enum class Level : int {
    Debug = 0,    // detail for developers
    Info = 1,     // normal but notable events (link up, sync done)
    Warning = 2,  // a bad peer, a retry, something an operator may want to know
    Error = 3,    // the board cannot do part of its job
    Fatal = 4,    // impossible after start-up; the process exits
};

const char* levelName(Level level);
std::optional<Level> parseLevel(std::string_view text);

class Category final {
public:
    explicit Category(const char* name);
    const char* name() const { return name_; }
    Level level() const { return level_; }
    void setLevel(Level level) { level_ = level; }
    bool enabled(Level level) const { return level >= level_; }

private:
    const char* name_;
    Level level_;
};

// Every category created so far (static registration order).
const std::vector<Category*>& categories();
Category* findCategory(std::string_view name);
// Sets the level of every category (and the default for ones registered later).
void setAllLevels(Level level);

// The longest text a line keeps (bytes, before the "...(N bytes cut)" marker). A line is
// cut here in the ring, the sinks and on stderr, so a peer's megabyte string that reaches
// a log line costs at most this much, whatever code logged it.
inline constexpr size_t kMaxLineBytes = 1024;

struct Line {
    uint64_t wallMs;  // milliseconds since the epoch
    Level level;
    const char* category;
    std::string text;
};

// Destinations. stderr is on by default; the ring keeps the last N lines for the console.
void setStderr(bool on);
void setRingCapacity(size_t lines);
std::vector<Line> recent(size_t n);
std::string format(const Line& line);

// stderr's line format. Plain: "TIMESTAMP level Category: text". Journal, when stderr is the
// systemd journal: "<PRIORITY>Category: text" (sd-daemon(3) prefixes; the journal stamps the
// time itself), so `journalctl -p warning` filters by level. Chosen at start by
// journalFormatWanted(); settable for tests.
enum class StderrFormat { Plain, Journal };
void setStderrFormat(StderrFormat format);
// True when $JOURNAL_STREAM (set by systemd for a service whose stderr is the journal) names
// the device and inode of this process's stderr (a redirected stderr keeps the plain format).
bool journalFormatWanted();
// The syslog priority of a level (debug 7, info 6, warning 4, error 3, fatal 2).
int syslogPriority(Level level);
std::string formatJournal(const Line& line);
// Extra sink (tests, console live view). Returns an id for removeSink.
int addSink(std::function<void(const Line&)> sink);
void removeSink(int id);

// The text of one line as it is streamed: keeps the first kMaxLineBytes bytes and only
// counts the rest, so even formatting an 8 MiB string allocates about 1 KiB.
class LineBuffer final : public std::streambuf {
public:
    // The text; over kMaxLineBytes it is cut on a UTF-8 character boundary and ends with
    // "...(N bytes cut)".
    std::string take();

protected:
    int_type overflow(int_type c) override;
    std::streamsize xsputn(const char* s, std::streamsize n) override;

private:
    std::string kept_;  // up to kMaxLineBytes + 1 bytes (one more to see a split character)
    size_t total_ = 0;  // bytes streamed
};

class Message final {
public:
    Message(Category& category, Level level) : category_(category), level_(level) {}
    ~Message();
    Message(const Message&) = delete;
    Message& operator=(const Message&) = delete;
    std::ostream& stream() { return out_; }

private:
    Category& category_;
    Level level_;
    LineBuffer buffer_;
    std::ostream out_{&buffer_};
};

// Turns `stream << ...` into void so LOG can be the right operand of ?:.
struct Voidify {
    void operator&(std::ostream&) {}
};

}  // namespace possync::log

// The macros expand to declarations and to an expression meant to be followed by `<<`; they
// cannot be parenthesised. NOLINTBEGIN(bugprone-macro-parentheses)
// Defines the category (in one .cc file, inside the namespace that logs to it).
#define POSSYNC_LOG_CATEGORY(name)                  \
    ::possync::log::Category& logCategory##name();  \
    ::possync::log::Category& logCategory##name() { \
        static ::possync::log::Category c(#name);   \
        return c;                                   \
    }                                               \
    [[maybe_unused]] static ::possync::log::Category& logCategoryAtStart##name = logCategory##name();
#define POSSYNC_LOG_DECLARE(name) ::possync::log::Category& logCategory##name()

// LOG(Category, Level) << ...; formats nothing when the level is filtered out. Safe inside an
// unbraced if/else (an expression, not an if statement).
#define LOG(cat, lvl)                                       \
    !logCategory##cat().enabled(::possync::log::Level::lvl) \
        ? (void)0                                           \
        : ::possync::log::Voidify() &                       \
              ::possync::log::Message(logCategory##cat(), ::possync::log::Level::lvl).stream()
// NOLINTEND(bugprone-macro-parentheses)
