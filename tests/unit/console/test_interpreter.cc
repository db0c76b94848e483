// Interpreter: every command against a fake backend, wrong arity, unknown commands,
// quoting, binary keys; and the tokenizer and text conventions underneath.
#include <doctest/doctest.h>

#include "log/log.h"

#include "console/format.h"
#include "console/interpreter.h"
#include "console/tokenizer.h"
#include "fake_backend.h"
#include "possync_config.h"

using namespace possync;
using namespace possync::console;
using possync::console::test::FakeBackend;

namespace {
POSSYNC_LOG_CATEGORY(ConsoleTest)

size_t countLines(const std::string& text) {
    size_t n = 0;
    for (char c : text) n += c == '\n';
    return n;
}
}  // namespace

TEST_CASE("tokenize splits words and honours quotes") {
    auto w = tokenize("  get  orders \"a b\"  'c \"d' e\\ f \"x\\\"y\\\\\" \"\" a\"b c\"d\t");
    REQUIRE(w.ok());
    CHECK(*w == std::vector<std::string>{"get", "orders", "a b", "c \"d", "e f", "x\"y\\", "", "ab cd"});
    CHECK(tokenize("").value().empty());
    CHECK(tokenize(" \t ").value().empty());
    CHECK(tokenize("get \"open").error().message == "unterminated quote");
    CHECK(tokenize("get 'open").error().message == "unterminated quote");
    CHECK(tokenize("get x\\").error().message == "backslash at end of line");
}

TEST_CASE("quoteWord and joinWords give back what tokenize splits") {
    std::vector<std::string> words = {"get", "t", "a b", "", "q\"uote", "back\\slash", "it's"};
    std::string line = joinWords(words);
    CHECK(line == "get t \"a b\" \"\" \"q\\\"uote\" \"back\\\\slash\" \"it's\"");
    CHECK(tokenize(line).value() == words);
}

TEST_CASE("bytes are shown as text or 0x-hex and typed back the same way") {
    CHECK(displayKey("a1") == "a1");
    CHECK(displayKey("a b") == "0x612062");
    CHECK(displayValue("a b") == "a b");
    CHECK(displayKey("") == "0x");
    CHECK(displayKey(std::string("\x00\xff", 2)) == "0x00ff");
    CHECK(displayKey("0x41") == "0x30783431");
    CHECK(parseBytesWord("0x30783431").value() == "0x41");
    CHECK(parseBytesWord("0x00FF").value() == std::string("\x00\xff", 2));
    CHECK(parseBytesWord("0x").value().empty());
    CHECK(parseBytesWord("plain").value() == "plain");
    CHECK(parseBytesWord("0x4g").error().message == "bad hex in '0x4g'");
    CHECK(parseBytesWord("0x123").error().message == "bad hex in '0x123'");
}

TEST_CASE("a table aligns columns and marks empty cells") {
    Table t({"name", "n"});
    t.addRow({"long-name", "1"});
    t.addRow({"x"});
    CHECK(t.render() ==
          "name       n\n"
          "long-name  1\n"
          "x          -\n");
    CHECK(Table({"a", "b"}).render() == "a  b\n");
}

TEST_CASE("status prints every field as key: value") {
    FakeBackend backend;
    Interpreter in(backend);
    Reply r = in.execute("status");
    CHECK(r.ok);
    CHECK(r.text ==
          "role: slave\n"
          "store: shop1\n"
          "device: till-2\n"
          "key: 4f1c9a20b7d3e865\n"
          "generation: 0123456789abcdef\n"
          "term: 0\n"
          "position: 41\n"
          "master_head: 42\n"
          "lag_changes: 1\n"
          "lag_ms: 15\n"
          "link: connected\n"
          "uptime_s: 3600\n"
          "discovery: avahi\n"
          "waiting: -\n"
          "failover: -\n"
          "trust: -\n");
    backend.statusInfo.masterHead.reset();
    backend.statusInfo.lagMs.reset();
    backend.statusInfo.waiting = "master generation changed: run accept-generation";
    r = in.execute("STATUS");
    CHECK(r.ok);
    CHECK(r.text.find("master_head: -\n") != std::string::npos);
    CHECK(r.text.find("lag_ms: -\n") != std::string::npos);
    CHECK(r.text.find("waiting: master generation changed: run accept-generation\n") != std::string::npos);
}

