// SecureLink: a Link that opens with the trust handshake and then seals every frame (DESIGN.md §11).
//
// It wraps the link that carries the bytes (a UvLink in production, a scripted link in tests)
// and is itself a Link, so MasterSession and Replica neither know nor care: what they send is
// held until the handshake is done, then sealed; what they receive was opened and checked
// before they see a byte of it. On the wire everything is a record:
//
//   record = payload length u32 LE | payload
//
// The first records are the handshake's messages (trust/handshake.h: at most 156 bytes each,
// a longer one is refused before it is buffered); every later record is one whole frame of
// the sync protocol sealed with the direction's stream (trust/secure_stream.h: 17 bytes more),
// at most the frame limit plus the frame header and the seal. The Hello and the Welcome are
// already sealed: a peer that does not hold a key the other side trusts sees no store id, no
// table name and no data. A record that fails (a refused key, a bad signature, a tampered,
// replayed, reordered or cut record, a length over the limit) ends the link with an error
// through onClosed, before anything of it reaches the session.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sync/link.h"
#include "trust/handshake.h"
#include "trust/identity.h"

namespace possync::sync {

// What a board needs to run its links authenticated and sealed: its own key and its rule for the
// peer's (the store's trust set, DESIGN.md §11). MasterConfig/ReplicaConfig carry one.
struct LinkSecurity {
    trust::Identity identity;
    trust::PeerCheck check;
    uint32_t flags = 0;  // an initiator's M1 flags (kFlagPairing)
    // Initiator: M1's flags for each new link (pairing while this board is not a member); unset:
    // `flags`.
    std::function<uint32_t()> flagsNow;
    // Responder: the check for one link from `peer` (its address), so that a pairing request can
    // name where it came from; unset: `check`.
    std::function<trust::PeerCheck(const std::string& peer)> checkFor;
    // Responder: false closes a new connection from `host` before any handshake (the rate limit
    // on failed handshakes); unset: every connection is taken.
    std::function<bool(const std::string& host)> admit;
    // Either side: a handshake with `peer` failed (logged and counted by the owner, rate-limited,
    // never with key material).
    std::function<void(const std::string& peer, const Error& why)> failed;
};

// The bytes a record's length prefix takes.
inline constexpr size_t kRecordHeaderBytes = 4;

class SecureLink final : public Link, private LinkEvents {
public:
    // `maxFrameBytes`: the largest frame payload the sessions accept (their decoder's limit);
    // a sealed record may be that plus the frame header and the seal.
    SecureLink(std::unique_ptr<Link> inner, trust::Handshake handshake, uint32_t maxFrameBytes);
    ~SecureLink() override;
    SecureLink(const SecureLink&) = delete;
    SecureLink& operator=(const SecureLink&) = delete;

    Status start(LinkEvents& events) override;
    // Before the handshake is done frames are held (and count in queuedBytes); then sealed.
    Status send(std::vector<uint8_t> frame) override;
    Status sendShared(SharedFrame frame) override;
    Status sendv(std::vector<std::vector<uint8_t>> frames) override;
    size_t queuedBytes() const override;
    void shutdown() override;
    void close() override;
    const std::string& peerName() const override { return inner_->peerName(); }

    bool authenticated() const { return ready_; }
    bool handshaking() const override { return !ready_; }
    // Called once when the handshake fails (a refused key, a bad message, the peer leaving
    // before it was done), before onClosed reaches the owner.
    void setHandshakeFailed(std::function<void(const Error&)> fn) { handshakeFailed_ = std::move(fn); }
    // The peer's long-term key and how this side stands towards it, once the peer's first
    // handshake message was accepted.
    const std::optional<trust::PublicKey>& peerKey() const { return handshake_.peerKey(); }
    trust::PeerStanding standing() const { return handshake_.standing(); }
    // Bytes this link sealed and opened (records' payloads), for the console's counters.
    uint64_t sealedBytes() const { return sealedBytes_; }
    uint64_t openedBytes() const { return openedBytes_; }

private:
    void onData(Bytes data) override;
    void onClosed(Status status) override;
    void onSent() override;
    // One whole record from the peer.
    Status onRecord(Bytes payload);
    Status sendRecordPlain(const std::vector<uint8_t>& payload);
    // Appends the record of one sealed frame to `out`.
    void sealRecord(Bytes frame, std::vector<uint8_t>& out);
    Status flushHeld();
    // Ends the link with `error`: the inner link is closed and the owner told once.
    void fail(Error error);

    std::unique_ptr<Link> inner_;
    trust::Handshake handshake_;
    std::function<void(const Error&)> handshakeFailed_;
    uint32_t maxRecordBytes_;
    LinkEvents* events_ = nullptr;
    bool ready_ = false;
    bool closed_ = false;
    bool shutdownHeld_ = false;
    std::unique_ptr<trust::Sealer> sealer_;
    std::unique_ptr<trust::Opener> opener_;
    std::vector<std::vector<uint8_t>> held_;  // frames sent before the handshake was done
    size_t heldBytes_ = 0;
    std::vector<uint8_t> inbox_;  // bytes of records not yet whole
    size_t inboxStart_ = 0;       // the first unconsumed byte of inbox_
    std::vector<uint8_t> plain_;  // what the records of one read opened to (one onData)
    uint64_t sealedBytes_ = 0;
    uint64_t openedBytes_ = 0;
};

// A Connector whose links are SecureLinks (initiator side) over the links of another.
class SecureConnector final : public Connector {
public:
    SecureConnector(Connector& inner, LinkSecurity security, uint32_t maxFrameBytes)
        : inner_(inner), security_(std::move(security)), maxFrameBytes_(maxFrameBytes) {}
    Result<std::unique_ptr<PendingLink>> connect(const MasterTarget& target, Callback done) override;

private:
    Connector& inner_;
    LinkSecurity security_;
    uint32_t maxFrameBytes_;
};

}  // namespace possync::sync
