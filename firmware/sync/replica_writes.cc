// Replica, part 3: slave writes (DESIGN.md §9): the outbox forwarded as WriteRequests, results settled.
#include "log/log.h"

#include "sync/replica.h"
#include "wire/change_model.h"
#include "wire/messages.h"

namespace possync::sync {

POSSYNC_LOG_DECLARE(Sync);

// --- slave writes (DESIGN.md §9) -------------------------------------------------------------

void Replica::outboxChanged() {
    forward();
}

void Replica::onSent() {
    forward();
}

void Replica::noteSettled(const std::vector<uint64_t>& ids) {
    for (uint64_t id : ids)
        if (auto it = inFlight_.find(id); it != inFlight_.end()) it->second.settled = true;
}

void Replica::forward() {
    if (!link_ || state_ != ReplicaState::Streaming) return;
    // A request too large for one frame first: its remaining pieces, while the queue has room.
    while (!fragmenting_.empty()) {
        if (link_->queuedBytes() >= config_.sendBufferBytes / 2) return;
        size_t piece = wire::fragmentDataBytes(masterMaxFrame_);
        size_t n = std::min<uint64_t>(piece, fragmenting_.size() - fragOffset_);
        if (!send(wire::buildFragment(fragmenting_.size(), fragOffset_,
                                      Bytes(fragmenting_.data() + fragOffset_, n))))
            return;
        fragOffset_ += n;
        if (fragOffset_ >= fragmenting_.size()) {
            fragmenting_.clear();
            fragmenting_.shrink_to_fit();
            fragOffset_ = 0;
        }
    }
    uint64_t held = 0;
    auto r = store_.readOutbox(forwardedUpTo_, [&](uint64_t id, Bytes frame) {
        if (inFlight_.size() >= kRequestWindow || link_->queuedBytes() >= config_.sendBufferBytes / 2 ||
            (!inFlight_.empty() && inFlightBytes_ + frame.size > kRequestWindowBytes) ||
            !fragmenting_.empty())
            return false;
        auto f = wire::verifyFrame(frame);
        const wire::WriteRequest* req = f ? wire::asWriteRequest(*f) : nullptr;
        forwardedUpTo_ = id;
        if (!req) {
            LOG(Sync, Error) << "outbox request " << id << " is damaged: not forwarded";
            stats_.error("outbox_damaged");
            return true;
        }
        if (!store::sharedWith(linkGeneration_, ancestry_, req->generation())) {
            // Written against data this board no longer holds (the master's data was
            // replaced): kept and reported, never applied to data it was not written against.
            // (Requests written against a generation the master continued after a promotion
            // drain into it, DESIGN.md §10: their conditions are evaluated there.)
            ++held;
            return true;
        }
        inFlight_.emplace(id, InFlight{false, frame.size});
        inFlightBytes_ += frame.size;
        stats_.requestsOut++;
        if (frame.size > masterMaxFrame_) {
            fragmenting_.assign(frame.data, frame.data + frame.size);
            fragOffset_ = 0;
            return false;
        }
        return send(std::vector<uint8_t>(frame.data, frame.data + frame.size));
    });
    if (!r) {
        LOG(Sync, Warning) << "cannot read the outbox: " << r.error().message;
        stats_.error("outbox");
        return;
    }
    if (held && held != heldLogged_) {
        heldLogged_ = held;
        LOG(Sync, Warning) << held << " queued request(s) were written against another generation of the "
                           << "master's data and are held (possync outbox)";
    }
    if (!fragmenting_.empty()) forward();
}

Status Replica::onWriteResult(const wire::WriteResult* result) {
    if (state_ != ReplicaState::Streaming) return makeError(Errc::Protocol, "WriteResult outside streaming");
    auto it = inFlight_.find(result->request_id());
    if (it == inFlight_.end())
        return makeError(Errc::Protocol, "WriteResult for request " + std::to_string(result->request_id()) +
                                             ", which was not sent");
    bool settled = it->second.settled;
    inFlightBytes_ -= it->second.bytes;
    inFlight_.erase(it);
    stats_.requestResults++;
    store::RequestResult r{result->request_id(), result->status() == wire::WriteStatus::REJECTED,
                           result->seq(), std::string(wire::textOf(result->reason()))};
    uint64_t applied = batch_ ? batchSeq_ : position_;
    if (!settled && (r.seq == 0 || r.seq <= applied)) {
        // No change model will settle it here: a rejection the master did not log, or a change
        // this board holds already (it came with a FULL sync). Settled now, in the batch of this
        // read when one is open (one writer per process), else in its own transaction.
        if (batch_) {
            POSSYNC_TRY(batch_->settleOwnRequest(r));
        } else {
            auto txn = store_.beginApply();
            if (!txn) return txn.takeError();
            POSSYNC_TRY(txn->settleOwnRequest(r));
            POSSYNC_TRY(txn->commit());
        }
        if (r.rejected) LOG(Sync, Warning) << "request " << r.requestId << " rejected: " << r.reason;
    }
    forward();
    return {};
}

}  // namespace possync::sync