TEST_CASE("version, help and help COMMAND") {
    FakeBackend backend;
    Interpreter in(backend);
    Reply r = in.execute("version");
    CHECK(r.ok);
    CHECK(r.text.find("version: ") == 0);
    CHECK(r.text.find("\nprotocol: " + std::to_string(POSSYNC_PROTOCOL_VERSION) + "\nformat: 1\n") !=
          std::string::npos);

    r = in.execute("help");
    CHECK(r.ok);
    for (const char* cmd :
         {"help", "version", "status", "peers", "tables", "get TABLE KEY", "scan TABLE [PREFIX] [LIMIT]",
          "stats", "log [N]", "loglevel", "resync", "accept-generation", "discovery", "outbox", "clients",
          "promote [confirm]", "rejoin", "pair [list"})
        CHECK_MESSAGE(r.text.find(cmd) != std::string::npos, cmd);
    CHECK(countLines(r.text) == 18);

    r = in.execute("help get");
    CHECK(r.ok);
    CHECK(r.text == "usage: get TABLE KEY\nabout: the value under KEY (KEY as text or 0x-hex)\n");
    r = in.execute("help nope");
    CHECK_FALSE(r.ok);
    CHECK(r.text == "error: unknown command 'nope' (try help)\n");
}

TEST_CASE("peers and tables print tables") {
    FakeBackend backend;
    Interpreter in(backend);
    Reply r = in.execute("peers");
    CHECK(r.ok);
    CHECK(r.text == "address  device  position  lag_changes  lag_ms  state  heartbeat_ms  found_via\n");

    PeerInfo master;
    master.address = "10.0.0.1:7400";
    master.device = "till-1";
    master.position = 42;
    master.lagChanges = 1;
    master.lagMs = 15;
    master.state = "streaming";
    master.heartbeatAgoMs = 250;
    master.foundVia = "avahi";
    PeerInfo unknown;
    unknown.address = "10.0.0.9:7400";
    unknown.state = "down";
    backend.peerList = {master, unknown};
    r = in.execute("peers");
    CHECK(r.ok);
    CHECK(r.text ==
          "address        device  position  lag_changes  lag_ms  state      heartbeat_ms  found_via\n"
          "10.0.0.1:7400  till-1  42        1            15      streaming  250           avahi\n"
          "10.0.0.9:7400  -       -         -            -       down       -             -\n");

    r = in.execute("tables");
    CHECK(r.ok);
    CHECK(r.text ==
          "name    entries  watched  digest\n"
          "menu    0        no       00ff\n"
          "orders  4        yes      00ff\n");
}

TEST_CASE("get shows a value, takes 0x-hex keys and reports misses and bad tables") {
    FakeBackend backend;
    Interpreter in(backend);
    Reply r = in.execute("get orders a2");
    CHECK(r.ok);
    CHECK(r.text == "table: orders\nkey: a2\nvalue: two words\n");

    r = in.execute("get orders 0x00FF");
    CHECK(r.ok);
    CHECK(r.text == "table: orders\nkey: 0x00ff\nvalue: 0x0102\n");

    r = in.execute("get orders 0x6131");  // "a1" typed as hex
    CHECK(r.ok);
    CHECK(r.text == "table: orders\nkey: a1\nvalue: one\n");

    r = in.execute("get orders zz");
    CHECK_FALSE(r.ok);
    CHECK(r.text == "error: no key zz in table orders\n");
    r = in.execute("get \"no such\" a1");
    CHECK_FALSE(r.ok);
    CHECK(r.text == "error: no table 'no such'\n");
    r = in.execute("get orders 0xabc");
    CHECK_FALSE(r.ok);
    CHECK(r.text == "error: bad hex in '0xabc'\n");
}

