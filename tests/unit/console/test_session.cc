// Session: the terminal and script conversations, byte for byte, without a transport.
#include <doctest/doctest.h>

#include "console/session.h"
#include "fake_backend.h"

using namespace possync;
using namespace possync::console;

TEST_CASE("a terminal session shows a banner and prompt, echoes, answers in CRLF") {
    test::FakeBackend backend;
    Interpreter in(backend);
    std::string out;
    int ends = 0;
    Session s(
        in, SessionMode::Terminal, [&](std::string_view b) { out.append(b); }, [&] { ++ends; });
    s.start();
    CHECK(out.find("possync console ") == 2);
    CHECK(out.size() > kPrompt.size());
    CHECK(out.substr(out.size() - kPrompt.size()) == kPrompt);
    out.clear();
    s.feed("get orders a1\r");
    CHECK(out == "get orders a1\r\ntable: orders\r\nkey: a1\r\nvalue: one\r\npossync> ");
    out.clear();
    s.feed("nope\r\n");
    CHECK(out == "nope\r\nerror: unknown command 'nope' (try help)\r\npossync> ");
    out.clear();
    s.feed("\r");
    CHECK(out == "\r\npossync> ");
    out.clear();
    s.feed("\x04");  // Ctrl-D does not end a terminal session
    CHECK(ends == 0);
    CHECK(out.empty());
    CHECK(s.commands() == 2);
    CHECK(s.errors() == 1);
}

TEST_CASE("a script session answers each line once, with an end marker and dot-stuffing") {
    test::FakeBackend backend;
    backend.data["orders"][".hidden"] = ".ok";
    Interpreter in(backend);
    std::string out;
    int ends = 0;
    Session s(
        in, SessionMode::Script, [&](std::string_view b) { out.append(b); }, [&] { ++ends; });
    s.start();
    CHECK(out.empty());
    s.feed("get orders a1\n");
    CHECK(out == "table: orders\nkey: a1\nvalue: one\n.ok\n");
    out.clear();
    s.feed("get orders zz\r\n");
    CHECK(out == "error: no key zz in table orders\n.error\n");
    out.clear();
    s.feed("\n");
    CHECK(out == ".ok\n");
    out.clear();
    s.feed("scan orders .\n");
    CHECK(out == "table: orders\nrows: 1\nmore: no\nkey      value\n..hidden  .ok\n.ok\n");
    out.clear();
    s.feed(std::string(600, 'x') + "\n");
    CHECK(out == "error: line too long (more than 512 bytes), ignored\n.error\n");
    out.clear();
    s.feed("stat");
    s.hangUp();  // the half line is forgotten
    s.feed("us\n");
    CHECK(out == "error: unknown command 'us' (try help)\n.error\n");
    out.clear();
    s.feed("\x04version\n");
    CHECK(ends == 1);
    CHECK(out.empty());
}

TEST_CASE("output goes out in pieces: echo as typed, each answer whole with its prompt") {
    test::FakeBackend backend;
    Interpreter in(backend);
    std::vector<std::string> pieces;
    Session s(in, SessionMode::Terminal, [&](std::string_view b) { pieces.emplace_back(b); }, {});
    s.feed("ve\x7fr\x02\rversion\r");
    REQUIRE(pieces.size() == 15);  // 6 for the bad line, 7 letters, CRLF, answer+prompt
    CHECK(pieces[0] == "v");
    CHECK(pieces[1] == "e");
    CHECK(pieces[2] == "\b \b");
    CHECK(pieces[3] == "r");
    CHECK(pieces[4] == "\r\n");
    CHECK(pieces[5] ==
          "error: line contains bytes that are not text, ignored (type binary keys as 0x-hex)\r\n"
          "possync> ");
    CHECK(pieces[6] == "v");
    CHECK(pieces[13] == "\r\n");
    CHECK(pieces[14].find("version: ") == 0);
    CHECK(pieces[14].substr(pieces[14].size() - kPrompt.size()) == kPrompt);

    pieces.clear();
    Session script(in, SessionMode::Script, [&](std::string_view b) { pieces.emplace_back(b); }, {});
    script.feed("version\nnope\n");
    REQUIRE(pieces.size() == 2);
    CHECK(pieces[0].find("version: ") == 0);
    CHECK(pieces[1] == "error: unknown command 'nope' (try help)\n.error\n");
}

TEST_CASE("an answer that comes later (promote off the loop): input typed meanwhile waits, in order") {
    test::FakeBackend backend;
    backend.deferNotes = true;
    backend.statusInfo.role = "slave";
    Interpreter in(backend);
    std::string out;
    Session s(
        in, SessionMode::Script, [&](std::string_view b) { out.append(b); }, [] {});
    s.start();
    s.feed("promote confirm\nget orders a1\n");
    CHECK(out.empty());  // nothing answered yet, and the get waits behind the promote
    CHECK(s.waiting());
    s.feed("get orders zz\n");
    CHECK(out.empty());
    REQUIRE(backend.deferred.size() == 1);
    backend.deferred[0]();
    CHECK(out ==
          "promote: promoted\n.ok\n"
          "table: orders\nkey: a1\nvalue: one\n.ok\n"
          "error: no key zz in table orders\n.error\n");
    CHECK_FALSE(s.waiting());
    CHECK(s.commands() == 3);
}

TEST_CASE("a terminal gets the later answer, then its prompt; typed bytes are echoed once it is in") {
    test::FakeBackend backend;
    backend.deferNotes = true;
    backend.statusInfo.role = "master";
    Interpreter in(backend);
    std::string out;
    Session s(
        in, SessionMode::Terminal, [&](std::string_view b) { out.append(b); }, [] {});
    s.start();
    out.clear();
    s.feed("rejoin\rver");
    CHECK(out == "rejoin\r\n");  // the echo of the line, no prompt yet
    out.clear();
    REQUIRE(backend.deferred.size() == 1);
    backend.deferred[0]();
    CHECK(out == "rejoin: exported 3 log entries to /d/x.tsv\r\npossync> ver");
    out.clear();
    s.feed("sion\r");
    CHECK(out.find("sion\r\nversion: ") == 0);
}

TEST_CASE("a session that ends before its later answer comes is not written to") {
    test::FakeBackend backend;
    backend.deferNotes = true;
    backend.statusInfo.role = "slave";
    Interpreter in(backend);
    std::string out;
    {
        Session s(
            in, SessionMode::Script, [&](std::string_view b) { out.append(b); }, [] {});
        s.feed("promote\n");
    }
    REQUIRE(backend.deferred.size() == 1);
    backend.deferred[0]();  // the session is gone: dropped
    CHECK(out.empty());
}
