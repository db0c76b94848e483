#include "daemon/daemon.h"

#include <sys/stat.h>

#include <csignal>

#include "base/bytes.h"
#include "log/log.h"
#include "uv/timer.h"

#include "console/interpreter.h"
#include "console/serial_console.h"
#include "console/socket_console.h"
#include "daemon/console_backend.h"
#include "daemon/finder_locator.h"
#include "daemon/role.h"
#include "discovery/advertiser.h"
#include "discovery/master_finder.h"
#include "possync_config.h"

namespace possync::daemon {

POSSYNC_LOG_CATEGORY(Daemon)

namespace {

// The meta of an existing data directory, read without changing anything (nullopt: none yet, or
// unreadable -- the real open that follows reports why).
std::optional<store::Meta> peekMeta(const std::string& dir) {
    struct stat st {};
    if (::stat((dir + "/data.mdb").c_str(), &st) != 0) return std::nullopt;
    store::StoreOptions ro;
    ro.readOnly = true;
    ro.create = false;
    auto s = store::Store::open(dir, ro);
    if (!s) return std::nullopt;
    auto m = (*s)->meta();
    if (!m) return std::nullopt;
    return std::move(*m);
}

// How long the console's answer gets to leave before a restart closes its socket.
constexpr uint64_t kRestartDelayMs = 200;

}  // namespace

Result<std::unique_ptr<Daemon>> Daemon::create(const Options& options) {
    std::unique_ptr<Daemon> d(new Daemon(options));
    POSSYNC_TRY(d->init());
    return d;
}

Daemon::Daemon(Options options) : options_(std::move(options)) {}

Daemon::~Daemon() = default;

Status Daemon::init() {
    auto loop = uv::Loop::create();
    if (!loop) return loop.takeError();
    loop_ = std::move(*loop);
    startedMs_ = loop_->nowMs();

    // The role first (DESIGN.md §10): after a failover the data directory's wins over --role,
    // and the store is opened per role (writeMap), so its meta is read from a read-only open.
    const store::Role requested = options_.role == "master" ? store::Role::Master : store::Role::Slave;
    std::optional<store::Meta> held = peekMeta(options_.data);
    RoleChoice choice = chooseRole(requested, held ? &*held : nullptr);
    role_ = choice.role;
    if (!choice.note.empty()) {
        if (role_ != requested)
            LOG(Daemon, Warning) << choice.note;
        else
            LOG(Daemon, Info) << choice.note;
    }
    if (role_ == store::Role::Master && !options_.master.empty())
        LOG(Daemon, Info) << "--master " << options_.master << " is not used while this board is the master";
    if (role_ == store::Role::Slave && !options_.tables.empty())
        LOG(Daemon, Info) << "--tables is not used while this board is a slave (the master's watched tables "
                             "replicate)";
    if (role_ == store::Role::Slave && options_.role == "master" && options_.master.empty() &&
        (options_.discovery == "static" || !POSSYNC_HAVE_AVAHI))
        return makeError(Errc::InvalidArgument,
                         "this board is a slave now (" + choice.note +
                             ") and static discovery needs --master HOST:PORT: add the store's master to its "
                             "configuration");
    if (choice.fromData && role_ == store::Role::Master && !options_.listenSet)
        LOG(Daemon, Warning) << "no --listen for this promoted board: listening on the default "
                             << options_.listen;

    store::StoreOptions so;
    so.mapSize = size_t(options_.mapSizeMiB) << 20;
    if (options_.mapSizeMiB && (so.mapSize >> 20) != options_.mapSizeMiB)
        return makeError(Errc::TooLarge, "--map-size is too large for this board");
    so.noSync = !options_.sync;
    so.writeMap = role_ == store::Role::Slave;  // a FULL sync's transaction must not live in the heap
    so.deviceId = options_.device;
    // A slave keeps the master's log (it may be promoted), trimmed as a master's would be.
    so.slaveTrim.maxEntries = options_.logMaxEntries;
    so.slaveTrim.maxBytes = options_.logMaxBytes;
    so.slaveTrim.hardMaxEntries = options_.logHardMaxEntries;
    so.slaveTrim.hardMaxBytes = options_.logHardMaxBytes;
    auto s = store::Store::open(options_.data, so);
    if (!s) return s.takeError();
    store_ = std::move(*s);
    if (!options_.device.empty()) {
        auto m = store_->meta();
        if (m && m->device != options_.device) POSSYNC_TRY(store_->setDeviceId(options_.device));
    }
    POSSYNC_TRY(store_->setRole(role_));
    // The board's key (DESIGN.md §11): made on its first start, next to the data it guards;
    // the directory is this daemon's alone from here (main took its DirLock before Daemon::init).
    auto identity = trust::Identity::loadOrCreate(options_.data);
    if (!identity) return identity.takeError();
    identity_ = std::make_unique<trust::Identity>(std::move(*identity));
    LOG(Daemon, Info) << "board key: fingerprint " << identity_->fingerprint();
    POSSYNC_TRY(initTrust());

    auto onSignal = [this](int signum) { shutdown(signum); };
    auto sigint = uv::Signal::create(*loop_, SIGINT, onSignal);
    if (!sigint) return sigint.takeError();
    sigint_ = std::move(*sigint);
    auto sigterm = uv::Signal::create(*loop_, SIGTERM, onSignal);
    if (!sigterm) return sigterm.takeError();
    sigterm_ = std::move(*sigterm);
    auto sighup = uv::Signal::create(*loop_, SIGHUP, [this](int) { reload(); });
    if (!sighup) return sighup.takeError();
    sighup_ = std::move(*sighup);
    // A peer closing mid-write must give EPIPE, not kill the daemon.
    std::signal(SIGPIPE, SIG_IGN);

    POSSYNC_TRY(role_ == store::Role::Master ? initMaster() : initSlave());
    return initConsole();
}

Status Daemon::initConsole() {
    backend_ = std::make_unique<DaemonBackend>(*this);
    interpreter_ = std::make_unique<console::Interpreter>(*backend_);
    if (!options_.serial.empty()) {
        console::SerialConsole::Options so;
        so.path = options_.serial;
        so.baud = options_.baud;
        auto sc = console::SerialConsole::create(*loop_, *interpreter_, so);
        if (!sc)
            return makeError(sc.error().code, "console on " + options_.serial + ": " + sc.error().message);
        serialConsole_ = std::move(*sc);
        LOG(Daemon, Info) << "console on serial port " << options_.serial << " at " << options_.baud
                          << " baud";
    }
    if (!options_.console.empty()) {
        console::SocketConsole::Options so;
        so.path = options_.console;
        so.maxSessions = options_.consoleSessions;
        so.idleMs = options_.consoleIdleMs;
        auto sc = console::SocketConsole::create(*loop_, *interpreter_, so);
        if (!sc)
            return makeError(sc.error().code, "console on " + options_.console + ": " + sc.error().message);
        socketConsole_ = std::move(*sc);
        LOG(Daemon, Info) << "console on socket " << options_.console;
    }
    return {};
}

Status Daemon::initMaster() {
    if (!options_.tables.empty() || !options_.config.empty()) {
        auto tables = store::parseTableList(options_.tables);
        if (!tables) return tables.takeError();
        if (!options_.tables.empty()) POSSYNC_TRY(store_->setWatchedTables(*tables));
    }
    auto meta = store_->meta();
    if (!meta) return meta.takeError();
    if (meta->watched.empty())
        LOG(Daemon, Warning) << "no watched tables: nothing replicates until --tables names some";
    sync::MasterConfig mc;
    mc.listen = options_.listen;
    mc.storeId = options_.store;
    mc.deviceId = meta->device;
    mc.maxFrameBytes = options_.maxFrameBytes;
    mc.heartbeatMs = options_.heartbeatMs;
    mc.timeoutMs = options_.timeoutMs;
    mc.window = options_.window;
    mc.sendBufferBytes = options_.sendBufferBytes;
    mc.helloTimeoutMs = options_.helloTimeoutMs;
    mc.minFrameRate = options_.minFrameRate;
    mc.maxLinks = options_.maxLinks;
    mc.maxLinksPerAddress = options_.maxLinksPerAddress;
    mc.chunkBytes = options_.chunkBytes;
    mc.trim.maxEntries = options_.logMaxEntries;
    mc.trim.maxBytes = options_.logMaxBytes;
    mc.trim.hardMaxEntries = options_.logHardMaxEntries;
    mc.trim.hardMaxBytes = options_.logHardMaxBytes;
    mc.onStoreUnusable = [this](const std::string& why) { exitForRestart(why); };
    // Failover: a slave's Hello that names a higher term fences this board (DESIGN.md §10).
    mc.onHigherTerm = [this](uint64_t term, const std::string& who) {
        fence(term, "store " + options_.store + " has a master of term " + std::to_string(term) +
                        " (seen in " + who + ")");
    };
    mc.fenced = meta->fenced;
    mc.security = linkSecurity();
    mc.onCandidateHello = [this](const trust::PublicKey& key, const std::string& device, const std::string&) {
        return onCandidateHello(key, device);
    };
    // Requests this board queued while it was a slave (a crash between promote and its drain):
    // applied here now, exactly once, as the new master applies everyone's.
    if (meta->outboxCount && meta->fenced.empty()) {
        auto drained = store_->drainOwnOutbox();
        if (!drained)
            LOG(Daemon, Warning) << "this board's own queued requests: " << drained.error().message;
        else
            LOG(Daemon, Info) << "applied " << *drained << " request(s) this board queued as a slave";
    }
    auto m = sync::Master::create(*loop_, *store_, mc);
    if (!m) return m.takeError();
    master_ = std::move(*m);
    // Scripts and tests read the bound port from this line.
    LOG(Daemon, Info) << "listening on " << master_->address();
    if (!meta->fenced.empty()) {
        // Not advertised and serving no slave: the operator runs rejoin (README).
        LOG(Daemon, Error) << "FENCED: " << meta->fenced << "; serving no slave, refusing writes: run rejoin";
        return {};
    }
    if (options_.discovery != "static") {
        discovery::AdvertiserOptions ao;
        ao.storeId = options_.store;
        ao.deviceId = meta->device;
        ao.port = master_->port();
        ao.generation = master_->generation();
        ao.term = meta->term;
        ao.keyFingerprint = identity_->fingerprint();
        auto adv = discovery::Advertiser::create(loop_->raw(), ao);
        if (!adv) {
            // A master without Avahi still serves slaves that are given its address.
            LOG(Daemon, Warning) << "not advertised on the LAN: " << adv.error().message;
        } else {
            advertiser_ = std::move(*adv);
        }
        startWatcher();
    }
    return {};
}

void Daemon::startWatcher() {
    auto w =
        discovery::MasterFinder::create(loop_->raw(), discovery::DiscoveryMode::Avahi, options_.store, "");
    if (!w) {
        LOG(Daemon, Warning) << "not watching for a newer master of the store: " << w.error().message;
        return;
    }
    watcher_ = std::move(*w);
    // Only a member of the store's trust set can supersede this master: a rogue board announcing
    // the store at a higher term fences nobody.
    watcher_->setKeyFilter([this](const std::string& fp) { return trustedFingerprint(fp); });
    watcher_->setChangeCallback([this](const discovery::Change&) { reviewWatched(); });
    reviewWatched();
}

void Daemon::reviewWatched() {
    if (!watcher_ || !master_ || !master_->fenced().empty()) return;
    auto meta = store_->meta();
    if (!meta) return;
    if (auto s = supersededBy(options_.store, meta->device, meta->term, watcher_->candidates()))
        fence(s->term, s->reason);
}

void Daemon::restartSoon(const std::string& why) {
    restart_ = true;
    LOG(Daemon, Warning) << why << ": restarting to take the role from the data directory";
    auto timer = uv::Timer::create(*loop_);
    if (!timer) {
        shutdown(0);
        return;
    }
    exitTimer_ = std::move(*timer);
    exitTimer_->start(kRestartDelayMs, 0, [this] { shutdown(0); });
}

Status Daemon::initSlave() {
    auto meta = store_->meta();
    if (!meta) return meta.takeError();
    std::string mode =
        options_.discovery.empty() ? (options_.master.empty() ? "avahi" : "static") : options_.discovery;
    auto parsedMode = discovery::parseDiscoveryMode(mode);
    if (!parsedMode) return parsedMode.takeError();
    auto finder = discovery::MasterFinder::create(loop_->raw(), *parsedMode, options_.store, options_.master);
    if (!finder) return finder.takeError();
    finder_ = std::move(*finder);
    // Masters announcing a term below the highest this board has seen are superseded (DESIGN.md
    // §10). Not for a static --master: it announces no term (its candidate reads as term 0), and
    // the address is the operator's choice.
    if (finder_->mode() == discovery::DiscoveryMode::Avahi) finder_->setMinTerm(meta->highestTermSeen);
    // A master whose announced key this board does not trust is no candidate (DESIGN.md §11).
    finder_->setKeyFilter([this](const std::string& fp) { return trustedFingerprint(fp); });
    locator_ = std::make_unique<FinderLocator>(*finder_);
    sync::ReplicaConfig rc;
    rc.storeId = options_.store;
    rc.deviceId = meta->device;
    rc.maxFrameBytes = options_.maxFrameBytes;
    rc.heartbeatMs = options_.heartbeatMs;
    rc.timeoutMs = options_.timeoutMs;
    rc.backoffMinMs = options_.backoffMinMs;
    rc.backoffMaxMs = options_.backoffMaxMs;
    rc.sendBufferBytes = options_.sendBufferBytes;
    rc.helloTimeoutMs = options_.helloTimeoutMs;
    rc.minFrameRate = options_.minFrameRate;
    rc.acceptNewGeneration = options_.newGeneration == NewGenerationPolicy::Accept;
    rc.onStoreUnusable = [this](const std::string& why) { exitForRestart(why); };
    rc.security = linkSecurity();
    auto r = sync::Replica::create(*loop_, *store_, *locator_, rc);
    if (!r) return r.takeError();
    replica_ = std::move(*r);
    // Slave writes (DESIGN.md §9): the bound the writers check, and a wake-up when a POS
    // process queues a request (its commit touches DIR/possync.notify).
    if (meta->outboxMaxBytes != options_.outboxMaxBytes)
        POSSYNC_TRY(store_->setOutboxMaxBytes(options_.outboxMaxBytes));
    auto notify = uv::FsEvent::create(*loop_, store_->notifyPath(), [this](const Status& st) {
        if (st.ok() && replica_) replica_->outboxChanged();
    });
    if (!notify) return notify.takeError();
    outboxNotify_ = std::move(*notify);
    if (meta->outboxCount)
        LOG(Daemon, Info) << meta->outboxCount << " write request(s) (" << meta->outboxBytes
                          << " bytes) queued for the master";
    if (options_.autoPromoteAfterS) {
        AutoPromoter::Hooks hooks;
        hooks.linked = [this] {
            auto s = replica_->state();
            return s == sync::ReplicaState::Streaming || s == sync::ReplicaState::ReceivingFull ||
                   s == sync::ReplicaState::FullReplay;
        };
        hooks.holdReason = [this]() -> std::string {
            if (restart_) return "this board is restarting";
            auto m = store_->meta();
            if (!m) return "cannot read this board's state: " + m.error().message;
            if (!m->synced) return "this board never completed a FULL sync: its data is not the store's";
            if (replica_->state() == sync::ReplicaState::WaitingOperator)
                return "waiting for the operator: " + replica_->status().waitingReason;
            return {};
        };
        hooks.promote = [this](console::NoteDone done) { promote(true, std::move(done)); };
        auto ap = AutoPromoter::create(*loop_, options_.autoPromoteAfterS * 1000, std::move(hooks));
        if (!ap) return ap.takeError();
        autoPromoter_ = std::move(*ap);
    }
    return {};
}

void Daemon::exitForRestart(const std::string& why) {
    // Reopening the LMDB environment is what a restart does; the packaged unit restarts us
    // (Restart=on-failure), a slave resumes from its durable position.
    LOG(Daemon, Error) << why << "; exiting (status 1) to be restarted";
    exitCode_ = 1;
    // Called from inside the master's or the replica's callbacks: stop them on the next loop
    // turn, not under their feet.
    auto timer = uv::Timer::create(*loop_);
    if (!timer) {
        shutdown(0);
        return;
    }
    exitTimer_ = std::move(*timer);
    exitTimer_->start(0, 0, [this] { shutdown(0); });
}

void Daemon::reload() {
    auto fresh = reparse(options_);
    if (!fresh) {
        LOG(Daemon, Error) << "SIGHUP: the configuration does not load, nothing changed: "
                           << fresh.error().message;
        return;
    }
    auto changed = changedOptions(options_, *fresh);
    if (changed.empty()) {
        LOG(Daemon, Info) << "SIGHUP: configuration read again; nothing changed";
        return;
    }
    for (const std::string& name : changed) {
        if (name == "log-level") {
            log::setAllLevels(*log::parseLevel(fresh->logLevel));
            LOG(Daemon, Warning) << "SIGHUP: log level " << options_.logLevel << " -> " << fresh->logLevel;
            options_.logLevel = fresh->logLevel;
            continue;
        }
        LOG(Daemon, Warning) << "SIGHUP: --" << name
                             << " changed in the configuration: takes effect at the next "
                             << "restart (systemctl restart possyncd)";
    }
}

void Daemon::shutdown(int signum) {
    if (stopping_) return;
    stopping_ = true;
    if (signum) LOG(Daemon, Info) << "signal " << signum << ": shutting down";
    serialConsole_.reset();
    socketConsole_.reset();
    autoPromoter_.reset();
    if (master_) master_->stop();
    outboxNotify_.reset();
    if (replica_) replica_->stop();
    advertiser_.reset();
    watcher_.reset();
    loop_->stop();
}

int Daemon::run() {
    if (replica_) replica_->start();
    loop_->run();
    // Release every handle before closing the loop.
    serialConsole_.reset();
    socketConsole_.reset();
    master_.reset();
    outboxNotify_.reset();
    replica_.reset();
    locator_.reset();
    finder_.reset();
    watcher_.reset();
    advertiser_.reset();
    sigint_.reset();
    sigterm_.reset();
    sighup_.reset();
    exitTimer_.reset();
    auto r = loop_->close();
    if (!r) {
        LOG(Daemon, Error) << "closing the event loop: " << r.error().message;
        return 1;
    }
    LOG(Daemon, Info) << "stopped";
    return exitCode_;
}

}  // namespace possync::daemon
