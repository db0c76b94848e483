// scenario_writer's parts shared by its files: the command line, failing with a message, pacing
// commits. scenario_writer.cc has the modes but `orders`/`check-orders` (scenario_orders.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "store/store.h"

namespace possync::scenario {

struct Args {
    std::string command;
    std::map<std::string, std::string> options;
};

// Prints "scenario_writer: WHAT" to stderr; returns the exit status 1.
int fail(const std::string& what);
// Option --NAME as a number: the fallback when absent, nullopt when it is no number.
std::optional<uint64_t> number(const Args& a, const std::string& name, std::optional<uint64_t> fallback);

// --pause-ms P --every K: spreads the commits over time, so they stream while they are written.
class Pacer final {
public:
    static std::optional<Pacer> fromArgs(const Args& a) {
        auto pauseMs = number(a, "pause-ms", 0);
        auto every = number(a, "every", 1);
        if (!pauseMs || !every || *every == 0) return std::nullopt;
        return Pacer(*pauseMs, *every);
    }
    void committed() {
        if (pauseMs_ > 0 && ++commits_ % every_ == 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(pauseMs_));
    }

private:
    Pacer(uint64_t pauseMs, uint64_t every) : pauseMs_(pauseMs), every_(every) {}
    uint64_t pauseMs_, every_, commits_ = 0;
};

// `orders` and `check-orders` (scenario_orders.cc, whose header comment gives their usage).
int runOrders(store::Store& s, const Args& a);
int runCheckOrders(store::Store& s, const Args& a);

}  // namespace possync::scenario
