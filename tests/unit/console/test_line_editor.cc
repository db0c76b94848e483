// LineEditor byte for byte: echo, prompt, backspace, CR/LF/CRLF, Ctrl-C, Ctrl-D, editing keys,
// history, completion, escape
// sequences, overlong lines and binary noise.
#include <doctest/doctest.h>

#include <random>

#include "console/line_editor.h"

using namespace possync::console;

namespace {

// Records everything in one transcript: written bytes as they are, events in <...>.
class Recorder final : public LineEditor::Handler {
public:
    void write(std::string_view bytes) override { out.append(bytes); }
    void onLine(std::string_view line) override {
        out += "<" + std::string(line) + ">";
        lines.emplace_back(line);
    }
    void onBadLine(std::string_view reason) override { out += "<bad:" + std::string(reason) + ">"; }
    void onEndOfInput() override { out += "<end>"; }
    std::vector<std::string> complete(std::string_view before) override {
        completedBefore = std::string(before);
        return words;
    }

    std::string out;
    std::vector<std::string> lines;
    std::vector<std::string> words;  // what complete() offers
    std::string completedBefore;
};

LineEditor::Options small(size_t maxLine) {
    LineEditor::Options o;
    o.maxLine = maxLine;
    return o;
}

const std::string kTooLong8 = "<bad:line too long (more than 8 bytes), ignored>";
const std::string kNotText =
    "<bad:line contains bytes that are not text, ignored (type binary keys as 0x-hex)>";

}  // namespace

TEST_CASE("prompt, echo and one line per CR, LF or CRLF") {
    Recorder r;
    LineEditor ed({}, r);
    ed.start();
    CHECK(r.out == "possync> ");
    r.out.clear();
    ed.feed("ab\r");
    CHECK(r.out == "ab\r\n<ab>possync> ");
    r.out.clear();
    ed.feed("cd\n");
    CHECK(r.out == "cd\r\n<cd>possync> ");
    r.out.clear();
    ed.feed("ef\r\n");
    CHECK(r.out == "ef\r\n<ef>possync> ");
    r.out.clear();
    // CRLF split across two reads still ends one line.
    ed.feed("gh\r");
    ed.feed("\nij\n");
    CHECK(r.out == "gh\r\n<gh>possync> ij\r\n<ij>possync> ");
    CHECK(r.lines == std::vector<std::string>{"ab", "cd", "ef", "gh", "ij"});
    r.out.clear();
    // LF LF and CR CR are two lines each; an empty line is a line.
    ed.feed("\n\n\r\r");
    CHECK(r.out == "\r\n<>possync> \r\n<>possync> \r\n<>possync> \r\n<>possync> ");
    CHECK(ed.lines() == 9);
    CHECK(ed.badLines() == 0);
}

TEST_CASE("backspace and DEL erase; tab is a space") {
    Recorder r;
    LineEditor ed({}, r);
    ed.feed(
        "stx\x08"
        "a\x7f"
        "atus\r");
    CHECK(r.out == "stx\b \ba\b \batus\r\n<status>possync> ");
    r.out.clear();
    ed.feed(
        "\x08\x7f"
        "a\tb\r");  // erasing an empty line echoes nothing
    CHECK(r.out == "a b\r\n<a b>possync> ");
}

TEST_CASE("Ctrl-C drops the line; Ctrl-D ends input only on an empty line") {
    Recorder r;
    LineEditor ed({}, r);
    ed.feed("resy\x03");
    CHECK(r.out == "resy^C\r\npossync> ");
    CHECK(ed.pending().empty());
    r.out.clear();
    ed.feed("ab\x04\r");
    CHECK(r.out == "ab\r\n<ab>possync> ");
    r.out.clear();
    ed.feed("\x04status\r");
    CHECK(r.out == "<end>");  // nothing after the end is looked at
    ed.feed("more\r");
    CHECK(r.out == "<end>");
}

TEST_CASE("on a terminal (endOnCtrlD off) Ctrl-D is ignored and the console keeps answering") {
    Recorder r;
    LineEditor::Options o;
    o.endOnCtrlD = false;
    LineEditor ed(o, r);
    ed.feed("\x04version\r");
    CHECK(r.out == "version\r\n<version>possync> ");
    r.out.clear();
    ed.feed(
        "\x04\x04st\x04"
        "atus\r");
    CHECK(r.out == "status\r\n<status>possync> ");
}