TEST_CASE("scan lists a prefix up to a limit and says whether there is more") {
    FakeBackend backend;
    Interpreter in(backend);
    Reply r = in.execute("scan orders a");
    CHECK(r.ok);
    CHECK(r.text ==
          "table: orders\nrows: 2\nmore: no\n"
          "key  value\n"
          "a1   one\n"
          "a2   two words\n");
    CHECK(backend.lastScanLimit == Interpreter::kDefaultScan + 1);

    r = in.execute("scan orders \"\" 2");
    CHECK(r.ok);
    CHECK(r.text ==
          "table: orders\nrows: 2\nmore: yes\n"
          "key     value\n"
          "0x00ff  0x0102\n"
          "a1      one\n");
    CHECK(backend.lastScanLimit == 3);

    r = in.execute("scan orders");
    CHECK(r.ok);
    CHECK(r.text.find("rows: 4\nmore: no\n") != std::string::npos);

    r = in.execute("scan menu");
    CHECK(r.ok);
    CHECK(r.text == "table: menu\nrows: 0\nmore: no\nkey  value\n");

    r = in.execute("scan orders a 0");
    CHECK_FALSE(r.ok);
    CHECK(r.text == "error: LIMIT must be a number from 1 to 1000, not '0'\n");
    CHECK_FALSE(in.execute("scan orders a 1001").ok);
    CHECK_FALSE(in.execute("scan orders a -1").ok);
    CHECK(in.execute("scan nope").text == "error: no table 'nope'\n");
    CHECK(in.execute("scan orders 0xq").text == "error: bad hex in '0xq'\n");
}

TEST_CASE("stats prints the backend's counters in order") {
    FakeBackend backend;
    Interpreter in(backend);
    Reply r = in.execute("stats");
    CHECK(r.ok);
    CHECK(r.text == "frames_in: 10\nbytes_in: 2048\nerrors_protocol: 0\n");
}

TEST_CASE("log shows recent lines and loglevel shows and sets levels") {
    log::setStderr(false);
    log::setRingCapacity(100);
    FakeBackend backend;
    Interpreter in(backend);
    logCategoryConsoleTest().setLevel(log::Level::Info);
    LOG(ConsoleTest, Info) << "first";
    LOG(ConsoleTest, Warning) << "second\nline";
    Reply r = in.execute("log 2");
    CHECK(r.ok);
    REQUIRE(countLines(r.text) == 2);
    CHECK(r.text.find("info ConsoleTest: first\n") != std::string::npos);
    CHECK(r.text.find("warning ConsoleTest: second line\n") != std::string::npos);
    CHECK(in.execute("log").ok);
    CHECK(in.execute("log 0").text == "error: N must be a number from 1 to 1000, not '0'\n");
    CHECK_FALSE(in.execute("log many").ok);

    r = in.execute("loglevel");
    CHECK(r.ok);
    CHECK(r.text.find("category") == 0);
    CHECK(r.text.find("ConsoleTest  info") != std::string::npos);

    r = in.execute("loglevel consoletest debug");
    CHECK(r.ok);
    CHECK(r.text == "category     level\nConsoleTest  debug\n");
    CHECK(logCategoryConsoleTest().level() == log::Level::Debug);

    r = in.execute("loglevel ConsoleTest");
    CHECK(r.text == "category     level\nConsoleTest  debug\n");

    r = in.execute("loglevel WARNING");
    CHECK(r.ok);
    CHECK(logCategoryConsoleTest().level() == log::Level::Warning);
    CHECK(r.text.find("ConsoleTest  warning\n") != std::string::npos);

    r = in.execute("loglevel Nope debug");
    CHECK_FALSE(r.ok);
    CHECK(r.text.find("error: unknown log category 'Nope' (") == 0);
    CHECK(r.text.find("ConsoleTest") != std::string::npos);
    r = in.execute("loglevel ConsoleTest loud");
    CHECK(r.text == "error: unknown log level 'loud' (debug, info, warning, error)\n");
    CHECK(logCategoryConsoleTest().level() == log::Level::Warning);
    r = in.execute("loglevel loud");
    CHECK_FALSE(r.ok);
    CHECK(r.text.find("error: 'loud' is neither a level") == 0);
    log::setAllLevels(log::Level::Info);
}

