// Master: accepts slave links and streams the board's watched tables to them.
//
// One Master per daemon, on the daemon's loop. It listens for slaves, keeps one MasterSession
// per link, wakes the sessions when the change log grows (another process's commit touches
// DIR/possync.notify; in-process commits call a store listener), shares FULL snapshots between
// sessions that start at the same time, and trims the log above what connected slaves still
// need (up to the hard limits of TrimLimits).
//
// Nothing here waits on another process: LMDB's writer lock is shared with the POS
// applications, which may hold it for seconds, so the loop only reads (read transactions never
// wait). A trim is decided from a read transaction and, when needed, committed by a worker on
// libuv's thread pool (uv::Work), at most one at a time; its completion wakes the sessions on
// the loop. Shutdown cancels a trim not yet started and Loop::close() waits for a running one.
// Slaves' forwarded writes (DESIGN.md §9) take the same way: Store::applyRequests on a worker,
// one batch at a time (what queued meanwhile, in the order received, committed together: group
// commit), the WriteResults and the wake-up on the loop.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "uv/fs_event.h"
#include "uv/loop.h"
#include "uv/tcp.h"
#include "uv/timer.h"
#include "uv/work.h"

#include "store/store.h"
#include "sync/master_session.h"
#include "sync/policy.h"
#include "sync/secure_link.h"
#include "sync/session_host.h"
#include "sync/snapshot.h"
#include "sync/stats.h"
#include "sync/uv_link.h"

namespace possync::sync {

struct MasterConfig {
    std::string listen = "0.0.0.0:7700";
    std::string storeId;
    std::string deviceId;
    uint64_t maxFrameBytes = 16u << 20;
    uint64_t heartbeatMs = 1000;
    uint64_t timeoutMs = 5000;
    uint64_t window = 64;  // change models in flight per slave
    // Outbound bytes queued per link: the pump stops at it; a link whose queue passes it by
    // more than one frame (peerMaxFrame + 64 KiB: control frames included) is dropped, and a
    // link without a Hello is dropped past 64 KiB (master_session.h, "Bounds").
    uint64_t sendBufferBytes = 8u << 20;
    uint64_t chunkBytes = 1u << 20;
    // A Hello must arrive this long after the accept (Pings do not count).
    uint64_t helloTimeoutMs = 3000;
    // A frame once started must complete within timeoutMs + its size / this rate (bytes/s).
    uint64_t minFrameRate = 32u << 10;
    // Links that completed a Hello, at most; links without a Hello get maxLinks / 4 more
    // (at least 2), and the oldest of them is dropped to make room for a new connection.
    uint64_t maxLinks = 64;
    // Per source address: links with a Hello, and links without one (each at most this many).
    uint64_t maxLinksPerAddress = 16;
    store::TrimLimits trim;
    uint64_t trimIntervalMs = 1000;

    // Disk faults (issue 11): a trim's meta-page write failed and LMDB refuses every later
    // transaction of this process (MDB_PANIC), reads included: only a restart helps (the
    // daemon exits 1 for its service manager). Unset: trims keep failing, logged.
    std::function<void(const std::string& why)> onStoreUnusable;

    // Failover (DESIGN.md §10). A slave's Hello named a term above this board's (a newer master
    // of the store exists): `who` says where it was seen. The daemon fences the board (store and
    // Master::fence); unset: only logged.
    std::function<void(uint64_t term, const std::string& who)> onHigherTerm;
    // Starts fenced with this reason (the store's `fenced`): every Hello is refused.
    std::string fenced;
    // Links authenticated and sealed (DESIGN.md §11): every accepted link runs the handshake
    // as responder first (sync/secure_link.h). Unset: plaintext links.
    std::optional<LinkSecurity> security;
    // A Hello from a pairing candidate (a sealed link whose key is not in the trust set): its
    // refusal text (sent as NOT_PAIRED). The daemon records the request under the Hello's device
    // id for `pair accept`. Unset: a plain refusal.
    std::function<std::string(const trust::PublicKey& key, const std::string& device,
                              const std::string& peer)>
        onCandidateHello;
};

class Master final : public SessionHost {
public:
    static Result<std::unique_ptr<Master>> create(uv::Loop& loop, store::Store& store, MasterConfig config);
    ~Master() override;
    Master(const Master&) = delete;
    Master& operator=(const Master&) = delete;

    uint16_t port() const { return listener_->port(); }
    const std::string& address() const { return listener_->address(); }
    uv::Loop& loop() { return loop_; }
    uint64_t generation() const { return generation_; }

