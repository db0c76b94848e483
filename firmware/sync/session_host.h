// SessionHost: what a MasterSession needs from its Master. The Master implements it over the
// real listener; unit tests implement it over a scratch store to drive sessions without a
// socket (tests/unit/sync/fixture.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"

#include "store/store.h"
#include "sync/clock.h"
#include "sync/policy.h"
#include "sync/snapshot.h"
#include "sync/stats.h"

namespace possync::sync {

struct MasterConfig;
class MasterSession;

class SessionHost {
public:
    virtual ~SessionHost() = default;
    virtual const MasterConfig& config() const = 0;
    virtual store::Store& store() = 0;
    virtual Stats& stats() = 0;
    virtual Clock& clock() = 0;
    virtual Timers& timers() = 0;
    // The newest head known (no store read).
    virtual uint64_t head() const = 0;
    // The master's position and log bounds, read now.
    virtual Result<MasterView> view() = 0;
    // The snapshot a new FULL session should use (shared while it can be joined).
    virtual std::shared_ptr<Snapshot> snapshotForFull() = 0;
    // A chunk of `snap`, counting whether it was shared.
    virtual Result<Chunk> chunk(Snapshot& snap, uint32_t number, bool& shared) = 0;
    // The session closed; the host deletes it on a later loop turn, never inside this call.
    virtual void sessionClosed(MasterSession* session) = 0;
    // A Hello of `session` is about to be accepted: an error (Errc::Busy or Refused, with the
    // reason) refuses it because of the connection limits. The default admits every link.
    virtual Status admitHello(const MasterSession& session) {
        (void)session;
        return {};
    }
    // Trust (DESIGN.md §11): a Hello of `session` whose peer is only a pairing candidate (its key
    // is not in the store's trust set). Returns the refusal's text (sent as NOT_PAIRED: the
    // candidate gets no Welcome, no table name, no data); the default refuses with a plain one.
    virtual std::string candidateHello(const MasterSession& session) {
        (void)session;
        return "this board is not paired with the store";
    }
    // Whether `session`'s peer is only a pairing candidate (the default: links are not sealed,
    // every peer is a member).
    virtual bool isCandidate(const MasterSession& session) const {
        (void)session;
        return false;
    }
    // A verified WriteRequest frame from `session`'s slave: apply it through the store
    // (Store::applyRequest) and answer with session.requestDone(), in the order submitted.
    // The Master does it on a worker thread (it may wait for LMDB's writer lock); this default
    // applies it at once (unit tests).
    virtual void submitRequest(MasterSession& session, std::vector<uint8_t> frame);
    // Failover (DESIGN.md §10): `session`'s Hello carried `term` (Hello.term, the highest term of
    // the store its slave has seen), higher than this master's: a newer master of the store
    // exists. MasterSession::onHello calls it, then refuses the Hello (SUPERSEDED); the Master
    // fences itself. The default ignores it (unit tests record it).
    virtual void noteHelloTerm(const MasterSession& session, uint64_t term) {
        (void)session;
        (void)term;
    }
};

}  // namespace possync::sync
