// Replica, part 4: the operator's decisions (accept-generation, resync) and divergence detection.
#include "log/log.h"

#include "sync/replica.h"
#include "wire/change_model.h"
#include "wire/messages.h"

namespace possync::sync {

POSSYNC_LOG_DECLARE(Sync);

Status Replica::acceptGeneration() {
    if (state_ != ReplicaState::WaitingOperator && state_ != ReplicaState::Backoff)
        return makeError(Errc::Refused, std::string("not waiting for a new master generation (state ") +
                                            replicaStateName(state_) + ")");
    acceptOnce_ = true;
    LOG(Sync, Warning) << "operator accepted the master's new generation: this slave's data will be replaced";
    step(ReplicaEvent::OperatorAccept);
    if (state_ == ReplicaState::Locating) {
        retry_->stop();
        locate();
    }
    return {};
}

Status Replica::resync() {
    forceStarting_ = true;
    LOG(Sync, Warning) << "operator asked for a FULL sync";
    switch (state_) {
        case ReplicaState::Streaming:
        case ReplicaState::AwaitWelcome:
            dropLink();
            step(ReplicaEvent::Resync);
            retry_->stop();
            retry_->start(0, 0, [this] {
                step(ReplicaEvent::RetryDue);
                locate();
            });
            return {};
        case ReplicaState::WaitingOperator:
            step(ReplicaEvent::Resync);
            retry_->stop();
            locate();
            return {};
        case ReplicaState::Backoff: step(ReplicaEvent::Resync); return {};
        default: return {};  // a FULL is under way or about to start: the flag applies to the next link
    }
}

// ---- Divergence detection (issue 10) -----------------------------------------------------
//
// Equal positions must mean equal data. A change forged or corrupted on the link (or a slave's
// file changed behind its back) breaks that silently: the slave streams on, at the master's
// position, with other data. The master therefore announces its combined watched-table digest
// at a position on Welcome and on its Pings; when this slave has committed exactly that
// position it compares. A mismatch is an alarm (status, error log, stats `errors_diverged`) and
// heals itself with a FULL sync, rate-limited so that a digest that never matches (a bug, a
// master that keeps diverging) costs one FULL per hold time, not a loop.

void Replica::noteMasterDigest(std::optional<wire::DigestAt> digest) {
    if (!digest || digest->generation != linkGeneration_) return;
    masterDigest_ = digest;
}

void Replica::checkDigest() {
    if (!masterDigest_ || !link_ || state_ != ReplicaState::Streaming || batch_) return;
    if (!synced_ || masterDigest_->generation != generation_ || position_ > masterDigest_->seq) {
        masterDigest_.reset();  // passed, or another history: nothing to compare
        return;
    }
    if (position_ < masterDigest_->seq) return;  // compared once we get there
    wire::DigestAt master = *masterDigest_;
    masterDigest_.reset();
    auto ours = store_.watchedDigest();
    if (!ours) {
        LOG(Sync, Warning) << "cannot read this slave's digest: " << ours.error().message;
        return;
    }
    if (ours->seq != master.seq || ours->generation != master.generation) return;  // raced a commit
    if (ours->digest == master.digest) {
        if (!diverged_.empty()) {
            LOG(Sync, Info) << "digest equals the master's again at seq " << master.seq
                            << ": divergence resolved";
            // Still shown for a while: an alarm that vanished within a second would go unseen.
            healed_ = diverged_ + "; healed: digests equal again at " + hex64(master.generation) + ":" +
                      std::to_string(master.seq);
            healedAtMs_ = clock_.nowMs();
        }
        diverged_.clear();
        return;
    }
    onDiverged(master, ours->digest);
}

void Replica::onDiverged(const wire::DigestAt& master, uint64_t ours) {
    stats_.error("diverged");
    uint64_t now = clock_.nowMs();
    // The hold is not reset by an equal digest (a slave that diverges again after every FULL
    // would loop), only by a quiet period as long as the longest hold.
    if (divergenceFullEver_ && now - lastDivergenceFullMs_ >= config_.divergenceFullMaxMs) {
        divergenceFullEver_ = false;
        divergenceHoldMs_ = 0;
    }
    std::string what = "diverged: at " + hex64(master.generation) + ":" + std::to_string(master.seq) +
                       " this slave's digest is " + hex64(ours) + ", the master's " + hex64(master.digest);
    bool held = divergenceFullEver_ && now - lastDivergenceFullMs_ < divergenceHoldMs_;
    if (held) {
        diverged_ = what + "; FULL sync held back for " +
                    std::to_string((lastDivergenceFullMs_ + divergenceHoldMs_ - now) / 1000) +
                    " s (the last one did not cure it)";
        LOG(Sync, Error) << diverged_;
        return;
    }
    diverged_ = what + "; FULL sync started";
    LOG(Sync, Error) << diverged_;
    divergenceHoldMs_ = divergenceFullEver_
                            ? std::min(std::max(divergenceHoldMs_ * 2, config_.divergenceFullMinMs),
                                       config_.divergenceFullMaxMs)
                            : config_.divergenceFullMinMs;
    divergenceFullEver_ = true;
    lastDivergenceFullMs_ = now;
    // As the operator's resync: the next Hello says STARTING; the data stays readable until
    // the FULL commits atomically.
    forceStarting_ = true;
    dropLink();
    step(ReplicaEvent::Resync);
    retry_->stop();
    retry_->start(0, 0, [this] {
        if (state_ != ReplicaState::Backoff) return;
        step(ReplicaEvent::RetryDue);
        locate();
    });
}

}  // namespace possync::sync
