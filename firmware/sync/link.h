// Link: one connection between a master session and a replica, as the sync core sees it.
//
// The sync core (MasterSession, Replica) has no socket of its own (the dqlite way): it sends
// through a Link and is told about inbound bytes and the end of the link through LinkEvents.
// Production links adapt a uv::TcpStream (sync/uv_link.h); unit tests use a scripted link
// that records what was sent and can refuse writes.
//
// Rules for every Link implementation:
// - send*/shutdown never call back into LinkEvents synchronously: a write that fails at once
//   returns an error; one that fails later is reported by onClosed(error), once.
// - After close() no LinkEvents call is made again (queued writes may still go out).
// - A Link is never destroyed inside one of its own callbacks: its owner retires it and frees
//   it on a later loop turn (deferred deletion, as the Master does with closed sessions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

#include "sync/locator.h"

namespace possync::sync {

// Frames a peer may send before the handshake is done (master: before its Hello; slave: before
// the master's Welcome). A genuine peer sends its handshake message first; a Ping or two from a
// slow starter are tolerated. Bounds the verification CPU an unauthenticated peer can spend:
// kPreHelloFrames frames of at most kHandshakeMaxFrameBytes (64 KiB) each.
inline constexpr uint32_t kPreHelloFrames = 4;

// A length-prefixed wire frame, shared between sessions (the same FULL chunk to many slaves).
using SharedFrame = std::shared_ptr<const std::vector<uint8_t>>;

// What a link reports to its owner.
class LinkEvents {
public:
    virtual ~LinkEvents() = default;
    // Bytes received, valid only during the call (any split of the stream).
    virtual void onData(Bytes data) = 0;
    // The link ended: ok = the peer closed its side, an error = read or write failure.
    virtual void onClosed(Status status) = 0;
    // A queued write went out (queuedBytes() went down): a sender held back by its queue
    // bound may go on. Never called inside send*.
    virtual void onSent() {}
};

class Link {
public:
    virtual ~Link() = default;
    // Starts delivering events. Errc::Closed (or Io) when the link cannot read.
    virtual Status start(LinkEvents& events) = 0;
    // Queue one frame (header included). Errc::Closed/Io when the link cannot take it.
    virtual Status send(std::vector<uint8_t> frame) = 0;
    // Queue a frame shared with other links; nothing is copied.
    virtual Status sendShared(SharedFrame frame) = 0;
    // Queue several frames as one write.
    virtual Status sendv(std::vector<std::vector<uint8_t>> frames) = 0;
    // Bytes queued that the peer has not taken yet, with what each queued write costs besides
    // (flow control compares this to a limit; a peer whose queue passes its bound is dropped).
    virtual size_t queuedBytes() const = 0;
    // Half-close the sending side once queued frames are out.
    virtual void shutdown() = 0;
    // Stop reading and reporting; the connection itself is released when the Link is freed.
    virtual void close() = 0;
    // The peer, for logs ("127.0.0.1:43210").
    virtual const std::string& peerName() const = 0;
    // True while the link's own opening exchange (the trust handshake of a SecureLink) is not
    // done: a close now is the handshake's failure, which its owner logs (rate-limited).
    virtual bool handshaking() const { return false; }
};

// A connection attempt in progress; destroying it cancels the attempt (its callback is then
// never called). It may be destroyed inside its own callback.
class PendingLink {
public:
    virtual ~PendingLink() = default;
};

// How a Replica opens a link to its master.
class Connector {
public:
    using Callback = std::function<void(Result<std::unique_ptr<Link>>)>;
    virtual ~Connector() = default;
    // Starts connecting to `target`; `done` runs once (later, never inside this call) unless
    // the returned attempt is destroyed first. An error return means `done` is never called.
    virtual Result<std::unique_ptr<PendingLink>> connect(const MasterTarget& target, Callback done) = 0;
};

}  // namespace possync::sync
