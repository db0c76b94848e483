#include "discovery/master_finder.h"

#include <chrono>

#include "base/bytes.h"
#include "log/log.h"

#include "discovery/announcement.h"
#include "possync_config.h"

#if POSSYNC_DISCOVERY_AVAHI
#include "avahi/browser.h"
#include "avahi/client.h"
#endif

namespace possync::discovery {

POSSYNC_LOG_DECLARE(Discovery);
POSSYNC_LOG_CATEGORY(Discovery)

namespace {
uint64_t wallMs() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
}

constexpr const char* kNoAvahi =
    "this possync was built without Avahi (-Davahi=disabled): use --discovery static --master HOST:PORT";
}  // namespace

const char* discoveryModeName(DiscoveryMode mode) {
    switch (mode) {
        case DiscoveryMode::Static: return "static";
        case DiscoveryMode::Avahi: return "avahi";
        case DiscoveryMode::Injected: return "injected";
    }
    return "?";
}

Result<DiscoveryMode> parseDiscoveryMode(std::string_view text) {
    if (text == "static") return DiscoveryMode::Static;
    if (text == "avahi") return DiscoveryMode::Avahi;
    return makeError(Errc::InvalidArgument,
                     "unknown discovery mode \"" + std::string(text) + "\" (want avahi or static)");
}

#if POSSYNC_DISCOVERY_AVAHI
struct MasterFinder::AvahiSide {
    std::unique_ptr<avahi::Client> client;
    std::unique_ptr<avahi::Browser> browser;

    ~AvahiSide() {
        browser.reset();  // before the client it lives on
        client.reset();
    }
};
#else
struct MasterFinder::AvahiSide {};
#endif

MasterFinder::MasterFinder(DiscoveryMode mode, std::string storeId)
    : mode_(mode), table_(std::move(storeId), POSSYNC_PROTOCOL_VERSION), clock_(&wallMs) {}

MasterFinder::~MasterFinder() = default;

Result<std::unique_ptr<MasterFinder>> MasterFinder::createStatic(std::string storeId,
                                                                 std::string_view hostPort) {
    POSSYNC_TRY(validateId("store id", storeId));
    auto hp = parseHostPort(hostPort, PortUse::Connect);
    if (!hp.ok()) return makeError(hp.error().code, "--master: " + hp.error().message);
    std::unique_ptr<MasterFinder> f(new MasterFinder(DiscoveryMode::Static, std::move(storeId)));
    Change c = f->table_.addStatic(*hp, f->clock_());
    f->lastState_ = f->table_.state();
    LOG(Discovery, Info) << "static master for store " << f->storeId() << ": " << c.candidate.endpoint();
    return f;
}

Result<std::unique_ptr<MasterFinder>> MasterFinder::createInjected(std::string storeId) {
    POSSYNC_TRY(validateId("store id", storeId));
    return std::unique_ptr<MasterFinder>(new MasterFinder(DiscoveryMode::Injected, std::move(storeId)));
}

Result<std::unique_ptr<MasterFinder>> MasterFinder::createAvahi(uv_loop_s* loop, std::string storeId) {
    POSSYNC_TRY(validateId("store id", storeId));
#if POSSYNC_DISCOVERY_AVAHI
    std::unique_ptr<MasterFinder> f(new MasterFinder(DiscoveryMode::Avahi, std::move(storeId)));
    f->avahi_ = std::make_unique<AvahiSide>();
    auto client = avahi::Client::create(loop);
    if (!client.ok()) return client.takeError();
    f->avahi_->client = std::move(client).value();
    MasterFinder* self = f.get();
    avahi::BrowserCallbacks cb;
    cb.found = [self](const avahi::ServiceInfo& info) {
        self->inject(Sighting{info.name, info.host, info.address, info.port, info.txt, info.interfaceIndex});
    };
    cb.removed = [self](const std::string& name) { self->injectGone(name); };
    cb.allForNow = [self] { self->injectAllForNow(); };
    auto browser = avahi::Browser::create(*f->avahi_->client, kServiceType, std::move(cb));
    if (!browser.ok()) return browser.takeError();
    f->avahi_->browser = std::move(browser).value();
    f->avahi_->client->setStateCallback([self](avahi::ClientState s) {
        if (s != avahi::ClientState::Running && s != avahi::ClientState::Registering)
            self->allForNow_ = false;
    });
    LOG(Discovery, Info) << "looking for the master of store " << f->storeId() << " with Avahi";
    return f;
#else
    (void)loop;
    return makeError(Errc::Refused, kNoAvahi);
#endif
}

Result<std::unique_ptr<MasterFinder>> MasterFinder::create(uv_loop_s* loop, DiscoveryMode mode,
                                                           std::string storeId, std::string_view master) {
    switch (mode) {
        case DiscoveryMode::Static:
            if (master.empty())
                return makeError(Errc::InvalidArgument, "--discovery static needs --master HOST:PORT");
            return createStatic(std::move(storeId), master);
        case DiscoveryMode::Avahi:
            if (!master.empty())
                return makeError(Errc::InvalidArgument,
                                 "--master is for --discovery static; drop one of them");
            return createAvahi(loop, std::move(storeId));
        case DiscoveryMode::Injected: return createInjected(std::move(storeId));
    }
    return makeError(Errc::InvalidArgument, "unknown discovery mode");
}

