// Test helpers for store tests: a temporary data directory removed at the end of the test.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "store/store.h"

namespace possync::test {

class TempDir final {
public:
    TempDir() {
        char tmpl[] = "/tmp/possync-test-XXXXXX";
        char* p = mkdtemp(tmpl);
        REQUIRE(p != nullptr);
        path_ = p;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string sub(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

inline std::unique_ptr<store::Store> openStore(const std::string& dir, store::StoreOptions o = {}) {
    o.noSync = true;
    auto s = store::Store::open(dir, o);
    REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
    return std::move(s).value();
}

#define REQUIRE_OK(expr)                                                          \
    do {                                                                          \
        const auto& r_ = (expr);                                                  \
        REQUIRE_MESSAGE(r_.ok(), (r_.ok() ? std::string() : r_.error().message)); \
    } while (0)

}  // namespace possync::test
