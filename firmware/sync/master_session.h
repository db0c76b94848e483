// MasterSession: the master's side of one slave link.
//
// Implemented in master_session.cc (the handshake, frames, Acks, requests, deadlines) and
// master_session_pump.cc (what it sends: FULL chunks, then the log).
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
// the link (after an Error frame when the link still works).
//
// Bounds (RELIABILITY.md, what an unauthenticated peer can cost):
// - Outbound queue: every queued byte counts, control frames (Pong, Ping, Error, refusals)
//   included. Before a Hello the bound is kHandshakeMaxFrameBytes; after it, sendBufferBytes
//   plus one frame of the slave's size plus the same 64 KiB for control frames (the pump stops
//   at sendBufferBytes and may overshoot it by one frame). Past the bound the slave does not
//   read: the link is dropped ("slow_reader"), since queuing more would only grow the master.
// - Deadlines per state: a Hello within helloTimeoutMs of the accept (Pings do not count); a
//   frame once started within timeoutMs + size / minFrameRate (a trickled frame is not life).
// - Verification before a Hello: at most kPreHelloFrames frames (each at most 64 KiB) are
//   verified before the Hello; one more closes the link.
// The connection limits (how many links, with and without a Hello) are the Master's. The Master deletes
// closed sessions on a later loop turn (never inside their own callbacks).
//
// I/O: the session has no socket. It sends through a Link, hears from it through LinkEvents
// (onData/onClosed), and takes its time and timers from the SessionHost, so unit tests drive it
// with scripted frames and explicit time.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "base/result.h"

#include "possync_generated.h"
#include "sync/clock.h"
#include "sync/link.h"
#include "sync/policy.h"
#include "sync/session_host.h"
#include "sync/snapshot.h"
#include "wire/fragment.h"
#include "wire/frame.h"
#include "wire/messages.h"

namespace possync::sync {

// Room for control frames (Pong, Ping, Ack answers, Error) in a link's outbound bound.
inline constexpr size_t kControlQueueBytes = 64u << 10;

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
    std::string mode;     // "full" / "incremental"
    std::string problem;  // why nothing is sent although the slave is behind (empty: none)
    // During a FULL sync: chunks and records sent so far, records the snapshot announced.
    std::optional<uint64_t> fullChunks;
    uint64_t fullRecords = 0, fullAnnounced = 0;
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
    // Held: no snapshot chunk and no log entry goes out until release() (a board being removed
    // from the trust set gets nothing committed after its removal began).
    void hold() { held_ = true; }
    void release() {
        held_ = false;
        pump();
    }
    // Closes the link with an Error frame (code, text) when it still works.
    void close(wire::ErrorCode code, const std::string& why, const char* errorKind);
    // The host applied one of this slave's WriteRequests (submitRequest): answer it.
    void requestDone(const store::RequestOutcome& outcome);
    const std::string& device() const { return device_; }

    SessionState state() const { return state_; }
    bool closed() const { return state_ == SessionState::Closed; }
    uint64_t id() const { return id_; }
    // The slave's address without the port (per-address connection limits).
    const std::string& host() const { return host_; }
    // The slave's address with the port.
    const std::string& peer() const { return peer_; }
    // The most bytes this link may have queued before it is dropped (see "Bounds").
    size_t outboundLimit() const;
    SessionInfo info() const;