void MasterFinder::inject(const Sighting& sighting) {
    if (mode_ == DiscoveryMode::Static) return;
    apply(table_.seen(sighting, clock_()));
}

void MasterFinder::injectGone(const std::string& serviceName) {
    if (mode_ == DiscoveryMode::Static) return;
    apply(table_.gone(serviceName));
}

void MasterFinder::injectAllForNow() {
    if (!allForNow_)
        LOG(Discovery, Debug) << "initial scan done: " << table_.candidates().size()
                              << " candidate(s) for store " << storeId();
    allForNow_ = true;
}

void MasterFinder::apply(std::optional<Change> change) {
    if (!change) return;
    const Candidate& c = change->candidate;
    LOG(Discovery, Info) << "master candidate " << changeKindName(change->kind) << ": \"" << c.serviceName
                         << "\" dev=" << c.deviceId << " at " << c.endpoint()
                         << (c.generation ? " gen=" + hex64(*c.generation) : std::string())
                         << " term=" << c.term;
    if (changeCallback_) changeCallback_(*change);
    reviewState();
}

void MasterFinder::setMinTerm(uint64_t term) {
    if (term <= table_.minTerm()) return;
    table_.setMinTerm(term);
    LOG(Discovery, Info) << "following term " << term << " or above of store " << storeId();
    if (changeCallback_ && !table_.candidates().empty())
        changeCallback_(Change{Change::Kind::Updated, table_.candidates().front()});
    reviewState();
}

void MasterFinder::reviewState() {
    if (std::string tie = table_.tieText(); tie != lastTie_) {
        if (!tie.empty()) LOG(Discovery, Warning) << tie;
        lastTie_ = tie;
    }
    FinderState now = table_.state();
    std::vector<std::string> devs = table_.deviceIds();
    bool stateChanged = now != lastState_;
    if (now == FinderState::Conflict && (stateChanged || devs != lastConflictDevs_))
        LOG(Discovery, Warning) << table_.conflictText();
    else if (stateChanged && lastState_ == FinderState::Conflict)
        LOG(Discovery, Info) << "master conflict for store " << storeId()
                             << " resolved: " << finderStateName(now);
    lastConflictDevs_ = now == FinderState::Conflict ? devs : std::vector<std::string>{};
    lastState_ = now;
    if (stateChanged && stateCallback_) stateCallback_(now);
}

DiscoverySnapshot MasterFinder::snapshot() const {
    DiscoverySnapshot s;
    s.mode = mode_;
    s.storeId = storeId();
    s.state = table_.state();
    s.candidates = table_.candidates();
    s.ignored = table_.ignored();
    s.conflict = table_.conflictText();
    s.tie = table_.tieText();
    s.term = table_.topTerm();
    s.initialScanDone = allForNow_;
    switch (mode_) {
        case DiscoveryMode::Static:
            s.source =
                "static " + (s.candidates.empty() ? std::string("?") : s.candidates.front().endpoint());
            s.initialScanDone = true;
            break;
        case DiscoveryMode::Injected: s.source = "injected"; break;
        case DiscoveryMode::Avahi:
#if POSSYNC_DISCOVERY_AVAHI
            s.source = std::string("avahi ") + avahi::clientStateName(avahi_->client->state());
            if (std::string host = avahi_->client->hostName(); !host.empty())
                s.source += " (host " + host + ")";
            if (!avahi_->client->connected() && !avahi_->client->lastError().empty())
                s.source += " (" + avahi_->client->lastError() + ")";
            if (size_t n = avahi_->browser->unresolvedCount())
                s.source += ", " + std::to_string(n) + " unresolved";
#endif
            break;
    }
    return s;
}

std::string formatSnapshot(const DiscoverySnapshot& snap, uint64_t nowMs) {
    std::string out = "discovery " + std::string(discoveryModeName(snap.mode)) + ": " + snap.source +
                      "; store " + snap.storeId + ": " + finderStateName(snap.state) +
                      (snap.initialScanDone ? "" : " (scanning)") +
                      (snap.term != 0 ? ", term " + std::to_string(snap.term) : std::string()) + "\n";
    for (const Candidate& c : snap.candidates) {
        out += "  master ";
        out += c.isStatic ? std::string("(static)") : "\"" + c.serviceName + "\"";
        if (!c.deviceId.empty()) out += " dev=" + c.deviceId;
        out += " at " + c.endpoint();
        if (!c.host.empty() && c.host != c.address) out += " (" + c.host + ")";
        if (c.generation) out += " gen=" + hex64(*c.generation);
        if (c.term != 0) out += " term=" + std::to_string(c.term);
        if (!c.isStatic) {
            uint64_t age = nowMs > c.seenWallMs ? (nowMs - c.seenWallMs) / 1000 : 0;
            out += " seen " + std::to_string(age) + " s ago";
        }
        out += "\n";
    }
    for (const Ignored& i : snap.ignored)
        out += "  ignored \"" + i.serviceName + "\" at " + i.endpoint + ": " + i.reason + "\n";
    if (!snap.conflict.empty()) out += "  CONFLICT: " + snap.conflict + "\n";
    if (!snap.tie.empty()) out += "  TIE: " + snap.tie + "\n";
    return out;
}

}  // namespace possync::discovery
