#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "log/log.h"

namespace {
POSSYNC_LOG_CATEGORY(Test)
}

using namespace possync;

TEST_CASE("log levels filter per category and the ring keeps recent lines") {
    log::setStderr(false);
    log::setRingCapacity(3);
    logCategoryTest().setLevel(log::Level::Warning);
    LOG(Test, Info) << "hidden";
    LOG(Test, Warning) << "shown " << 1;
    auto lines = log::recent(10);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].text == "shown 1");
    CHECK(std::string(lines[0].category) == "Test");
    for (int i = 0; i < 5; ++i) LOG(Test, Error) << "e" << i;
    lines = log::recent(10);
    REQUIRE(lines.size() == 3);
    CHECK(lines.back().text == "e4");
    CHECK(log::findCategory("Test") == &logCategoryTest());
    CHECK(log::parseLevel("debug") == log::Level::Debug);
    CHECK_FALSE(log::parseLevel("loud"));
    int seen = 0;
    int id = log::addSink([&](const log::Line&) { ++seen; });
    LOG(Test, Error) << "x";
    log::removeSink(id);
    LOG(Test, Error) << "y";
    CHECK(seen == 1);
}

TEST_CASE("a log line is bounded in the ring, the sinks and on stderr") {
    // A refused Hello with an 8 MiB store id used to keep all 8 MiB in the ring (and print
    // it): every line now stops at log::kMaxLineBytes with a marker saying how much went.
    log::setStderr(false);
    log::setRingCapacity(4);
    logCategoryTest().setLevel(log::Level::Info);
    std::string seen;
    int id = log::addSink([&](const log::Line& l) { seen = l.text; });
    const std::string huge(8u << 20, 'x');
    LOG(Test, Warning) << "refused store '" << huge << "'";
    log::removeSink(id);
    auto lines = log::recent(1);
    REQUIRE(lines.size() == 1);
    const std::string& text = lines[0].text;
    const size_t total = huge.size() + std::string("refused store ''").size();
    CHECK(text.size() <= log::kMaxLineBytes + 32);
    CHECK(text.rfind("refused store 'xxx", 0) == 0);
    // Booleans, not the strings: a failure must not print megabytes.
    const std::string marker = "...(" + std::to_string(total - log::kMaxLineBytes) + " bytes cut)";
    CHECK(text.size() == log::kMaxLineBytes + marker.size());
    CHECK((text.size() > log::kMaxLineBytes && text.substr(log::kMaxLineBytes) == marker));
    CHECK(seen.size() == text.size());
    CHECK((seen == text));
    CHECK(log::format(lines[0]).size() < log::kMaxLineBytes + 128);

    // A cut never splits a UTF-8 character; short lines are untouched.
    std::string utf8(log::kMaxLineBytes - 1, 'a');
    utf8 += "\xc3\xa9\xc3\xa9";  // the first e-acute straddles the limit
    LOG(Test, Warning) << utf8;
    lines = log::recent(1);
    CHECK((lines[0].text == std::string(log::kMaxLineBytes - 1, 'a') + "...(4 bytes cut)"));
    LOG(Test, Warning) << "short";
    CHECK(log::recent(1)[0].text == "short");

    // stderr gets the same bounded line.
    char path[] = "/tmp/possync-log-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    REQUIRE(saved >= 0);
    REQUIRE(dup2(fd, 2) == 2);
    log::setStderr(true);
    LOG(Test, Warning) << huge;
    log::setStderr(false);
    fflush(stderr);
    REQUIRE(dup2(saved, 2) == 2);
    close(saved);
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    close(fd);
    unlink(path);
    CHECK(st.st_size > 0);
    CHECK(st.st_size < static_cast<off_t>(log::kMaxLineBytes) + 128);
}

TEST_CASE("on the journal, stderr lines carry sd-daemon priorities and no timestamp of their own") {
    log::Line line{1'700'000'000'123, log::Level::Warning, "Sync", "link to master lost"};
    CHECK(log::formatJournal(line) == "<4>Sync: link to master lost");
    line.level = log::Level::Error;
    CHECK(log::formatJournal(line) == "<3>Sync: link to master lost");
    CHECK(log::syslogPriority(log::Level::Info) == 6);
    CHECK(log::syslogPriority(log::Level::Debug) == 7);
    CHECK(log::format(line).rfind("2023-11-14T22:13:20.123Z error Sync: ", 0) == 0);

    // JOURNAL_STREAM names stderr's device:inode when systemd connected it to the journal.
    struct stat st;
    REQUIRE(fstat(STDERR_FILENO, &st) == 0);
    std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    setenv("JOURNAL_STREAM", mine.c_str(), 1);
    CHECK(log::journalFormatWanted());
    setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1)).c_str(), 1);
    CHECK_FALSE(log::journalFormatWanted());  // stderr redirected elsewhere: plain lines
    setenv("JOURNAL_STREAM", "garbage", 1);
    CHECK_FALSE(log::journalFormatWanted());
    unsetenv("JOURNAL_STREAM");
    CHECK_FALSE(log::journalFormatWanted());

    // What reaches stderr in each format (stderr redirected to a file for the check).
    char path[] = "/tmp/possync-log-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    REQUIRE(dup2(fd, STDERR_FILENO) >= 0);
    log::setStderr(true);
    logCategoryTest().setLevel(log::Level::Info);
    log::setStderrFormat(log::StderrFormat::Journal);
    LOG(Test, Warning) << "to the journal";
    log::setStderrFormat(log::StderrFormat::Plain);
    LOG(Test, Info) << "to a file";
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    log::setStderr(false);
    FILE* f = fopen(path, "r");
    REQUIRE(f);
    char buf[256] = {};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    close(fd);
    unlink(path);
    std::string out(buf, n);
    CHECK(out.rfind("<4>Test: to the journal\n", 0) == 0);
    CHECK(out.find(" info Test: to a file\n") != std::string::npos);
}

namespace {
POSSYNC_LOG_CATEGORY(NeverLogged)
}

TEST_CASE("a category exists from the start, before it logs anything, and is listed once") {
    int found = 0;
    for (log::Category* c : log::categories())
        if (std::string(c->name()) == "NeverLogged") ++found;
    CHECK(found == 1);
    CHECK(logCategoryNeverLogged().level() == log::Level::Info);
}