TEST_CASE("resync and accept-generation pass the backend's answer through") {
    FakeBackend backend;
    Interpreter in(backend);
    Reply r = in.execute("resync");
    CHECK(r.ok);
    CHECK(r.text == "resync: full sync requested\n");
    CHECK(backend.resyncs == 1);

    r = in.execute("accept-generation");
    CHECK_FALSE(r.ok);
    CHECK(r.text == "error: accept-generation: not waiting for a new generation\n");
    backend.statusInfo.waiting = "master generation changed: run accept-generation";
    r = in.execute("accept-generation");
    CHECK(r.ok);
    CHECK(r.text == "accept-generation: generation accepted; full sync started\n");
    CHECK(backend.accepts == 1);

    backend.statusInfo.role = "master";
    r = in.execute("resync");
    CHECK_FALSE(r.ok);
    CHECK(r.text == "error: resync: this board is the master\n");
}

TEST_CASE("discovery lists what is seen, one line each") {
    FakeBackend backend;
    Interpreter in(backend);
    CHECK(in.execute("discovery").text == "entries: 0\n");
    backend.discoveryLines = {"till-1 10.0.0.1:7400 store=shop1 gen=0123 (selected)", "bad\nline"};
    CHECK(in.execute("discovery").text ==
          "entries: 2\ntill-1 10.0.0.1:7400 store=shop1 gen=0123 (selected)\nbad line\n");
}

TEST_CASE("outbox on a slave shows every fact, '-' for what is unknown") {
    FakeBackend backend;
    Interpreter in(backend);
    backend.outboxInfo.limit = 64u << 20;
    Reply r = in.execute("outbox");
    CHECK(r.ok);
    CHECK(r.text ==
          "count: 0\nbytes: 0\nlimit: 67108864\noldest_request: -\noldest_age_ms: -\nheld: 0\n"
          "next_request: 1\nlast_rejection: -\n");

    backend.outboxInfo =
        OutboxInfo{3, 612, 1000, 7, 2500, 1, 10, "request 6: condition failed:\nstock/apple"};
    r = in.execute("OUTBOX");
    CHECK(r.ok);
    // The reason stays on one line, so a script reads one fact per line.
    CHECK(r.text ==
          "count: 3\nbytes: 612\nlimit: 1000\noldest_request: 7\noldest_age_ms: 2500\nheld: 1\n"
          "next_request: 10\nlast_rejection: request 6: condition failed: stock/apple\n");

    CHECK(in.execute("help outbox").text.find("usage: outbox\n") == 0);
    CHECK(in.execute("outbox now").text == "error: usage: outbox\n");
}

TEST_CASE("outbox on a master is refused with the backend's reason") {
    FakeBackend backend;
    backend.statusInfo.role = "master";
    Interpreter in(backend);
    Reply r = in.execute("outbox");
    CHECK_FALSE(r.ok);
    CHECK(r.text == "error: outbox is for slaves; this board is the master\n");
}

TEST_CASE("clients lists one row per writing board") {
    FakeBackend backend;
    backend.statusInfo.role = "master";
    Interpreter in(backend);
    Reply r = in.execute("clients");
    CHECK(r.ok);
    CHECK(r.text == "clients: 0\ndevice  last_request  last_seq  applied  rejected\n");

    backend.clientList = {{"till-2", 12, 340, 11, 1}, {"till 3", 1, 0, 0, 1}};
    r = in.execute("clients");
    CHECK(r.ok);
    // A device id with a space is shown as hex, so every row splits into five columns.
    CHECK(r.text ==
          "clients: 2\n"
          "device          last_request  last_seq  applied  rejected\n"
          "till-2          12            340       11       1\n"
          "0x74696c6c2033  1             0         0        1\n");

    backend.clientsError = makeError(Errc::Io, "disk read failed");
    r = in.execute("clients");
    CHECK_FALSE(r.ok);
    CHECK(r.text == "error: disk read failed\n");
    CHECK(in.execute("clients x").text == "error: usage: clients\n");
}

