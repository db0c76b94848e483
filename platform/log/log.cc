#include "log/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>

namespace possync::log {

namespace {

struct State {
    std::vector<Category*> categories;
    Level defaultLevel = Level::Info;
    bool toStderr = true;
    StderrFormat stderrFormat = journalFormatWanted() ? StderrFormat::Journal : StderrFormat::Plain;
    size_t ringCapacity = 1000;
    std::deque<Line> ring;
    std::map<int, std::function<void(const Line&)>> sinks;
    int nextSink = 1;
};

State& state() {
    static State s;
    return s;
}

}  // namespace

const char* levelName(Level level) {
    switch (level) {
        case Level::Debug: return "debug";
        case Level::Info: return "info";
        case Level::Warning: return "warning";
        case Level::Error: return "error";
        case Level::Fatal: return "fatal";
    }
    return "?";
}

std::optional<Level> parseLevel(std::string_view text) {
    for (Level l : {Level::Debug, Level::Info, Level::Warning, Level::Error, Level::Fatal})
        if (text == levelName(l)) return l;
    if (text == "warn") return Level::Warning;
    return std::nullopt;
}

Category::Category(const char* name) : name_(name), level_(state().defaultLevel) {
    state().categories.push_back(this);
}

const std::vector<Category*>& categories() {
    return state().categories;
}

Category* findCategory(std::string_view name) {
    for (Category* c : state().categories)
        if (name == c->name()) return c;
    return nullptr;
}

void setAllLevels(Level level) {
    state().defaultLevel = level;
    for (Category* c : state().categories) c->setLevel(level);
}

void setStderr(bool on) {
    state().toStderr = on;
}

void setRingCapacity(size_t lines) {
    State& s = state();
    s.ringCapacity = lines;
    while (s.ring.size() > lines) s.ring.pop_front();
}

std::vector<Line> recent(size_t n) {
    const auto& ring = state().ring;
    size_t from = ring.size() > n ? ring.size() - n : 0;
    return std::vector<Line>(ring.begin() + static_cast<std::ptrdiff_t>(from), ring.end());
}

std::string format(const Line& line) {
    time_t secs = static_cast<time_t>(line.wallMs / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char stamp[64];
    snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<unsigned>(line.wallMs % 1000));
    return std::string(stamp) + " " + levelName(line.level) + " " + line.category + ": " + line.text;
}

void setStderrFormat(StderrFormat format) {
    state().stderrFormat = format;
}

bool journalFormatWanted() {
    const char* env = getenv("JOURNAL_STREAM");
    if (!env) return false;
    unsigned long long dev = 0, ino = 0;
    if (sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0) return false;
    return static_cast<unsigned long long>(st.st_dev) == dev &&
           static_cast<unsigned long long>(st.st_ino) == ino;
}

int syslogPriority(Level level) {
    switch (level) {
        case Level::Debug: return 7;
        case Level::Info: return 6;
        case Level::Warning: return 4;
        case Level::Error: return 3;
        case Level::Fatal: return 2;
    }
    return 6;
}

std::string formatJournal(const Line& line) {
    return "<" + std::to_string(syslogPriority(line.level)) + ">" + line.category + ": " + line.text;
}

int addSink(std::function<void(const Line&)> sink) {
    State& s = state();
    int id = s.nextSink++;
    s.sinks.emplace(id, std::move(sink));
    return id;
}

void removeSink(int id) {
    state().sinks.erase(id);
}

LineBuffer::int_type LineBuffer::overflow(int_type c) {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    char ch = traits_type::to_char_type(c);
    xsputn(&ch, 1);
    return c;
}

std::streamsize LineBuffer::xsputn(const char* s, std::streamsize n) {
    auto bytes = static_cast<size_t>(n);
    total_ += bytes;
    size_t room = kMaxLineBytes + 1 - std::min(kept_.size(), kMaxLineBytes + 1);
    kept_.append(s, std::min(room, bytes));
    return n;
}

std::string LineBuffer::take() {
    if (total_ <= kMaxLineBytes) return std::move(kept_);
    size_t end = kMaxLineBytes;
    // Back off UTF-8 continuation bytes (10xxxxxx) so no character is split.
    while (end > 0 && (static_cast<unsigned char>(kept_[end]) & 0xc0) == 0x80) --end;
    kept_.resize(end);
    kept_ += "...(" + std::to_string(total_ - end) + " bytes cut)";
    return std::move(kept_);
}

Message::~Message() {
    State& s = state();
    Line line;
    line.wallMs = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
    line.level = level_;
    line.category = category_.name();
    line.text = buffer_.take();
    if (s.toStderr) {
        std::string text =
            (s.stderrFormat == StderrFormat::Journal ? formatJournal(line) : format(line)) + "\n";
        fwrite(text.data(), 1, text.size(), stderr);
    }
    for (auto& [id, sink] : s.sinks) sink(line);
    if (s.ringCapacity) {
        if (s.ring.size() >= s.ringCapacity) s.ring.pop_front();
        s.ring.push_back(std::move(line));
    }
    if (level_ == Level::Fatal) std::abort();
}

}  // namespace possync::log
