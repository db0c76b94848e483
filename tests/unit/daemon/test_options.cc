// The config file's values: each TOML type maps to the option's text form, and a value of the
// wrong type or out of range is refused with a reason, never converted (a float given for an
// integer option was converted with undefined behaviour: tests/fuzz/config found it).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "daemon/options.h"

using namespace possync;
using namespace possync::daemon;

namespace {

Status load(const std::string& text, Options& o) {
    return loadConfigText(text, "test.toml", o);
}

}  // namespace

TEST_CASE("integers, booleans, strings and lists are taken") {
    Options o;
    REQUIRE(load("window = 32\nsync = false\nstore = \"s1\"\ntables = [\"menu\", \"orders\"]\n", o).ok());
    CHECK(o.window == 32);
    CHECK_FALSE(o.sync);
    CHECK(o.store == "s1");
    Options p;
    REQUIRE(load("sync = true\n", p).ok());
    CHECK(p.sync);
}

TEST_CASE("a float, a huge float or a negative number for an integer option is refused") {
    for (const char* text :
         {"window = 1.5\n", "window = +99e197\n", "window = -3\n", "window = inf\n", "window = nan\n"}) {
        CAPTURE(text);
        Options o;
        uint64_t before = o.window;
        auto r = load(text, o);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("window") != std::string::npos);
        CHECK(o.window == before);
    }
}

namespace {

Result<ParseOutcome> parse(std::vector<std::string> args, Options& o) {
    std::vector<char*> argv{const_cast<char*>("possyncd")};
    for (auto& a : args) argv.push_back(a.data());
    return parseOptions(static_cast<int>(argv.size()), argv.data(), o);
}

}  // namespace

TEST_CASE("failover: a slave takes --listen (its address once promoted), a master --master") {
    Options slave;
    REQUIRE(parse({"--role", "slave", "--data", "d", "--store", "s", "--master", "127.0.0.1:7000"}, slave));
    CHECK_FALSE(slave.listenSet);  // the default address is no reason to allow promote
    CHECK(validate(slave).ok());
    REQUIRE(parse({"--listen", "127.0.0.1:7701"}, slave));
    CHECK(slave.listenSet);
    CHECK(slave.listen == "127.0.0.1:7701");
    CHECK(validate(slave).ok());
    Options bad = slave;
    REQUIRE(parse({"--listen", "nowhere"}, bad));
    auto r = validate(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("--listen") == 0);

    Options fromFile;
    REQUIRE(load("listen = \"127.0.0.1:0\"\n", fromFile).ok());
    CHECK(fromFile.listenSet);

    Options master;
    REQUIRE(parse({"--role", "master", "--data", "d", "--store", "s", "--listen", "127.0.0.1:0", "--master",
                   "127.0.0.1:7000"},
                  master));
    CHECK(validate(master).ok());  // used only once the data directory makes it a slave
    REQUIRE(parse({"--master", "127.0.0.1:notaport"}, master));
    r = validate(master);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("--master") == 0);
}

TEST_CASE("failover: --auto-promote-after is off by default, bounded, and needs --listen on a slave") {
    Options slave;
    REQUIRE(parse({"--role", "slave", "--data", "d", "--store", "s", "--master", "127.0.0.1:7000"}, slave));
    CHECK(slave.autoPromoteAfterS == 0);
    REQUIRE(parse({"--auto-promote-after", "30"}, slave));
    CHECK(slave.autoPromoteAfterS == 30);
    auto r = validate(slave);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("--auto-promote-after needs --listen") == 0);
    REQUIRE(parse({"--listen", "127.0.0.1:7701"}, slave));
    CHECK(validate(slave).ok());
    Options bad = slave;
    CHECK_FALSE(parse({"--auto-promote-after", "-1"}, bad).ok());
    CHECK_FALSE(parse({"--auto-promote-after", "86401"}, bad).ok());
    Options fromFile;
    REQUIRE(load("auto_promote_after = 10\n", fromFile).ok());
    CHECK(fromFile.autoPromoteAfterS == 10);
}

