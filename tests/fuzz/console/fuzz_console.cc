// Fuzz target: the console (line editor + interpreter + session) fed with arbitrary bytes.
//
// The input is a control byte followed by what a terminal or a socket client sends. The
// control byte picks the session mode (serial Terminal or socket Script), the size of the
// reads the bytes arrive in, and whether the line is hung up half way. The interpreter runs
// on the FakeBackend of the console unit tests (fixed tables, status, peers).
//
// A second LineEditor with a checking handler sees the same bytes and asserts its contract:
// the partly typed line never exceeds maxLine, and every line it hands over does not either
// and holds only printable ASCII.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "log/log.h"

#include "console/interpreter.h"
#include "console/line_editor.h"
#include "console/session.h"
#include "fake_backend.h"
#include "fuzz_target.h"

using namespace possync;
using namespace possync::console;

namespace {

constexpr size_t kMaxLine = 64;

#define FUZZ_CHECK(cond, what)                                           \
    do {                                                                 \
        if (!(cond)) {                                                   \
            std::fprintf(stderr, "fuzz_console: invariant: %s\n", what); \
            std::abort();                                                \
        }                                                                \
    } while (0)

class CheckingHandler final : public LineEditor::Handler {
public:
    void write(std::string_view bytes) override { written += bytes.size(); }
    void onLine(std::string_view line) override {
        FUZZ_CHECK(line.size() <= kMaxLine, "a line longer than maxLine");
        for (unsigned char c : line) FUZZ_CHECK(c >= 0x20 && c < 0x7f, "a non-printable byte in a line");
    }
    void onBadLine(std::string_view reason) override {
        FUZZ_CHECK(!reason.empty(), "a bad line without a reason");
    }
    void onEndOfInput() override { ended = true; }
    size_t written = 0;
    bool ended = false;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    log::setStderr(false);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    static constexpr size_t kReadSizes[8] = {1, 2, 3, 5, 16, 100, 1000, SIZE_MAX};
    const SessionMode mode = (data[0] & 1) ? SessionMode::Script : SessionMode::Terminal;
    const size_t readSize = kReadSizes[(data[0] >> 1) & 7];
    const bool hangUp = (data[0] >> 4) & 1;
    std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

    test::FakeBackend backend;
    Interpreter interpreter(backend);
    std::string out;
    bool ended = false;
    Session session(
        interpreter, mode, [&](std::string_view b) { out.append(b); }, [&] { ended = true; }, kMaxLine);
    session.start();

    CheckingHandler handler;
    LineEditor editor(LineEditor::Options{.echo = mode == SessionMode::Terminal,
                                          .prompt = mode == SessionMode::Terminal ? "> " : "",
                                          .eol = mode == SessionMode::Terminal ? "\r\n" : "\n",
                                          .maxLine = kMaxLine,
                                          .endOnCtrlD = mode == SessionMode::Script},
                      handler);
    editor.start();

    for (size_t off = 0; off < input.size() && !ended;) {
        std::string_view piece = input.substr(off, readSize);
        session.feed(piece);
        editor.feed(piece);
        FUZZ_CHECK(editor.pending().size() <= kMaxLine, "the pending line grew past maxLine");
        off += piece.size();
        if (hangUp && off >= input.size() / 2 && off - piece.size() < input.size() / 2) {
            session.hangUp();
            editor.reset();
            FUZZ_CHECK(editor.pending().empty(), "reset kept a line");
        }
    }
    // Each command answers once; an answer is bounded (scan and log are limited).
    FUZZ_CHECK(session.commands() <= input.size(), "more commands than bytes");
    return 0;
}
