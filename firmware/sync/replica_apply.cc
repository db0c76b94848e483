// Replica, part 2: the master's Welcome (FULL or INCREMENTAL, lineage) and applying what follows.
#include "log/log.h"

#include "sync/replica.h"
#include "wire/change_model.h"
#include "wire/messages.h"

namespace possync::sync {

POSSYNC_LOG_DECLARE(Sync);

namespace {
// Records a FULL may carry beyond twice what chunk 0 announced (writes during the FULL).
constexpr uint64_t kFullRecordSlack = 1024;
}  // namespace

Status Replica::onWelcome(const wire::Welcome* w) {
    masterDevice_ = std::string(wire::textOf(w->device_id()));
    if (w->refused()) {
        if (w->code() == wire::ErrorCode::GENERATION) {
            // The master saw our other generation and that we may not take its data: the same
            // wait for the operator as when we see it ourselves (below), without a snapshot.
            waitingReason_ = "master data replaced: " + std::string(wire::textOf(w->reason())) +
                             "; keeping this slave's data until the operator runs accept-generation";
            LOG(Sync, Warning) << waitingReason_;
            stats_.error("generation");
            dropLink();
            step(ReplicaEvent::GenerationMismatch);
            scheduleRetry();
            return makeError(Errc::Closed, "generation mismatch");
        }
        if (w->code() == wire::ErrorCode::NOT_PAIRED) {
            // Not in the store's trust set yet (DESIGN.md §11): said once, then asked again every
            // second until the operator settles it on the master (scheduleRetry).
            std::string why(wire::textOf(w->reason()));
            if (pairing_ != why) LOG(Sync, Warning) << "master refused (NOT_PAIRED): " << why;
            pairing_ = std::move(why);
            stats_.error("not_paired");
            dropLink();
            step(ReplicaEvent::Refused);
            scheduleRetry();
            return makeError(Errc::Closed, "not paired");
        }
        waitingReason_ = "master refused: " + std::string(wire::textOf(w->reason()));
        LOG(Sync, Warning) << waitingReason_;
        stats_.error("refused");
        dropLink();
        step(ReplicaEvent::Refused);
        scheduleRetry();
        return makeError(Errc::Closed, "refused");
    }
    if (w->term() < highestTerm_) {
        // A master superseded by a promotion (DESIGN.md §10): following it could mix changes of
        // two masters. Its Hello check refuses us too; this covers an older one that did not.
        waitingReason_ = "master " + masterDevice_ + " is of term " + std::to_string(w->term()) +
                         ", this board has seen term " + std::to_string(highestTerm_) +
                         ": not following a superseded master";
        LOG(Sync, Warning) << waitingReason_;
        stats_.error("superseded");
        (void)send(wire::buildError(wire::ErrorCode::SUPERSEDED, waitingReason_));
        dropLink();
        step(ReplicaEvent::Refused);
        scheduleRetry();
        return makeError(Errc::Closed, "superseded");
    }
    linkGeneration_ = w->generation();
    masterHead_ = w->head_seq();
    masterTerm_ = w->term();
    ancestry_.clear();
    if (w->lineage())
        for (const wire::Position* p : *w->lineage()) ancestry_.push_back({p->generation(), p->seq()});
    bool allowed = config_.acceptNewGeneration || acceptOnce_ || forceStarting_;
    std::string problem;
    // Our generation is the master's, or one it continued (a promotion): up to where.
    auto shared = store::sharedWith(linkGeneration_, ancestry_, generation_);
    uint64_t discarded = 0;
    if (synced_ && !shared)
        problem = "master data replaced: the master has generation " + hex64(w->generation()) +
                  ", this slave holds generation " + hex64(generation_) + " up to seq " +
                  std::to_string(position_);
    else if (synced_ && *shared != UINT64_MAX && position_ > *shared)
        discarded = position_ - *shared;  // went past the fork: a FULL, no operator needed
    else if (synced_ && w->head_seq() < position_)
        problem = "the master (head " + std::to_string(w->head_seq()) + ") is behind this slave (seq " +
                  std::to_string(position_) + "): was its data restored?";
    if (!problem.empty() && !allowed) {
        waitingReason_ = problem + "; keeping this slave's data until the operator runs accept-generation";
        LOG(Sync, Warning) << waitingReason_;
        stats_.error("generation");
        auto payload = wire::buildError(wire::ErrorCode::GENERATION, problem);
        (void)send(payload);
        dropLink();
        step(ReplicaEvent::GenerationMismatch);
        scheduleRetry();
        return makeError(Errc::Closed, "generation mismatch");
    }
    if (discarded && w->mode() != wire::SyncMode::FULL)
        return makeError(Errc::Protocol, "INCREMENTAL offered to a slave " + std::to_string(discarded) +
                                             " changes past the fork of its generation");
    if (discarded) {
        discarded_ = std::to_string(discarded) + " change(s) this board held past seq " +
                     std::to_string(*shared) + " of generation " + hex64(generation_) +
                     " (the fork of the new master " + masterDevice_ + ", term " +
                     std::to_string(masterTerm_) + ") were never received by it: the FULL sync discards them";
        LOG(Sync, Warning) << discarded_;
        stats_.error("discarded_past_fork");
    }
    if (masterTerm_ > highestTerm_) {
        highestTerm_ = masterTerm_;
        if (auto t = store_.noteTerm(masterTerm_); !t)
            LOG(Sync, Warning) << "cannot record term " << masterTerm_ << ": " << t.error().message;
    }
    lineagePending_ = true;
    pairing_.clear();
    if (storeFault_ == StoreFault::None) {  // else both stay until a commit works again
        waitingReason_.clear();
        backoff_.reset();
    }
    if (w->mode() == wire::SyncMode::FULL) {
        LOG(Sync, Info) << "master " << masterDevice_ << " sends a FULL sync (generation "
                        << hex64(linkGeneration_) << ", head " << masterHead_ << ")";
        nextChunk_ = 0;
        step(ReplicaEvent::WelcomeFull);
    } else {
        LOG(Sync, Info) << "master " << masterDevice_ << " resumes INCREMENTAL after " << position_
                        << " (head " << masterHead_ << ")";
        // (A failure of our disk here is handled as any apply's: onData's storeFailed.)
        if (synced_ && generation_ != linkGeneration_) POSSYNC_TRY(adoptGeneration());
        stats_.incrementalSyncs++;
        step(ReplicaEvent::WelcomeIncremental);
    }
    masterMaxFrame_ = w->max_frame() ? w->max_frame() : wire::kDefaultMaxFrameBytes;
    if (w->last_request()) POSSYNC_TRY(store_.raiseNextRequest(w->last_request()));
    if (state_ == ReplicaState::Streaming) forward();
    return {};
}

Status Replica::onChangeModel(const wire::ChangeModel* cm) {
    // A FULL chunk is of the master's generation; a log entry of the generation that wrote it
    // (an ancestor's up to its fork, DESIGN.md §10).
    uint64_t expected = cm->flag() == wire::SyncMode::FULL ? linkGeneration_ : generationAt(cm->first_seq());
    if (cm->generation() != expected ||
        (cm->flag() != wire::SyncMode::FULL && generationAt(cm->last_seq()) != expected))
        return makeError(Errc::Corrupt, "change model of generation " + hex64(cm->generation()) + " at seq " +
                                            std::to_string(cm->first_seq()) + " on a link of generation " +
                                            hex64(linkGeneration_) + " (expected " + hex64(expected) + ")");
    // One transaction, or one chunk read at one seq: never a range the model does not carry.
    POSSYNC_TRY(wire::checkSeqFields(cm));
    stats_.changesIn += cm->changes() ? cm->changes()->size() : 0;
    if (cm->flag() == wire::SyncMode::FULL) return onFullChunk(cm);
    return onIncremental(cm);
}

Status Replica::onFullChunk(const wire::ChangeModel* cm) {
    bool fullOpen =
        state_ == ReplicaState::FullReplay || (state_ == ReplicaState::ReceivingFull && nextChunk_ > 0);
    if (cm->chunk() == 0 && (state_ == ReplicaState::Streaming || fullOpen)) {
        // The master starts over with FULL (watched tables changed, or we fell behind its log),
        // possibly while our previous FULL is still replaying: that one is abandoned (its
        // transaction aborts, readers keep the old data set) and the new one begins.
        if (state_ == ReplicaState::Streaming) POSSYNC_TRY(commitBatch());
        if (fullOpen) LOG(Sync, Info) << "master restarts the FULL sync; the one in progress is dropped";
        full_.reset();
        nextChunk_ = 0;
        lastChunkSeen_ = false;
        step(ReplicaEvent::FullRestart);
    }
    if (state_ != ReplicaState::ReceivingFull)
        return makeError(Errc::Protocol, "FULL chunk outside a FULL sync");
    if (cm->chunk() != nextChunk_)
        return makeError(Errc::Protocol, "FULL chunk " + std::to_string(cm->chunk()) +
                                             " out of order (expected " + std::to_string(nextChunk_) + ")");
    if (cm->chunk() == 0) {
        auto txn = store_.beginFullApply();
        if (!txn) return txn.takeError();
        full_.emplace(std::move(*txn));
        std::vector<std::string> tables;
        if (cm->tables())
            for (auto* t : *cm->tables()) tables.emplace_back(wire::textOf(t));
        POSSYNC_TRY(full_->beginFull(tables));
        fullFirstSeq_ = fullTargetSeq_ = fullAppliedSeq_ = cm->snapshot_seq();
        fullRecords_ = 0;
        // Data may grow while the FULL runs: twice the announced size and 1024 records more.
        // (An older master announces nothing: no limit.)
        auto announced = cm->snapshot_records();
        fullRecordLimit_ = announced ? *announced * 2 + kFullRecordSlack : 0;
        fullAnnounced_ = announced.value_or(0);
    }
    fullRecords_ += cm->changes() ? cm->changes()->size() : 0;
    if (fullRecordLimit_ && fullRecords_ > fullRecordLimit_)
        return makeError(Errc::TooLarge, "FULL sync larger than announced: " + std::to_string(fullRecords_) +
                                             " records by chunk " + std::to_string(cm->chunk()) +
                                             ", over the limit of " + std::to_string(fullRecordLimit_) +
                                             " (2x the announced size + " + std::to_string(kFullRecordSlack) +
                                             ")");
    // Chunks after the first are read at chunk 0's seq or later: the replay that follows the
    // snapshot starts after chunk 0's seq, so an older chunk would lose changes.
    if (cm->snapshot_seq() < fullFirstSeq_)
        return makeError(Errc::Corrupt, "FULL chunk " + std::to_string(cm->chunk()) + " read at seq " +
                                            std::to_string(cm->snapshot_seq()) + ", before chunk 0's seq " +
                                            std::to_string(fullFirstSeq_));
    POSSYNC_TRY(full_->applyFullChunk(cm));
    fullTargetSeq_ = std::max(fullTargetSeq_, cm->snapshot_seq());
    ++nextChunk_;
    if (!send(wire::buildAck(wire::Position(linkGeneration_, fullAppliedSeq_), true, cm->chunk())))
        return makeError(Errc::Closed, "link lost");
    if (cm->last_chunk()) {
        lastChunkSeen_ = true;
        if (fullAppliedSeq_ >= fullTargetSeq_) return finishFull();
        step(ReplicaEvent::LastChunk);
    }
    return {};
}

Status Replica::onIncremental(const wire::ChangeModel* cm) {
    if (state_ == ReplicaState::FullReplay || (state_ == ReplicaState::ReceivingFull && lastChunkSeen_)) {
        if (cm->first_seq() != fullAppliedSeq_ + 1)
            return makeError(Errc::Protocol, "change model " + std::to_string(cm->first_seq()) +
                                                 " does not follow " + std::to_string(fullAppliedSeq_));
        POSSYNC_TRY(full_->apply(cm, currentFrame_));
        fullAppliedSeq_ = cm->last_seq();
        if (fullAppliedSeq_ >= fullTargetSeq_) return finishFull();
        if (!send(wire::buildAck(wire::Position(linkGeneration_, fullAppliedSeq_), true,
                                 nextChunk_ ? nextChunk_ - 1 : 0)))
            return makeError(Errc::Closed, "link lost");
        return {};
    }
    if (state_ != ReplicaState::Streaming)
        return makeError(Errc::Protocol,
                         std::string("INCREMENTAL change model while ") + replicaStateName(state_));
    uint64_t expected = (batch_ ? batchSeq_ : position_) + 1;
    if (cm->first_seq() != expected)
        return makeError(Errc::Protocol, "change model for seq " + std::to_string(cm->first_seq()) + ".." +
                                             std::to_string(cm->last_seq()) + " does not follow position " +
                                             std::to_string(expected - 1));
    if (!batch_) {
        auto txn = store_.beginApply();
        if (!txn) return txn.takeError();
        batch_.emplace(std::move(*txn));
    }
    POSSYNC_TRY(batch_->apply(cm, currentFrame_));
    batchSeq_ = cm->last_seq();
    return {};
}

Status Replica::commitBatch() {
    if (!batch_) return {};
    POSSYNC_TRY(setPosition(*batch_, batchSeq_));
    std::vector<uint64_t> settled = batch_->ownSettled();
    bool withLineage = lineagePending_;
    auto r = batch_->commit();
    batch_.reset();
    if (!r) return r;
    if (withLineage) lineagePending_ = false;
    noteSettled(settled);
    generation_ = linkGeneration_;
    position_ = batchSeq_;
    synced_ = true;
    storeRecovered();
    if (!send(wire::buildAck(wire::Position(generation_, position_))))
        return makeError(Errc::Closed, "link lost");
    return {};
}

Status Replica::finishFull() {
    POSSYNC_TRY(setPosition(*full_, fullAppliedSeq_));
    std::vector<uint64_t> settled = full_->ownSettled();
    bool withLineage = lineagePending_;
    auto r = full_->commit();
    full_.reset();
    if (!r) return r;
    if (withLineage) lineagePending_ = false;
    noteSettled(settled);
    generation_ = linkGeneration_;
    position_ = fullAppliedSeq_;
    synced_ = true;
    acceptOnce_ = false;
    forceStarting_ = false;
    storeRecovered();
    stats_.fullSyncs++;
    LOG(Sync, Info) << "FULL sync complete: " << nextChunk_ << " chunks, position " << hex64(generation_)
                    << ":" << position_;
    step(ReplicaEvent::Consistent);
    if (!send(wire::buildAck(wire::Position(generation_, position_))))
        return makeError(Errc::Closed, "link lost");
    forward();
    return {};
}

Status Replica::setPosition(store::ApplyTxn& txn, uint64_t seq) {
    // A position always names the master's generation: up to a fork its data and the
    // ancestor's are the same (the log entries keep their own generation). The master's lineage
    // goes with the first commit of a link, so this board knows it if it is promoted in turn.
    if (lineagePending_) txn.setLineage(store::historyFromAncestry(linkGeneration_, masterTerm_, ancestry_));
    return txn.setPosition(linkGeneration_, seq);
}

Status Replica::adoptGeneration() {
    // Our data is an ancestor's up to a fork the master's generation continued: from now on it
    // is the master's generation's (DESIGN.md §10), with no change to apply.
    auto txn = store_.beginApply();
    if (!txn) return txn.takeError();
    POSSYNC_TRY(setPosition(*txn, position_));
    POSSYNC_TRY(txn->commit());
    LOG(Sync, Info) << "generation " << hex64(generation_) << " up to seq " << position_
                    << " continues as the master's generation " << hex64(linkGeneration_) << " (term "
                    << masterTerm_ << "): no FULL sync needed";
    lineagePending_ = false;
    generation_ = linkGeneration_;
    return {};
}

}  // namespace possync::sync