TEST_CASE("escape sequences of arrow and function keys are swallowed") {
    Recorder r;
    LineEditor ed({}, r);
    ed.feed("st\x1b[Aat\x1b[1;5Cus\x1bOP\x1b[15~\r");
    CHECK(r.out == "status\r\n<status>possync> ");
    r.out.clear();
    // An escape sequence that never ends is noise: after 16 bytes the rest is line text
    // again (and the line is reported, not run).
    ed.feed("x\x1b[" + std::string(40, '1') + "\r");
    CHECK(r.out == "x" + std::string(27, '1') + "\r\n" + kNotText + "possync> ");
}

TEST_CASE("a line over the limit is dropped with one error when it ends") {
    Recorder r;
    LineEditor ed(small(8), r);
    ed.feed("12345678\r");
    CHECK(r.out == "12345678\r\n<12345678>possync> ");
    r.out.clear();
    ed.feed(
        "123456789abc\x7f"
        "def");
    CHECK(r.out == "12345678");  // nothing past the limit is echoed or kept
    CHECK(ed.pending().empty());
    ed.feed("\r\n");
    CHECK(r.out == "12345678\r\n" + kTooLong8 + "possync> ");
    r.out.clear();
    ed.feed("ok\r");
    CHECK(r.out == "ok\r\n<ok>possync> ");
    CHECK(ed.badLines() == 1);

    // Ctrl-C also clears the overflow.
    r.out.clear();
    ed.feed(std::string(20, 'x') + "\x03" + "a\r");
    CHECK(r.out == std::string(8, 'x') + "^C\r\npossync> a\r\n<a>possync> ");
}

TEST_CASE("non-text bytes spoil the line, which is reported, not run") {
    Recorder r;
    LineEditor ed({}, r);
    ed.feed(std::string("sta\0tus\xff\x02\r", 10));
    CHECK(r.out == "status\r\n" + kNotText + "possync> ");
    CHECK(r.lines.empty());
    r.out.clear();
    ed.feed("status\r");
    CHECK(r.out == "status\r\n<status>possync> ");
}

TEST_CASE("random binary noise never grows memory and the editor recovers") {
    Recorder r;
    LineEditor ed({}, r);
    std::mt19937 rng(1234);
    std::string noise(64 * 1024, '\0');
    for (char& c : noise) c = static_cast<char>(rng());
    // Strip Ctrl-D so the noise cannot end the input.
    for (char& c : noise)
        if (c == '\x04') c = 'x';
    ed.feed(noise);
    CHECK(ed.pending().size() <= 512);
    ed.feed("\x03");
    r.out.clear();
    r.lines.clear();
    ed.feed("version\r");
    CHECK(r.out == "version\r\n<version>possync> ");
}

TEST_CASE("without echo nothing is written but lines and errors still come") {
    Recorder r;
    LineEditor::Options o;
    o.echo = false;
    o.prompt.clear();
    o.eol = "\n";
    o.maxLine = 4;
    LineEditor ed(o, r);
    ed.start();
    ed.feed(
        "ab\x08"
        "c\r\nlonger\n\x03x\n");
    CHECK(r.out == "<ac><bad:line too long (more than 4 bytes), ignored><x>");
    ed.reset();
    ed.feed("half");
    ed.reset();
    ed.feed("y\n");
    CHECK(r.lines == std::vector<std::string>{"ac", "x", "y"});
}

TEST_CASE("Left/Right move the cursor; typing and backspace in the middle redraw the rest") {
    Recorder r;
    LineEditor ed({}, r);
    ed.feed("stts");
    r.out.clear();
    ed.feed("\x1b[D\x1b[D");  // Left twice: between "st" and "ts"
    CHECK(r.out == "\b\b");
    CHECK(ed.cursor() == 2);
    r.out.clear();
    ed.feed("a");  // insert: "a", the rest, back over the rest
    CHECK(r.out == "ats\b\b");
    CHECK(ed.pending() == "stats");
    r.out.clear();
    ed.feed("\x1b[C\x1b[C\x1b[C");  // Right: redraws what it passes; stops at the end
    CHECK(r.out == "ts");
    CHECK(ed.cursor() == 5);
    ed.feed("\x1b[D\x1b[D");
    r.out.clear();
    ed.feed("\x7f");  // erase the 'a' before "ts": back, the rest, a space, back again
    CHECK(r.out == "\bts \b\b\b");
    CHECK(ed.pending() == "stts");
    r.out.clear();
    ed.feed("\x1b[3~");  // Delete under the cursor (the first 't' of "ts")
    CHECK(ed.pending() == "sts");
    ed.feed("\r");
    CHECK(r.lines.back() == "sts");
}

