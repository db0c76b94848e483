// Daemon: wires one board's possyncd together: store, sync engine (master or replica),
// discovery, console, signals. Wiring and lifecycle only; the behaviour lives in the modules.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "uv/fs_event.h"
#include "uv/loop.h"
#include "uv/signal.h"
#include "uv/timer.h"

#include "daemon/options.h"
#include "store/store.h"
#include "sync/locator.h"
#include "sync/master.h"
#include "sync/replica.h"

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

    const Options& options() const { return options_; }
    store::Store& store() { return *store_; }
    sync::Master* master() { return master_.get(); }
    sync::Replica* replica() { return replica_.get(); }
    uint64_t startedMs() const { return startedMs_; }
    uint64_t loopNowMs() const { return loop_->nowMs(); }
    discovery::MasterFinder* finder() { return finder_.get(); }
    discovery::Advertiser* advertiser() { return advertiser_.get(); }

private:
    explicit Daemon(Options options);
    Status init();
    Status initMaster();
    Status initSlave();
    Status initConsole();
    void shutdown(int signum);
    void exitForRestart(const std::string& why);

    Options options_;
    std::unique_ptr<uv::Loop> loop_;
    std::unique_ptr<store::Store> store_;
    std::unique_ptr<sync::Master> master_;
    std::unique_ptr<discovery::Advertiser> advertiser_;
    std::unique_ptr<discovery::MasterFinder> finder_;
    std::unique_ptr<sync::Locator> locator_;
    std::unique_ptr<sync::Replica> replica_;
    uv::Owned<uv::FsEvent> outboxNotify_;  // slave: a POS process queued a write
    std::unique_ptr<DaemonBackend> backend_;
    std::unique_ptr<console::Interpreter> interpreter_;
    std::unique_ptr<console::SerialConsole> serialConsole_;
    std::unique_ptr<console::SocketConsole> socketConsole_;
    uv::Owned<uv::Signal> sigint_, sigterm_;
    uv::Owned<uv::Timer> exitTimer_;  // exitForRestart(): shutdown on the next loop turn
    uint64_t startedMs_ = 0;
    bool stopping_ = false;
    int exitCode_ = 0;  // 1 after a fault only a restart clears (a store LMDB cannot write)
};

}  // namespace possync::daemon
