// MasterSession: the master's side of one slave link.
//
// Protocol walk (a guide to onFrame/pump):
//   AwaitHello  the slave speaks first. A Hello with another store id or protocol version gets
//               a refusal Welcome and the link closes. Otherwise decideSync() picks the mode and
//               a Welcome says which.
//   Full        snapshot chunks from the shared Snapshot, at most kChunkWindow unacknowledged;
//               the log from the snapshot's first seq is pinned meanwhile.
//   Streaming   log entries are copied (short read transactions) into the socket, at most
//               `window` change models unacknowledged and `sendBuffer` bytes queued; a slave
//               that stops reading stops the pump, it never grows the master's memory.
// Any bad frame, an Error from the slave, a write failure or silence past the timeout closes
// the link (after an Error frame when the link still works). The Master deletes closed
// sessions on a later loop turn (never inside their own callbacks).
//
// I/O: the session has no socket. It sends through a Link, hears from it through LinkEvents
// (onData/onClosed), and takes its time and timers from the SessionHost, so unit tests drive it
// with scripted frames and explicit time.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "base/result.h"

#include "possync_generated.h"
#include "sync/clock.h"
#include "sync/link.h"
#include "sync/policy.h"
#include "sync/session_host.h"
#include "sync/snapshot.h"
#include "wire/frame.h"

namespace possync::sync {

struct SessionInfo {
    uint64_t id = 0;
    std::string address;
    std::string device;
    std::string state;
    uint64_t ackedSeq = 0;    // the slave's acknowledged position
    uint64_t lagChanges = 0;  // head - acked
    uint64_t lagMs = 0;       // age of the oldest unacknowledged change model
    uint64_t lastHeardMsAgo = 0;
    uint64_t rttMs = 0;
    std::string mode;  // "full" / "incremental"
};

class MasterSession final : public LinkEvents {
public:
    MasterSession(SessionHost& host, std::unique_ptr<Link> link, uint64_t id);
    ~MasterSession() override;
    MasterSession(const MasterSession&) = delete;
    MasterSession& operator=(const MasterSession&) = delete;

    Status start();
    // New commits may be in the log: send what the window allows.
    void pump();
    // Closes the link with an Error frame (code, text) when it still works.
    void close(wire::ErrorCode code, const std::string& why, const char* errorKind);

    SessionState state() const { return state_; }
    bool closed() const { return state_ == SessionState::Closed; }
    uint64_t id() const { return id_; }
    SessionInfo info() const;

    // LinkEvents: bytes from the slave; the end of the link.
    void onData(Bytes data) override;
    void onClosed(Status status) override;

private:
    Status onFrame(Bytes payload);
    Status onHello(const wire::Hello* hello);
    Status onAck(const wire::Ack* ack);
    void step(SessionEvent event);
    void refuse(const std::string& why, const char* errorKind);
    // close() taking `event` (LinkError or Refuse) to Closed.
    void closeWith(SessionEvent event, wire::ErrorCode code, const std::string& why, const char* errorKind);
    void startFull();
    void pumpFull();
    void pumpLog();
    bool send(std::vector<uint8_t> frame);
    bool sendPayload(const std::vector<uint8_t>& payload);
    void sent(size_t frames, size_t bytes);
    void onTick();

    SessionHost& master_;
    std::unique_ptr<Link> link_;
    std::unique_ptr<Timer> tick_;
    wire::FrameDecoder decoder_;
    uint64_t id_;
    SessionState state_ = SessionState::AwaitHello;
    bool closing_ = false;  // inside closeWith(): no second close from a nested step()
    std::string device_;
    std::string peer_;

    // FULL
    std::shared_ptr<Snapshot> snapshot_;
    std::vector<SharedFrame> chunksInFlight_;  // held until acknowledged
    uint32_t nextChunk_ = 0;
    uint32_t ackedChunks_ = 0;
    // The most chunks sent by any FULL on this link: an Ack for a chunk at or past it names a
    // chunk never sent; one between nextChunk_ and it is late, from a FULL restarted since.
    uint32_t chunksEverSent_ = 0;
    bool snapshotDone_ = false;
    // Streaming
    uint64_t nextSeq_ = 0;     // next log seq to send
    uint64_t streamBase_ = 0;  // the position streaming started from (FULL: snapshot first seq)
    uint64_t ackedSeq_ = 0;
    uint64_t generation_ = 0;
    int pin_ = 0;
    // Liveness
    uint64_t lastHeardMs_ = 0;
    uint64_t lastSentMs_ = 0;
    uint64_t rttMs_ = 0;
    std::deque<std::pair<uint64_t, uint64_t>> sentTimes_;  // (last seq of a batch, sent at)
};

}  // namespace possync::sync
