// MasterSession, part 2: what it sends: the FULL's chunks and then the log, paced by the slave's
// Acks (the window) and by the link's queue (the send buffer).
#include "log/log.h"

#include "sync/master.h"
#include "sync/master_session.h"
#include "wire/messages.h"

namespace possync::sync {

POSSYNC_LOG_DECLARE(Sync);

namespace {
// Unacknowledged FULL chunks per session: two keep the link busy while the slave applies one.
constexpr uint32_t kChunkWindow = 2;

size_t bytesOf(const std::vector<std::vector<uint8_t>>& frames) {
    size_t n = 0;
    for (const auto& f : frames) n += f.size();
    return n;
}
}  // namespace

void MasterSession::pump() {
    if (state_ == SessionState::Full) pumpFull();
    if (state_ == SessionState::Streaming) pumpLog();
}

void MasterSession::pumpFull() {
    if (held_) return;
    while (state_ == SessionState::Full && !snapshotDone_ &&
           link_->queuedBytes() < master_.config().sendBufferBytes) {
        if (chunkInProgress_) {
            // A chunk over the slave's frame limit (one record larger than a chunk): its pieces
            // go out as the send buffer drains (onSent).
            const auto& frame = *chunkInProgress_;
            Bytes payload(frame.data() + wire::kFrameHeaderBytes, frame.size() - wire::kFrameHeaderBytes);
            if (!sendFragments(payload, chunkFragOffset_)) return;
            if (chunkFragOffset_ != 0) return;  // more pieces once the queue drains
            chunkInProgress_.reset();
            if (!chunkSent()) return;
            continue;
        }
        if (nextChunk_ - ackedChunks_ >= kChunkWindow) return;
        bool shared = false;
        auto chunk = master_.chunk(*snapshot_, nextChunk_, shared);
        if (!chunk) {
            // A table new to this process cannot get its LMDB handle while a worker thread's
            // transaction is open (a forwarded write, a trust set change): the next tick or
            // commit pumps again.
            if (chunk.error().code == Errc::Busy) return;
            if (chunk.error().code == Errc::Closed) {
                close(wire::ErrorCode::SHUTDOWN, chunk.error().message, "generation");
            } else {
                close(wire::ErrorCode::INTERNAL, "snapshot read failed: " + chunk.error().message, "store");
            }
            return;
        }
        if (nextChunk_ == 0) {
            // The replay after the snapshot starts here; keep it in the log.
            if (!pin_)
                pin_ = master_.store().pin(chunk->readSeq);
            else
                master_.store().movePin(pin_, chunk->readSeq);
            streamBase_ = ackedSeq_ = chunk->readSeq;
            nextSeq_ = chunk->readSeq + 1;
        }
        chunksInFlight_.push_back(chunk->frame);
        master_.stats().changesOut += chunk->records;
        fullRecordsSent_ += chunk->records;
        lastChunkIsLast_ = chunk->last;
        size_t payloadBytes = chunk->frame->size() - wire::kFrameHeaderBytes;
        if (needsFragments(payloadBytes)) {
            if (payloadBytes > peerMaxMessage_) {
                stuck("FULL chunk " + std::to_string(nextChunk_) + " is " + std::to_string(payloadBytes) +
                      " bytes, over the " + std::to_string(peerMaxMessage_) + " bytes this slave can take");
                return;
            }
            chunkInProgress_ = chunk->frame;
            chunkFragOffset_ = 0;
            continue;
        }
        // The frame is shared with every other session sending this chunk: no copy.
        auto w = link_->sendShared(chunk->frame);
        if (!w) {
            close(wire::ErrorCode::NONE, "write failed: " + w.error().message, "link");
            return;
        }
        if (!sent(1, chunk->frame->size())) return;
        if (!chunkSent()) return;
    }
}

bool MasterSession::chunkSent() {
    ++nextChunk_;
    chunksEverSent_ = std::max(chunksEverSent_, nextChunk_);
    if (!lastChunkIsLast_) return true;
    snapshotDone_ = true;
    LOG(Sync, Info) << "slave " << device_ << ": snapshot sent (" << nextChunk_
                    << " chunks), streaming the log from " << nextSeq_;
    step(SessionEvent::SnapshotSent);
    pumpLog();
    return false;
}

void MasterSession::stuck(std::string why) {
    if (problem_ == why) return;
    problem_ = std::move(why);
    master_.stats().error("unsendable");
    LOG(Sync, Error) << "slave " << device_ << ": cannot send: " << problem_
                     << "; the link stays up but this slave gets nothing more";
}

void MasterSession::pumpLog() {
    if (held_) return;
    const auto& cfg = master_.config();
    while (state_ == SessionState::Streaming && !problem_.size()) {
        uint64_t inflight = nextSeq_ - 1 - std::min(ackedSeq_, nextSeq_ - 1);
        size_t queued = link_->queuedBytes();
        if (queued >= cfg.sendBufferBytes) return;
        if (inflight >= cfg.window && fragOffset_ == 0) return;
        auto view = master_.view();
        if (!view) {
            close(wire::ErrorCode::INTERNAL, "cannot read the change log: " + view.error().message, "store");
            return;
        }
        if (view->generation != generation_) {
            close(wire::ErrorCode::SHUTDOWN, "the master's generation changed", "generation");
            return;
        }
        if (view->resyncSeq > streamBase_) {
            LOG(Sync, Info) << "slave " << device_ << ": watched tables changed, new FULL sync";
            step(SessionEvent::NeedFull);
            startFull();
            return;
        }
        if (nextSeq_ > view->head) return;  // up to date
        std::vector<std::vector<uint8_t>> batch;
        uint64_t expect = nextSeq_;
        bool gap = false, big = false, linkOk = true;
        size_t maxEntries = fragOffset_ ? 1 : cfg.window - inflight;
        auto r = master_.store().readLog(nextSeq_, maxEntries, SIZE_MAX, [&](uint64_t seq, Bytes entry) {
            if (seq != expect) {
                gap = true;
                return false;
            }
            if (needsFragments(entry.size)) {
                // A transaction larger than the slave's frame limit goes as Fragments, after
                // what is already batched; the rest of the log waits for its last piece.
                if (!batch.empty()) return false;
                big = true;
                if (entry.size > peerMaxMessage_) {
                    stuck("change " + std::to_string(seq) + " is " + std::to_string(entry.size) +
                          " bytes, over the " + std::to_string(peerMaxMessage_) +
                          " bytes this slave can take");
                    return false;
                }
                linkOk = sendFragments(entry, fragOffset_);
                if (linkOk && fragOffset_ == 0) ++expect;
                return false;
            }
            if (!batch.empty() && bytesOf(batch) + entry.size > cfg.sendBufferBytes - queued) return false;
            batch.push_back(wire::encodeFrame(entry));  // copied out of the read txn
            ++expect;
            return true;
        });
        if (!r) {
            close(wire::ErrorCode::INTERNAL, "cannot read the change log: " + r.error().message, "store");
            return;
        }
        if (!linkOk || closed() || !problem_.empty()) return;
        if (big) {
            if (expect != nextSeq_) {
                sentTimes_.emplace_back(expect - 1, lastSentMs_);
                nextSeq_ = expect;
            }
            continue;  // the queue bound decides whether more goes now
        }
        if (gap || batch.empty()) {
            // The entries this slave needs were trimmed (hard limit): start over with FULL.
            LOG(Sync, Warning) << "slave " << device_ << ": seq " << nextSeq_
                               << " is no longer in the log, new FULL sync";
            step(SessionEvent::NeedFull);
            startFull();
            return;
        }
        size_t bytes = bytesOf(batch);
        size_t frames = batch.size();
        auto w = link_->sendv(std::move(batch));
        if (!w) {
            close(wire::ErrorCode::NONE, "write failed: " + w.error().message, "link");
            return;
        }
        if (!sent(frames, bytes)) return;
        sentTimes_.emplace_back(expect - 1, lastSentMs_);  // at most `window` entries
        nextSeq_ = expect;
    }
}

}  // namespace possync::sync