TEST_CASE("wrong arity, unknown commands, bad quoting and blank lines") {
    FakeBackend backend;
    Interpreter in(backend);
    CHECK(in.execute("get orders").text == "error: usage: get TABLE KEY\n");
    CHECK(in.execute("get a b c").text == "error: usage: get TABLE KEY\n");
    CHECK(in.execute("status now").text == "error: usage: status\n");
    CHECK(in.execute("scan").text == "error: usage: scan TABLE [PREFIX] [LIMIT]\n");
    CHECK(in.execute("scan a b 1 2").text == "error: usage: scan TABLE [PREFIX] [LIMIT]\n");
    CHECK(in.execute("loglevel a b c").text == "error: usage: loglevel [CATEGORY] [LEVEL]\n");
    CHECK(in.execute("help a b").text == "error: usage: help [COMMAND]\n");
    CHECK(in.execute("version 1").text == "error: usage: version\n");
    CHECK(in.execute("peers x").text == "error: usage: peers\n");
    CHECK(in.execute("tables x").text == "error: usage: tables\n");
    CHECK(in.execute("stats x").text == "error: usage: stats\n");
    CHECK(in.execute("log 1 2").text == "error: usage: log [N]\n");
    CHECK(in.execute("resync x").text == "error: usage: resync\n");
    CHECK(backend.resyncs == 0);
    CHECK(in.execute("accept-generation x").text == "error: usage: accept-generation\n");
    CHECK(in.execute("discovery x").text == "error: usage: discovery\n");

    Reply r = in.execute("frobnicate now");
    CHECK_FALSE(r.ok);
    CHECK(r.text == "error: unknown command 'frobnicate' (try help)\n");
    r = in.execute(std::string(100, 'x'));
    CHECK(r.text == "error: unknown command '" + std::string(40, 'x') + "...' (try help)\n");
    r = in.execute(std::string("\x01\x02", 2));
    CHECK(r.text == "error: unknown command '0x0102' (try help)\n");
    r = in.execute("get \"orders a1");
    CHECK(r.text == "error: unterminated quote\n");

    r = in.execute("");
    CHECK(r.ok);
    CHECK(r.text.empty());
    r = in.execute("   ");
    CHECK(r.ok);
    CHECK(r.text.empty());
}

TEST_CASE("promote [confirm] and rejoin pass through to the backend; anything else is a usage error") {
    FakeBackend backend;
    Interpreter in(backend);
    Reply r = in.execute("promote");
    CHECK(r.ok);
    CHECK(r.text == "promote: promoted\n");
    backend.masterAlive = true;
    r = in.execute("promote");
    CHECK_FALSE(r.ok);
    CHECK(r.text == "error: a master may still be alive; if it is gone: promote confirm\n");
    r = in.execute("PROMOTE Confirm");
    CHECK(r.ok);
    CHECK(backend.promoteCalls == std::vector<bool>{false, false, true});
    CHECK(in.execute("promote now").text == "error: usage: promote [confirm]\n");
    CHECK(in.execute("promote confirm twice").text == "error: usage: promote [confirm]\n");
    CHECK(backend.promoteCalls.size() == 3);  // a usage error never reaches the backend

    r = in.execute("rejoin");
    CHECK_FALSE(r.ok);
    CHECK(r.text == "error: rejoin is for a master\n");
    backend.statusInfo.role = "master";
    r = in.execute("rejoin");
    CHECK(r.ok);
    CHECK(r.text == "rejoin: exported 3 log entries to /d/x.tsv\n");
    CHECK(in.execute("rejoin now").text == "error: usage: rejoin\n");
    CHECK(backend.rejoins == 2);
    backend.statusInfo.role = "master";
    r = in.execute("promote");
    CHECK_FALSE(r.ok);
    CHECK(r.text == "error: promote is for slaves\n");
}