    // SessionHost (see session_host.h).
    const MasterConfig& config() const override { return config_; }
    store::Store& store() override { return store_; }
    Stats& stats() override { return stats_; }
    Clock& clock() override { return time_; }
    Timers& timers() override { return time_; }
    uint64_t head() const override { return head_; }
    Result<MasterView> view() override;
    std::shared_ptr<Snapshot> snapshotForFull() override;
    Result<Chunk> chunk(Snapshot& snap, uint32_t number, bool& shared) override;
    // Called by a session that closed; it is deleted on a later loop turn.
    void sessionClosed(MasterSession* session) override;
    // The connection limits for a link whose Hello is accepted (maxLinks, maxLinksPerAddress).
    Status admitHello(const MasterSession& session) override;
    // Slave writes: queued, applied in batches on a worker, one batch at a time (the writer lock
    // may be held by a POS process for seconds), answered on the loop in the order submitted.
    void submitRequest(MasterSession& session, std::vector<uint8_t> frame) override;
    // A slave's Hello named `term`: above this board's term, config().onHigherTerm runs.
    void noteHelloTerm(const MasterSession& session, uint64_t term) override;

    // Failover: serve no slave from now on. Closes every linked slave's link (those still in
    // their handshake are refused when their Hello comes: admitHello says "fenced: <reason>").
    // The store's own fence (writers refused) is the caller's.
    void fence(const std::string& reason);
    const std::string& fenced() const { return fenced_; }
    uint64_t term() const { return term_; }

    std::vector<SessionInfo> sessions() const;
    // Trust (DESIGN.md §11): closes every link authenticated with `key` (a board removed from the
    // trust set); returns how many.
    size_t dropPeer(const trust::PublicKey& key, const std::string& why);
    // Before the removal of `key` commits: its links send nothing more (the removal itself, or a
    // change committed before dropPeer runs), until dropPeer or, when the removal failed,
    // releasePeer.
    void holdPeer(const trust::PublicKey& key);
    void releasePeer(const trust::PublicKey& key);
    // The key a session's link authenticated (nullopt: plaintext, or not authenticated yet).
    std::optional<trust::PublicKey> peerKey(uint64_t sessionId) const;
    bool isCandidate(const MasterSession& session) const override;
    std::string candidateHello(const MasterSession& session) override;
    // Wakes every session (new commits).
    void pumpAll();
    // Closes every link (daemon shutdown).
    void stop();

private:
    Master(uv::Loop& loop, store::Store& store, MasterConfig config)
        : loop_(loop), time_(loop), store_(store), config_(std::move(config)), fenced_(config_.fenced) {}
    Status start();
    void onConnection(uv::Owned<uv::TcpStream> stream);
    // Makes room for one more link without a Hello from `host`: drops the oldest such link
    // (of that host when it has its share, else of any host) when the budget is full.
    void makeRoomForPending(const std::string& host);
    uint64_t pendingBudget() const;
    void onCommitted();
    void reap();
    void trim();
    void onTrimmed(const Result<uint64_t>& removed);
    void storeUnusable(const Error& e);  // disk faults: MDB_PANIC -> config_.onStoreUnusable
    struct RequestJob;
    struct RequestBatch;
    void runRequests();
    void onRequestsApplied(const std::shared_ptr<RequestBatch>& batch);

    uv::Loop& loop_;
    UvTime time_;
    store::Store& store_;
    MasterConfig config_;
    Stats stats_;
    uv::Owned<uv::TcpListener> listener_;
    uv::Owned<uv::FsEvent> notify_;
    uv::Owned<uv::Timer> trimTimer_;
    uv::Owned<uv::Timer> reaper_;
    std::unique_ptr<uv::Work> trimWork_;                // the trim in flight, if any
    std::deque<std::shared_ptr<RequestJob>> requests_;  // slave writes waiting for the worker
    std::unique_ptr<uv::Work> requestWork_;             // the batch being applied, if any
    uv::Owned<uv::Timer> requestRetry_;                 // after a Busy store (a new table's handle)
    int commitListener_ = 0;
    std::vector<std::unique_ptr<MasterSession>> sessions_;
    std::map<uint64_t, const SecureLink*> secure_;  // session id -> its sealed link (owned by the session)
    std::shared_ptr<Snapshot> snapshot_;
    uint64_t nextSessionId_ = 1;
    uint64_t head_ = 0;
    uint64_t generation_ = 0;
    uint64_t term_ = 0;   // this board's failover term (store meta), read at start
    std::string fenced_;  // why this master serves no slave (empty: it serves)
    bool stopping_ = false;
};

}  // namespace possync::sync
