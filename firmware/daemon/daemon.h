// Daemon: wires one board's possyncd together: store, sync engine (master or replica),
// discovery, console, signals. Wiring and lifecycle only; the behaviour lives in the modules.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "uv/fs_event.h"
#include "uv/loop.h"
#include "uv/signal.h"
#include "uv/timer.h"
#include "uv/work.h"

#include "console/backend.h"
#include "daemon/auto_promote.h"
#include "daemon/options.h"
#include "daemon/pairing.h"
#include "store/store.h"
#include "store/trust_set.h"
#include "sync/locator.h"
#include "sync/master.h"
#include "sync/replica.h"
#include "trust/identity.h"

namespace possync::discovery {
class Advertiser;
class MasterFinder;
}  // namespace possync::discovery
namespace possync::console {
class Interpreter;
class SerialConsole;
class SocketConsole;
}  // namespace possync::console

namespace possync::daemon {

class DaemonBackend;

class Daemon final {
public:
    static Result<std::unique_ptr<Daemon>> create(const Options& options);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Runs until SIGINT/SIGTERM; returns the process exit code.
    int run();
    // run() returned because the role changed in the data directory (promote, rejoin): the caller
    // starts the program again (main.cc: execv of itself) so the new role comes from there.
    bool restartRequested() const { return restart_; }

    const Options& options() const { return options_; }
    // The role this daemon runs as: --role, or the data directory's after a failover (role.h).
    store::Role role() const { return role_; }
    store::Store& store() { return *store_; }
    sync::Master* master() { return master_.get(); }
    sync::Replica* replica() { return replica_.get(); }
    const console::SerialConsole* serialConsole() const { return serialConsole_.get(); }
    const console::SocketConsole* socketConsole() const { return socketConsole_.get(); }
    uint64_t startedMs() const { return startedMs_; }
    uint64_t loopNowMs() const { return loop_->nowMs(); }
    discovery::MasterFinder* finder() { return finder_.get(); }
    discovery::Advertiser* advertiser() { return advertiser_.get(); }
    // The fingerprint of this board's key (board.key in its data directory).
    std::string keyFingerprint() const { return identity_ ? identity_->fingerprint() : std::string(); }
    // Master: the Avahi browse that watches for a newer master of its store (none when static).
    discovery::MasterFinder* watcher() { return watcher_.get(); }

    // --- Failover (DESIGN.md §10), from the console (failover_ops.cc) ---
    // Slave: becomes master of a new generation (Store::promote, off the loop), answers through
    // `done`, then restarts as master. Refused at once on a master, during a FULL sync, without
    // --listen, and -- unless `confirmed` -- while a master of the store still looks alive (the
    // error says what is seen).
    void promote(bool confirmed, console::NoteDone done);
    // Master (fenced or not): exports the log of its generation to a file in the data directory,
    // becomes a slave (Store::rejoinAsSlave), off the loop; answers the note through `done`, then
    // restarts as a slave.
    void rejoin(console::NoteDone done);
    // Master: why it is fenced (empty: it is not).
    std::string fencedReason() const;

    // --- Trust (DESIGN.md §11), from the console (trust_ops.cc) ---
    // Master: `pair accept|reject WHO`, `pair open SECONDS`, `pair close`, `pair remove WHO`;
    // answers a one-line note through `done` (later for the ones that write the trust set).
    void pair(const std::string& verb, const std::string& who, console::NoteDone done);
    // The trust set, pending requests and boards still to upgrade (master); the replicated set and
    // this board's pairing state (slave).
    Result<console::PairInfo> pairList();
    // One line for `status`.
    std::string trustStatus();

private:
    explicit Daemon(Options options);
    Status init();
    Status initMaster();
    Status initSlave();
    Status initConsole();
    void shutdown(int signum);
    // SIGHUP: the command line and config file read again; the log level applies at once, any
    // other change is logged as waiting for the next restart. A file that does not load changes
    // nothing (logged).
    void reload();
    void exitForRestart(const std::string& why);
    // Master: watch Avahi for a master of this store of a higher term (or one winning a tie).
    void startWatcher();
    void reviewWatched();
    // Master: a newer master of the store exists: fence store and Master, stop advertising.
    void fence(uint64_t term, const std::string& reason);
    // Shuts down after the console's answer left, then run() returns with restartRequested().
    void restartSoon(const std::string& why);
    // What says a master of the store is still alive (empty: nothing does).
    std::string liveMaster();
    // Runs a failover operation's store work on the thread pool, `done` on the loop; one at a
    // time (Busy while one runs).
    Status runOffLoop(std::function<void()> work, std::function<void()> done);
    // trust_ops.cc
    Status initTrust();
    sync::LinkSecurity linkSecurity();
    Result<trust::PeerStanding> checkSlave(const trust::PublicKey& key, uint32_t flags,
                                           const std::string& peer);
    Result<trust::PeerStanding> checkMaster(const trust::PublicKey& key);
    void handshakeFailed(const std::string& peer, const Error& why);
    Error trustReadFailed(Error e);
    std::string onCandidateHello(const trust::PublicKey& key, const std::string& device);
    bool isMember(const trust::PublicKey& key);
    // Discovery's key filter: whether an announced master's fingerprint is one this board trusts.
    bool trustedFingerprint(const std::string& fingerprint);
    Result<std::optional<store::TrustMember>> findMember(const std::string& who);
    // Writes the trust set on the thread pool; `done` on the loop.
    void writeTrust(std::function<Status(store::WriteTxn&)> change, std::function<void(Status)> done);

    Options options_;
    store::Role role_ = store::Role::Master;
    std::unique_ptr<uv::Loop> loop_;
    std::unique_ptr<store::Store> store_;
    std::unique_ptr<trust::Identity> identity_;
    std::unique_ptr<PairingDesk> desk_;                  // master: pairing requests, the window
    HandshakeGuard guard_;                               // master: failed handshakes per address
    std::optional<trust::PublicKey> provisionedMaster_;  // slave: --master-key
    std::optional<trust::PublicKey> lastMasterKey_;      // slave: the key its last master presented
    std::string rogue_;                                  // slave: the last master refused, and why
    uint64_t rogueMs_ = 0;
    std::vector<std::unique_ptr<uv::Work>> trustWork_;  // trust set writes in flight
    std::unique_ptr<AutoPromoter> autoPromoter_;        // slave with --auto-promote-after
    std::unique_ptr<uv::Work> failoverWork_;            // promote, rejoin or fence in the data directory
    std::unique_ptr<sync::Master> master_;
    std::unique_ptr<discovery::Advertiser> advertiser_;
    std::unique_ptr<discovery::MasterFinder> finder_;
    std::unique_ptr<discovery::MasterFinder> watcher_;
    std::unique_ptr<sync::Locator> locator_;
    std::unique_ptr<sync::Replica> replica_;
    uv::Owned<uv::FsEvent> outboxNotify_;  // slave: a POS process queued a write
    std::unique_ptr<DaemonBackend> backend_;
    std::unique_ptr<console::Interpreter> interpreter_;
    std::unique_ptr<console::SerialConsole> serialConsole_;
    std::unique_ptr<console::SocketConsole> socketConsole_;
    uv::Owned<uv::Signal> sigint_, sigterm_, sighup_;
    uv::Owned<uv::Timer> exitTimer_;  // exitForRestart(), restartSoon(): shutdown on a later loop turn
    bool restart_ = false;            // restartSoon(): main starts the program again
    uint64_t startedMs_ = 0;
    bool stopping_ = false;
    int exitCode_ = 0;  // 1 after a fault only a restart clears (a store LMDB cannot write)
};

}  // namespace possync::daemon
