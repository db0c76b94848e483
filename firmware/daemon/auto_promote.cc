#include "daemon/auto_promote.h"

#include "log/log.h"

namespace possync::daemon {

POSSYNC_LOG_DECLARE(Daemon);

namespace {
constexpr uint64_t kTickMs = 1000;
}

AutoPromoter::AutoPromoter(uv::Loop& loop, uint64_t afterMs, Hooks hooks)
    : loop_(loop), afterMs_(afterMs), hooks_(std::move(hooks)), lastLinkedMs_(loop.nowMs()) {}

AutoPromoter::~AutoPromoter() {
    *alive_ = false;
}

Result<std::unique_ptr<AutoPromoter>> AutoPromoter::create(uv::Loop& loop, uint64_t afterMs, Hooks hooks) {
    if (afterMs == 0) return makeError(Errc::InvalidArgument, "auto-promotion needs a delay above 0");
    std::unique_ptr<AutoPromoter> p(new AutoPromoter(loop, afterMs, std::move(hooks)));
    auto timer = uv::Timer::create(loop);
    if (!timer) return timer.takeError();
    p->timer_ = std::move(*timer);
    p->timer_->start(kTickMs, kTickMs, [raw = p.get()] { raw->tick(); });
    LOG(Daemon, Info) << "auto-promotion: this board promotes itself after " << afterMs / 1000
                      << " s without a master (--auto-promote-after)";
    return p;
}

uint64_t AutoPromoter::unlinkedMs() const {
    uint64_t now = loop_.nowMs();
    return now > lastLinkedMs_ ? now - lastLinkedMs_ : 0;
}

void AutoPromoter::tick() {
    if (promoted_ || promoting_) return;
    if (hooks_.linked()) {
        lastLinkedMs_ = loop_.nowMs();
        lastNote_.clear();
        return;
    }
    if (unlinkedMs() < afterMs_) return;
    if (std::string hold = hooks_.holdReason(); !hold.empty()) {
        if (hold != lastNote_) LOG(Daemon, Warning) << "auto-promotion held: " << hold;
        lastNote_ = std::move(hold);
        return;
    }
    LOG(Daemon, Warning) << "no master linked for " << unlinkedMs() / 1000
                         << " s: promoting this board (--auto-promote-after " << afterMs_ / 1000 << ")";
    promoting_ = true;
    hooks_.promote([this, alive = alive_](Result<std::string> r) {
        if (!*alive) return;
        promoting_ = false;
        if (r) {
            promoted_ = true;
            timer_->stop();
            return;
        }
        if (r.error().message != lastNote_)
            LOG(Daemon, Error) << "auto-promotion failed: " << r.error().message << " (trying again)";
        lastNote_ = r.error().message;
    });
}

}  // namespace possync::daemon
