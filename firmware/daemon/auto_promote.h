// AutoPromoter: a designated slave promotes itself when its master has been gone for a while
// (--auto-promote-after SECONDS, off by default; DESIGN.md §10).
//
// Once a second it asks whether the board is linked to a master (a live link: streaming or in a
// FULL sync). When no master has been linked for the whole delay, counted from the last link or
// from the daemon's start, and nothing holds the board back, it runs the console's `promote
// confirm`: the same promotion, term and fencing as an operator's. What holds it back: a board
// that never completed a FULL sync (its data is not the store's), one waiting for the operator
// (another generation, divergence), one in a FULL sync, one restarting. A promotion that fails
// is logged and tried again on the next tick, its reason logged once per change.
//
// Designate one board per store: two boards promoting at once are settled by the term rule
// (the higher term, then the lower device id, wins and the other is fenced), but one of them
// then holds orders that must be rejoined.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "uv/loop.h"
#include "uv/timer.h"

namespace possync::daemon {

class AutoPromoter final {
public:
    struct Hooks {
        std::function<bool()> linked;             // a live link to a master right now
        std::function<std::string()> holdReason;  // why the board must not promote now ("" = nothing)
        // `promote confirm`: answers through the callback, at once or once the work is done.
        std::function<void(std::function<void(Result<std::string>)>)> promote;
    };

    // Starts ticking. `afterMs` > 0.
    static Result<std::unique_ptr<AutoPromoter>> create(uv::Loop& loop, uint64_t afterMs, Hooks hooks);
    ~AutoPromoter();
    AutoPromoter(const AutoPromoter&) = delete;
    AutoPromoter& operator=(const AutoPromoter&) = delete;

    // Milliseconds without a master so far (0 while linked), for the console.
    uint64_t unlinkedMs() const;

private:
    AutoPromoter(uv::Loop& loop, uint64_t afterMs, Hooks hooks);
    void tick();

    uv::Loop& loop_;
    uint64_t afterMs_;
    Hooks hooks_;
    uv::Owned<uv::Timer> timer_;
    uint64_t lastLinkedMs_;
    std::string lastNote_;  // the last hold or failure logged (each logged once)
    bool promoted_ = false;
    bool promoting_ = false;  // a promotion is running (its answer not in yet)
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace possync::daemon
