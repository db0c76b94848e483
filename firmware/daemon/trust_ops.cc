// The daemon's side of trust (DESIGN.md §11): which keys its links accept, pairing from the
// console, provisioning at start, the rogue-master and pending-pairing notes for `status`.
//
// The decisions read the store's trust set (possync.trust, which replicates) in a read
// transaction of their own: microseconds, on the loop. Its writes (a board accepted, admitted by
// the window or removed) run on the thread pool: a POS process may hold LMDB's writer lock, and
// the loop must not wait for it. Nothing here logs or prints key material, only fingerprints.
#include <algorithm>

#include "log/log.h"

#include "daemon/daemon.h"
#include "discovery/master_finder.h"

namespace possync::daemon {

POSSYNC_LOG_DECLARE(Daemon);

namespace {

// How long a rogue master's refusal stays in `status` after it was last seen.
constexpr uint64_t kRogueShownMs = 5 * 60 * 1000;
// How a slave's refusal of its master's key starts (handshakeFailed finds it by this).
constexpr std::string_view kRogueMaster = "rogue master: ";

store::TrustMember memberOf(const trust::PublicKey& key, std::string name, store::TrustHow how) {
    store::TrustMember m;
    std::copy(key.begin(), key.end(), m.key.begin());
    m.name = std::move(name);
    if (m.name.size() > 64) m.name.resize(64);
    m.how = how;
    m.addedMs = uv::Loop::wallMs();
    return m;
}

trust::PublicKey keyOf(const store::TrustMember& m) {
    trust::PublicKey k;
    std::copy(m.key.begin(), m.key.end(), k.begin());
    return k;
}

}  // namespace

Status Daemon::initTrust() {
    if (!options_.masterKey.empty()) {
        auto key = trust::parsePublicKey(options_.masterKey);
        if (!key) return key.takeError();
        provisionedMaster_ = *key;
    }
    if (role_ != store::Role::Master) return {};
    desk_ = std::make_unique<PairingDesk>(identity_->publicKey());
    if (options_.pairWindowS) desk_->openWindow(loop_->nowMs() + options_.pairWindowS * 1000);
    // At start, before any link: this board itself (a promoted slave is a member already) and the
    // factory's provisioned boards.
    std::vector<store::TrustMember> add;
    auto meta = store_->meta();
    if (!meta) return meta.takeError();
    if (!meta->fenced.empty()) return {};
    auto self = store_->trustMember(memberOf(identity_->publicKey(), "", store::TrustHow::Self).key);
    if (!self) return self.takeError();
    if (!*self) add.push_back(memberOf(identity_->publicKey(), meta->device, store::TrustHow::Self));
    auto provisioned = parseKeyList(options_.trustedKeys);
    if (!provisioned) return provisioned.takeError();
    for (const trust::PublicKey& k : *provisioned) {
        auto m = memberOf(k, trust::fingerprint(k), store::TrustHow::Provisioned);
        auto have = store_->trustMember(m.key);
        if (!have) return have.takeError();
        if (!*have) add.push_back(std::move(m));
    }
    if (add.empty()) return {};
    auto txn = store_->beginWrite();
    if (!txn) return txn.takeError();
    for (const auto& m : add) POSSYNC_TRY(txn->putTrust(m));
    auto c = txn->commit();
    if (!c) return c.takeError();
    LOG(Daemon, Info) << "trust set: " << add.size()
                      << " key(s) added at start (this board and --trusted-keys)";
    return {};
}

bool Daemon::isMember(const trust::PublicKey& key) {
    store::TrustMember probe = memberOf(key, "", store::TrustHow::Self);
    auto m = store_->trustMember(probe.key);
    return m && *m;
}

bool Daemon::trustedFingerprint(const std::string& fingerprint) {
    auto members = store_->trustMembers();
    if (!members) return false;
    // A board that was never paired trusts whoever it pairs with (the operator compares codes),
    // unless the factory named its master.
    if (members->empty())
        return !provisionedMaster_ || trust::fingerprint(*provisionedMaster_) == fingerprint;
    return std::any_of(members->begin(), members->end(), [&](const store::TrustMember& m) {
        return trust::fingerprint(keyOf(m)) == fingerprint;
    });
}

Error Daemon::trustReadFailed(Error e) {
    // A failed meta-page write earlier left LMDB's environment fatal (MDB_PANIC on every later
    // transaction): the handshake's read is often the first to meet it. Only a restart helps.
    if (e.message.find("MDB_PANIC") != std::string::npos)
        exitForRestart("LMDB environment unusable after a failed write: " + e.message);
    return e;
}

Result<trust::PeerStanding> Daemon::checkSlave(const trust::PublicKey& key, uint32_t flags,
                                               const std::string& peer) {
    auto member = store_->trustMember(memberOf(key, "", store::TrustHow::Self).key);
    if (!member) return trustReadFailed(member.takeError());
    if (*member) return trust::PeerStanding::Member;
    const uint64_t now = loop_->nowMs();
    if (desk_->rejected(key, now))
        return makeError(Errc::Refused, "key " + trust::fingerprint(key) + " was rejected by the operator");
    // Not a member: whether it asks to pair (M1's flag: it knows it is new) or believes it is
    // paired (removed since, or this master's trust set was made again with its data), it waits
    // for the operator's pair accept like a new board; the pairing window admits it at once.
    const char* asks =
        (flags & trust::kFlagPairing) ? "pairing request" : "unknown board (it believes it is paired)";
    // A fenced master writes nothing (rejoin first): its window admits nobody.
    if (desk_->windowLeftMs(now) && (!master_ || master_->fenced().empty())) {
        // Admitted by `pair open`: a member from this link on; the trust set learns it off the loop.
        LOG(Daemon, Info) << "pairing window: admitted the board with key " << trust::fingerprint(key)
                          << " at " << peer;
        writeTrust([m = memberOf(key, trust::fingerprint(key), store::TrustHow::Window)](
                       store::WriteTxn& txn) { return txn.putTrust(m); },
                   [key, this](Status st) {
                       if (st) return;
                       LOG(Daemon, Error) << "cannot record the admitted board " << trust::fingerprint(key)
                                          << ": " << st.error().message << "; dropping its link";
                       if (master_) master_->dropPeer(key, "not recorded in the trust set");
                   });
        return trust::PeerStanding::Member;
    }
    if (desk_->noteCandidate(key, peer, now))
        LOG(Daemon, Warning) << asks << " from " << peer << ": key " << trust::fingerprint(key)
                             << ", verification code " << trust::verificationCode(identity_->publicKey(), key)
                             << " (pair accept or pair reject on this console)";
    return trust::PeerStanding::Candidate;
}

Result<trust::PeerStanding> Daemon::checkMaster(const trust::PublicKey& key) {
    lastMasterKey_ = key;
    auto members = store_->trustMembers();
    if (!members) return trustReadFailed(members.takeError());
    std::string why;
    if (members->empty()) {
        // Not paired yet: the factory's key, or any master (pairing; the operator compares codes).
        if (!provisionedMaster_ || *provisionedMaster_ == key) return trust::PeerStanding::Candidate;
        why = "key " + trust::fingerprint(key) + " is not the master key this board was provisioned with";
    } else if (std::any_of(members->begin(), members->end(),
                           [&](const store::TrustMember& m) { return keyOf(m) == key; })) {
        return trust::PeerStanding::Member;
    } else {
        why = "key " + trust::fingerprint(key) + " is not in this store's trust set";
    }
    return makeError(Errc::Refused, std::string(kRogueMaster) + why);
}

void Daemon::handshakeFailed(const std::string& peer, const Error& why) {
    const std::string host = peer.substr(0, peer.rfind(':'));
    if (size_t at = why.message.find(kRogueMaster); why.code == Errc::Refused && at != std::string::npos) {
        rogue_ = "ignoring the master at " + peer + ": " + why.message.substr(at + kRogueMaster.size());
        rogueMs_ = loop_->nowMs();
    }
    // A plaintext Hello (a board still on protocol 4) fails the handshake's first message.
    if (desk_ && why.code == Errc::Version) desk_->noteLegacy(host, loop_->nowMs());
    if (uint64_t n = guard_.failed(host, loop_->nowMs()))
        LOG(Daemon, Warning) << "trust handshake with " << peer << " failed: " << why.message
                             << (n > 1 ? " (" + std::to_string(n) + " failures from " + host +
                                             " since the last report)"
                                       : std::string());
}

sync::LinkSecurity Daemon::linkSecurity() {
    sync::LinkSecurity sec{*identity_, nullptr, 0, {}, {}, {}, {}};
    sec.failed = [this](const std::string& peer, const Error& why) { handshakeFailed(peer, why); };
    if (role_ == store::Role::Master) {
        sec.checkFor = [this](const std::string& peer) -> trust::PeerCheck {
            return [this, peer](const trust::PublicKey& key, uint32_t flags) {
                return checkSlave(key, flags, peer);
            };
        };
        sec.admit = [this](const std::string& host) { return guard_.admit(host, loop_->nowMs()); };
        return sec;
    }
    sec.check = [this](const trust::PublicKey& key, uint32_t) { return checkMaster(key); };
    sec.flagsNow = [this]() -> uint32_t {
        return isMember(identity_->publicKey()) ? 0 : trust::kFlagPairing;
    };
    return sec;
}

std::string Daemon::onCandidateHello(const trust::PublicKey& key, const std::string& device) {
    if (desk_) desk_->noteHello(key, device);
    return "this board (key " + trust::fingerprint(key) + ") is not paired with store " + options_.store +
           ": on the master's console compare verification code " +
           trust::verificationCode(identity_->publicKey(), key) + " and run pair accept " +
           (device.empty() ? trust::fingerprint(key) : device);
}

void Daemon::writeTrust(std::function<Status(store::WriteTxn&)> change, std::function<void(Status)> done) {
    auto result = std::make_shared<Status>();
    store::Store* store = store_.get();
    auto work = uv::Work::queue(
        *loop_,
        [store, change = std::move(change), result] {
            auto txn = store->beginWrite();
            if (!txn) {
                *result = txn.takeError();
                return;
            }
            txn->setQuiet();  // on a worker thread: the master hears of it through possync.notify
            if (auto st = change(*txn); !st) {
                *result = st;
                return;
            }
            auto c = txn->commit();
            *result = c ? Status{} : Status(c.takeError());
        },
        [result, done = std::move(done)] { done(*result); });
    if (!work) return done(work.takeError());
    std::erase_if(trustWork_, [](const std::unique_ptr<uv::Work>& w) { return !w->pending(); });
    trustWork_.push_back(std::move(*work));
}

Result<std::optional<store::TrustMember>> Daemon::findMember(const std::string& who) {
    auto members = store_->trustMembers();
    if (!members) return members.takeError();
    std::vector<store::TrustMember> hits;
    for (const auto& m : *members)
        if (m.name == who) hits.push_back(m);
    if (hits.empty() && who.size() >= 4)
        for (const auto& m : *members)
            if (trust::fingerprint(keyOf(m)).starts_with(who)) hits.push_back(m);
    if (hits.size() > 1)
        return makeError(Errc::InvalidArgument, std::to_string(hits.size()) + " members match '" + who +
                                                    "': name one by its key fingerprint (pair list)");
    if (hits.empty()) return std::optional<store::TrustMember>();
    return std::optional<store::TrustMember>(hits.front());
}

void Daemon::pair(const std::string& verb, const std::string& who, console::NoteDone done) {
    if (!master_ || !desk_)
        return done(makeError(Errc::Refused, "pairing is settled on the master; this board is a slave"));
    const uint64_t now = loop_->nowMs();
    if (verb == "open") {
        uint64_t seconds = 0;
        if (who.empty() || who.size() > 5 || !std::all_of(who.begin(), who.end(), ::isdigit) ||
            (seconds = std::stoull(who)) == 0 || seconds > 86400)
            return done(makeError(Errc::InvalidArgument, "usage: pair open SECONDS (1 to 86400)"));
        desk_->openWindow(now + seconds * 1000);
        LOG(Daemon, Warning) << "pairing window open for " << seconds
                             << " s: boards asking to pair are admitted";
        return done("open for " + std::to_string(seconds) + " s: boards that ask to pair are admitted");
    }
    if (verb == "close") {
        desk_->closeWindow();
        return done(std::string("closed: each board that asks to pair waits for pair accept"));
    }
    if (verb == "accept" || verb == "reject") {
        auto request = desk_->find(who, now);
        if (!request) return done(request.takeError());
        const trust::PublicKey key = request->key;
        const std::string name = request->name();
        if (verb == "reject") {
            desk_->reject(key, now);
            LOG(Daemon, Warning) << "pairing rejected: " << name << " (key " << trust::fingerprint(key)
                                 << ")";
            return done("rejected " + name + " (key " + trust::fingerprint(key) + ")");
        }
        writeTrust([m = memberOf(key, name, store::TrustHow::Accepted)](
                       store::WriteTxn& txn) { return txn.putTrust(m); },
                   [this, key, name, done](Status st) {
                       if (!st) return done(st.error());
                       if (desk_) desk_->forget(key);
                       LOG(Daemon, Warning)
                           << "pairing accepted: " << name << " (key " << trust::fingerprint(key) << ")";
                       done("accepted " + name + " (key " + trust::fingerprint(key) +
                            "): it syncs at its next attempt");
                   });
        return;
    }
    if (verb == "remove") {
        auto member = findMember(who);
        if (!member) return done(member.takeError());
        if (!*member) return done(makeError(Errc::NotFound, "no member named '" + who + "' (see pair list)"));
        const trust::PublicKey key = keyOf(**member);
        if (key == identity_->publicKey())
            return done(makeError(Errc::Refused, "this board is the master: it cannot remove itself"));
        const std::string name = (*member)->name;
        // Its links send nothing from now on: the removal commits on a worker, and the commit wakes
        // the sessions before dropPeer can run on the loop.
        if (master_) master_->holdPeer(key);
        writeTrust(
            [key](store::WriteTxn& txn) -> Status {
                std::array<uint8_t, 32> k;
                std::copy(key.begin(), key.end(), k.begin());
                auto r = txn.delTrust(k);
                if (!r) return r.takeError();
                return {};
            },
            [this, key, name, done](Status st) {
                if (!st) {
                    if (master_) master_->releasePeer(key);
                    return done(st.error());
                }
                size_t cut = master_ ? master_->dropPeer(key, "removed from the store's trust set") : 0;
                LOG(Daemon, Warning) << "trust set: removed " << name << " (key " << trust::fingerprint(key)
                                     << "), " << cut << " link(s) cut";
                done("removed " + name + " (key " + trust::fingerprint(key) + "); " + std::to_string(cut) +
                     " link(s) cut");
            });
        return;
    }
    done(makeError(Errc::InvalidArgument,
                   "usage: pair [list] | accept WHO | reject WHO | open SECONDS | close | remove WHO"));
}

Result<console::PairInfo> Daemon::pairList() {
    console::PairInfo info;
    auto members = store_->trustMembers();
    if (!members) return members.takeError();
    const uint64_t wall = uv::Loop::wallMs();
    for (const auto& m : *members) {
        console::PairEntry e;
        e.state = "member";
        e.device = m.name;
        e.key = trust::fingerprint(keyOf(m));
        e.detail = store::trustHowName(m.how);
        if (wall >= m.addedMs) e.agoMs = wall - m.addedMs;
        info.entries.push_back(std::move(e));
    }
    const uint64_t now = loop_->nowMs();
    if (desk_) {
        for (const PairRequest& r : desk_->pending(now)) {
            info.entries.push_back(console::PairEntry{"pending", r.name(), trust::fingerprint(r.key),
                                                      "from " + r.address + ", code " + r.code,
                                                      now - r.firstMs});
        }
        for (const auto& [host, seen] : desk_->legacy(now))
            info.entries.push_back(console::PairEntry{
                "needs-upgrade", host, "-", "spoke an older protocol: upgrade possync there, then pair it",
                now - seen});
        uint64_t left = desk_->windowLeftMs(now);
        info.summary =
            std::to_string(members->size()) + " member(s); pairing window " +
            (left ? "open, " + std::to_string((left + 999) / 1000) + " s left" : std::string("closed"));
    } else {
        info.summary =
            std::to_string(members->size()) + " member(s) (as replicated from the master); " + trustStatus();
    }
    return info;
}

std::string Daemon::trustStatus() {
    auto members = store_->trustMembers();
    if (!members) return "cannot read the trust set: " + members.error().message;
    const uint64_t now = loop_->nowMs();
    if (desk_) {
        size_t pending = desk_->pending(now).size();
        uint64_t left = desk_->windowLeftMs(now);
        return std::to_string(members->size()) + " member(s), " + std::to_string(pending) +
               " asking to pair" +
               (left ? ", window open " + std::to_string((left + 999) / 1000) + " s" : std::string());
    }
    std::string text;
    if (replica_ && !replica_->status().pairing.empty()) {
        text = "waiting to be paired";
        if (lastMasterKey_)
            text += ": verification code " +
                    trust::verificationCode(identity_->publicKey(), *lastMasterKey_) +
                    " (compare it on the master's console, then pair accept there)";
    } else if (members->empty()) {
        text = "not paired yet";
    } else {
        text = isMember(identity_->publicKey()) ? "paired" : "not in the store's trust set (removed?)";
        text += ", " + std::to_string(members->size()) + " member(s)";
    }
    if (!rogue_.empty() && now - rogueMs_ < kRogueShownMs) text += "; " + rogue_;
    return text;
}

}  // namespace possync::daemon