TEST_CASE("pair lists the trust set and passes verbs with their argument to the backend") {
    FakeBackend backend;
    Interpreter in(backend);
    backend.pairInfo->summary = "2 member(s); pairing window closed";
    backend.pairInfo->entries.push_back(PairEntry{"member", "till-1", "0123456789abcdef", "self", 61000});
    backend.pairInfo->entries.push_back(
        PairEntry{"pending", "kds-2", "fedcba9876543210", "from 10.0.0.7:4242, code 123456", 5000});
    for (const char* cmd : {"pair", "pair list", "PAIR LIST"}) {
        Reply r = in.execute(cmd);
        CHECK(r.ok);
        CHECK(r.text.find("trust: 2 member(s); pairing window closed\n") == 0);
        CHECK(r.text.find("member   till-1  0123456789abcdef  61") != std::string::npos);
        CHECK(r.text.find("code 123456") != std::string::npos);
    }
    // A slave refuses the verbs (the backend says so); a usage error never reaches it.
    Reply r = in.execute("pair accept kds-2");
    CHECK_FALSE(r.ok);
    CHECK(r.text == "error: pairing is settled on the master; this board is a slave\n");
    backend.statusInfo.role = "master";
    CHECK(in.execute("pair accept kds-2").text == "pair: accept kds-2\n");
    CHECK(in.execute("pair reject fedc").text == "pair: reject fedc\n");
    CHECK(in.execute("pair open 60").text == "pair: open 60\n");
    CHECK(in.execute("pair close").text == "pair: close \n");
    CHECK(in.execute("pair remove till-1").text == "pair: remove till-1\n");
    CHECK(in.execute("pair accept").text == "error: usage: pair accept WHO\n");
    CHECK(in.execute("pair open").text == "error: usage: pair open SECONDS\n");
    CHECK(in.execute("pair close now").text == "error: usage: pair close\n");
    CHECK(in.execute("pair list x").text == "error: usage: pair list\n");
    CHECK(in.execute("pair steal x").text.find("error: usage: pair [list") == 0);
    CHECK(backend.pairCalls.size() == 6);
    backend.pairInfo = makeError(Errc::Io, "cannot read the trust set");
    CHECK(in.execute("pair").text == "error: cannot read the trust set\n");
}

TEST_CASE("status, peers, tables and stats --json: the same facts as one line of JSON") {
    test::FakeBackend backend;
    Interpreter in(backend);
    Reply r = in.execute("status --json");
    REQUIRE(r.ok);
    CHECK(
        r.text ==
        "{\"role\": \"slave\", \"store\": \"shop1\", \"device\": \"till-2\", \"key\": \"4f1c9a20b7d3e865\", "
        "\"generation\": \"0123456789abcdef\", \"term\": 0, \"position\": 41, \"master_head\": 42, "
        "\"lag_changes\": 1, \"lag_ms\": 15, \"link\": \"connected\", \"uptime_s\": 3600, "
        "\"discovery\": \"avahi\", \"waiting\": null, \"failover\": null, \"trust\": null}\n");
    backend.peerList = {{"10.0.0.5:7700", "till 1", 7, 0, std::nullopt, "streaming", 120, "incoming"}};
    r = in.execute("PEERS --json");
    REQUIRE(r.ok);
    CHECK(
        r.text ==
        "[{\"address\": \"10.0.0.5:7700\", \"device\": \"till 1\", \"position\": 7, \"lag_changes\": 0, "
        "\"lag_ms\": null, \"state\": \"streaming\", \"heartbeat_ms\": 120, \"found_via\": \"incoming\"}]\n");
    r = in.execute("stats --json");
    REQUIRE(r.ok);
    CHECK(r.text.front() == '{');
    CHECK(r.text.back() == '\n');
    r = in.execute("tables --json");
    REQUIRE(r.ok);
    CHECK(r.text.front() == '[');
    CHECK(in.execute("get orders a1 --json").text == "error: usage: get TABLE KEY\n");  // no JSON form
    CHECK(in.execute("status --json extra").text == "error: usage: status\n");
    CHECK(in.execute("status").text.find("role: slave\n") == 0);  // and plain text again
}