TEST_CASE("--check-config refuses what start would: table lists, serial speeds, and the paths named") {
    Options o;
    REQUIRE(parse({"--role", "master", "--data", "d", "--store", "s"}, o));
    CHECK(validate(o).ok());
    for (const char* bad : {"menu,,orders", "possync.log", "menu,possync.meta", ","}) {
        CAPTURE(bad);
        Options t = o;
        REQUIRE(parse({"--tables", bad}, t));
        auto r = validate(t);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("--tables: ") == 0);
    }
    Options baud = o;
    REQUIRE(parse({"--baud", "1234"}, baud));
    auto b = validate(baud);
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().message.find("--baud 1234 is not a standard serial speed (1200, ") == 0);

    char tmpl[] = "/tmp/possync-options-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    const std::string dir = tmpl, file = dir + "/file";
    std::FILE* f = std::fopen(file.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fclose(f);
    Options env = o;
    env.data = dir + "/new";  // missing: start makes it
    CHECK(checkEnvironment(env).ok());
    env.data = dir;
    env.serial = "/dev/null";  // a character device
    env.console = dir + "/console.sock";
    CHECK(checkEnvironment(env).ok());
    struct Case {
        std::string data, serial, console, want;
    };
    for (const Case& c :
         {Case{file, "", "", "--data " + file + " is not a directory"},
          Case{dir, dir + "/ttyNOPE", "", "--serial " + dir + "/ttyNOPE: No such file or directory"},
          Case{dir, file, "", "--serial " + file + " is not a serial port"},
          Case{dir, "", dir + "/none/c.sock", "--console " + dir + "/none/c.sock: no such directory"}}) {
        CAPTURE(c.want);
        Options e = o;
        e.data = c.data;
        e.serial = c.serial;
        e.console = c.console;
        auto r = checkEnvironment(e);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find(c.want) == 0);
    }
    std::remove(file.c_str());
    ::rmdir(dir.c_str());
}

TEST_CASE("a reload parses the command line and the config file again; the command line still wins") {
    char tmpl[] = "/tmp/possync-reload-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    const std::string conf = std::string(tmpl) + "/possyncd.toml";
    auto write = [&](const char* text) {
        std::FILE* f = std::fopen(conf.c_str(), "w");
        REQUIRE(f != nullptr);
        std::fputs(text, f);
        std::fclose(f);
    };
    write("log_level = \"info\"\nwindow = 64\ntimeout_ms = 4000\n");
    Options running;
    REQUIRE(
        parse({"--role", "master", "--data", "d", "--store", "s", "--config", conf, "--timeout-ms", "3000"},
              running));
    CHECK(running.timeoutMs == 3000);
    auto same = reparse(running);
    REQUIRE(same.ok());
    CHECK(changedOptions(running, *same).empty());
    write("log_level = \"debug\"\nwindow = 16\ntimeout_ms = 9000\n");
    auto fresh = reparse(running);
    REQUIRE(fresh.ok());
    CHECK(changedOptions(running, *fresh) == std::vector<std::string>{"log-level", "window"});
    CHECK(fresh->timeoutMs == 3000);
    write("log_level = \"debug\nnot toml\n");
    CHECK_FALSE(reparse(running).ok());
    std::remove(conf.c_str());
    ::rmdir(tmpl);
}

TEST_CASE("--print-default-config writes the options given beside it as set: the package's file") {
    // The packaged possyncd.toml (tools/dist/meson.build) names the data directory and the console
    // socket, so the unit needs no option of its own that would override the file (issue 15).
    std::vector<std::string> words = {"possyncd",
                                      "--data",
                                      "/var/lib/possync",
                                      "--console",
                                      "/run/possync/console.sock",
                                      "--print-default-config"};
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    Options given;
    auto outcome = parseOptions(static_cast<int>(argv.size()), argv.data(), given);
    REQUIRE(outcome.ok());
    CHECK(*outcome == ParseOutcome::PrintConfig);
    const std::string text = defaultConfigText(given);
    CHECK(text.find("\ndata = \"/var/lib/possync\"\n") != std::string::npos);
    CHECK(text.find("\nconsole = \"/run/possync/console.sock\"\n") != std::string::npos);
    CHECK(text.find("\n# role = ") != std::string::npos);  // still for the installer to set
    Options back;
    REQUIRE(load(text, back).ok());
    CHECK(back.data == "/var/lib/possync");
    CHECK(back.console == "/run/possync/console.sock");
    // Plain --print-default-config: the data directory stays commented out.
    CHECK(defaultConfigText().find("\n# data = ") != std::string::npos);
}