TEST_CASE("Home/End, Ctrl-A/Ctrl-E, Ctrl-U and Ctrl-W") {
    Recorder r;
    LineEditor ed({}, r);
    ed.feed("get orders burger");
    r.out.clear();
    ed.feed("\x1b[H");
    CHECK(r.out == std::string(17, '\b'));
    CHECK(ed.cursor() == 0);
    r.out.clear();
    ed.feed("\x1b[F");
    CHECK(r.out == "get orders burger");
    ed.feed("\x01");
    CHECK(ed.cursor() == 0);
    ed.feed("\x05");
    CHECK(ed.cursor() == 17);
    r.out.clear();
    ed.feed("\x17");  // Ctrl-W: the word before the cursor
    CHECK(ed.pending() == "get orders ");
    CHECK(r.out == std::string(6, '\b') + std::string(6, ' ') + std::string(6, '\b'));
    ed.feed("\x17");  // spaces, then the word
    CHECK(ed.pending() == "get ");
    r.out.clear();
    ed.feed("\x15");  // Ctrl-U: the whole line
    CHECK(ed.pending().empty());
    CHECK(r.out == std::string(4, '\b') + std::string(4, ' ') + std::string(4, '\b'));
    ed.feed("version\r");
    CHECK(r.lines.back() == "version");
}

TEST_CASE("Ctrl-L clears the screen and redraws the prompt and the line, cursor in place") {
    Recorder r;
    LineEditor ed({}, r);
    ed.feed("status\x1b[D");
    r.out.clear();
    ed.feed("\x0c");
    CHECK(r.out == "\x1b[H\x1b[2Jpossync> status\b");
    CHECK(ed.pending() == "status");
}

TEST_CASE("Up/Down walk the last lines run; the line being typed comes back after the newest") {
    Recorder r;
    LineEditor ed({}, r);
    ed.feed("status\rpeers\rpeers\r\rbad\x02\r");  // a repeat, an empty line, a spoiled line
    CHECK(ed.history() == std::vector<std::string>{"status", "peers"});
    ed.feed("ta");
    r.out.clear();
    ed.feed("\x1b[A");  // Up: "peers" replaces "ta"
    CHECK(ed.pending() == "peers");
    CHECK(r.out == "\b\bpeers");
    ed.feed("\x1b[A\x1b[A");  // stops at the oldest
    CHECK(ed.pending() == "status");
    r.out.clear();
    ed.feed("\x1bOB");  // Down (SS3 form): "peers", shorter: spaces over the old end
    CHECK(ed.pending() == "peers");
    CHECK(r.out == std::string(6, '\b') + "peers \b");
    ed.feed("\x1b[B");  // past the newest: the draft again
    CHECK(ed.pending() == "ta");
    ed.feed("\x1b[B");
    CHECK(ed.pending() == "ta");
    ed.feed("\x1b[A\r");
    CHECK(r.lines.back() == "peers");
    for (int i = 0; i < 40; ++i) ed.feed("cmd" + std::to_string(i) + "\r");
    CHECK(ed.history().size() == LineEditor::kHistory);
    CHECK(ed.history().back() == "cmd39");
}

TEST_CASE("tab completes from the handler: one candidate, a common start, a list, or a space") {
    Recorder r;
    LineEditor ed({}, r);
    r.words = {"status", "stats", "scan"};
    ed.feed("sta\t");  // "status" and "stats" share "stat"
    CHECK(ed.pending() == "stat");
    CHECK(r.completedBefore == "sta");
    r.out.clear();
    ed.feed("\t");  // nothing more in common: the candidates, then the line again
    CHECK(r.out == "\r\nstatus  stats\r\npossync> stat");
    ed.feed("u\t");
    CHECK(ed.pending() == "status ");
    ed.feed("\x15");
    r.words = {"orders"};
    ed.feed("get or\t");
    CHECK(ed.pending() == "get orders ");
    CHECK(r.completedBefore == "get or");
    ed.feed("\x15");
    r.words = {};
    ed.feed("a\tb\r");  // no candidates: a tab is a space
    CHECK(r.lines.back() == "a b");
}

TEST_CASE("a lone Esc before a key drops only the Esc") {
    Recorder r;
    LineEditor ed({}, r);
    ed.feed(
        "st\x1b"
        "atus\r");
    CHECK(r.lines.back() == "status");
}