    // LinkEvents: bytes from the slave; the end of the link.
    void onData(Bytes data) override;
    void onClosed(Status status) override;
    void onSent() override;

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
    // The chunk nextChunk_ is wholly queued: counts it; false when it was the last (the
    // session then streams the log).
    bool chunkSent();
    // Nothing more can be sent to this slave (`why`): logged once, shown by info().
    void stuck(std::string why);
    bool send(std::vector<uint8_t> frame);
    bool sendPayload(const std::vector<uint8_t>& payload);
    // Sends `payload` (a message over the slave's frame limit) as Fragments from `offset`, while
    // the send buffer has room; advances `offset` (back to 0 once the last piece is queued).
    // Returns false when the link closed.
    bool sendFragments(Bytes payload, uint64_t& offset);
    // Whether a payload of `bytes` must travel as Fragments to this slave.
    bool needsFragments(size_t bytes) const { return bytes > peerMaxFrame_; }
    // Counts a queued write; drops the link when its queue passed outboundLimit() (then
    // returns false, the session is closed).
    bool sent(size_t frames, size_t bytes);
    void onTick();
    // Closes the link when a deadline of its state passed: the Hello's, the frame under way's.
    void checkDeadlines(uint64_t now);
    // The master's watched-table digest at its head, for a Welcome or Ping (none on a read
    // failure, or when the generation changed under this link).
    std::optional<wire::DigestAt> digestToAnnounce();

    SessionHost& master_;
    std::unique_ptr<Link> link_;
    std::unique_ptr<Timer> tick_;
    wire::FrameDecoder decoder_;
    uint64_t id_;
    SessionState state_ = SessionState::AwaitHello;
    bool closing_ = false;          // inside closeWith(): no second close from a nested step()
    uint64_t fullRecordsSent_ = 0;  // records of this FULL's chunks sent (console progress)
    bool quietClose_ = false;       // a failed trust handshake: logged by the master's guard, not here
    std::string device_;
    std::string peer_;
    std::string host_;
    uint64_t acceptedMs_ = 0;
    uint32_t preHelloFrames_ = 0;
    bool helloAccepted_ = false;  // outboundLimit() leaves the handshake's bound
    // When the first byte of the frame under way arrived (meaningful while the decoder holds a
    // partial frame).
    uint64_t frameStartMs_ = 0;
    bool framePartial_ = false;

    // FULL
    std::shared_ptr<Snapshot> snapshot_;
    std::vector<SharedFrame> chunksInFlight_;  // held until acknowledged
    uint32_t nextChunk_ = 0;
    uint32_t ackedChunks_ = 0;
    // The most chunks sent by any FULL on this link: an Ack for a chunk at or past it names a
    // chunk never sent; one between nextChunk_ and it is late, from a FULL restarted since.
    uint32_t chunksEverSent_ = 0;
    bool snapshotDone_ = false;
    bool lastChunkIsLast_ = false;  // the chunk being queued is the snapshot's last
    // Streaming
    uint64_t nextSeq_ = 0;     // next log seq to send
    uint64_t streamBase_ = 0;  // the position streaming started from (FULL: snapshot first seq)
    uint64_t ackedSeq_ = 0;
    uint64_t generation_ = 0;
    // Its ancestry (Welcome.lineage): Acks may name an ancestor generation for the seqs at or
    // before its fork (log entries keep the generation that wrote them).
    std::vector<store::Ancestor> ancestry_;
    int pin_ = 0;
    // Limits the slave announced in its Hello: frames above peerMaxFrame_ go as Fragments;
    // a message above peerMaxMessage_ cannot be sent at all (problem_ says so).
    uint32_t peerMaxFrame_ = wire::kDefaultMaxFrameBytes;
    uint64_t peerMaxMessage_ = 0;
    uint64_t fragOffset_ = 0;        // log entry nextSeq_ is partly sent (bytes sent so far)
    uint64_t chunkFragOffset_ = 0;   // FULL chunk nextChunk_ is partly sent
    SharedFrame chunkInProgress_;    // the chunk being sent as Fragments
    wire::Reassembler reassembler_;  // Fragments from the slave
    std::string problem_;
    bool held_ = false;  // hold()
    // Liveness
    uint64_t lastHeardMs_ = 0;
    uint64_t lastSentMs_ = 0;
    uint64_t rttMs_ = 0;
    std::deque<std::pair<uint64_t, uint64_t>> sentTimes_;  // (last seq of a batch, sent at)
    uint32_t requestsInFlight_ = 0;                        // WriteRequests submitted, not answered
    std::deque<uint64_t> requestBytes_;                    // their sizes, in the order submitted
    uint64_t requestBytesInFlight_ = 0;                    // their sum
};

}  // namespace possync::sync
