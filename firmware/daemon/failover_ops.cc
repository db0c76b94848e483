// Daemon, failover operations (DESIGN.md §10): promote, rejoin and fencing.
//
// Each changes the data directory in a write transaction, and LMDB's writer lock may be held
// by a POS application for seconds: the transactions run on libuv's thread pool (uv::Work)
// and the loop goes on serving the console, links and discovery meanwhile. The console's
// answer to promote and rejoin comes when the work is done (console::Reply::later). The Store
// calls made off the loop do not log (the log is loop-only): what they did is logged here, on
// completion.
#include <ctime>

#include "base/bytes.h"
#include "log/log.h"

#include "daemon/daemon.h"
#include "discovery/advertiser.h"
#include "discovery/master_finder.h"

namespace possync::daemon {

POSSYNC_LOG_DECLARE(Daemon);

namespace {

// "20261201T233000Z": export file names sort by time.
std::string utcStamp() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

}  // namespace

std::string Daemon::fencedReason() const {
    return master_ ? master_->fenced() : std::string();
}

std::string Daemon::liveMaster() {
    std::string seen;
    if (replica_) {
        auto st = replica_->status();
        if (replica_->state() == sync::ReplicaState::Streaming)
            seen = "linked to master " + (st.masterDevice.empty() ? std::string("?") : st.masterDevice) +
                   " at " + st.master + ", last heard " + std::to_string(st.lastHeardMsAgo) + " ms ago";
    }
    // Avahi announcements are claims, not proof of life (a dead master stays listed for minutes),
    // but the operator should know of them. A static --master says nothing about life.
    if (finder_ && finder_->mode() == discovery::DiscoveryMode::Avahi) {
        for (const auto& c : finder_->candidates()) {
            if (!seen.empty()) seen += "; ";
            seen += "announced over Avahi: " + (c.deviceId.empty() ? std::string("?") : c.deviceId) + " at " +
                    c.endpoint() + " (term " + std::to_string(c.term) + ")";
        }
    }
    return seen;
}

Status Daemon::runOffLoop(std::function<void()> work, std::function<void()> done) {
    if (failoverWork_ && failoverWork_->pending())
        return makeError(Errc::Busy, "a promote, rejoin or fence is still running");
    auto w = uv::Work::queue(*loop_, std::move(work), std::move(done));
    if (!w) return w.takeError();
    failoverWork_ = std::move(*w);
    return {};
}

void Daemon::fence(uint64_t term, const std::string& reason) {
    if (!master_ || !master_->fenced().empty()) return;
    const std::string full = reason + ": run rejoin to make this board a slave of the new master";
    // At once, on the loop: no slave is served and no forwarded write applied from here on.
    master_->fence(full);
    advertiser_.reset();
    // Then in the data directory, off the loop: POS applications check `fenced` in their own
    // transactions, so writes are refused once it is committed (one that commits before is
    // ordered before the fence and goes to rejoin's export like any other orphan). The FENCED
    // line is logged once it is recorded, so what the log says, `possync info` shows.
    struct Job {
        Status term, fence;
    };
    auto job = std::make_shared<Job>();
    auto queued = runOffLoop(
        [store = store_.get(), job, term, full] {
            job->term = store->noteTerm(term);
            job->fence = store->fence(full);
        },
        [job, term, full] {
            if (!job->term) LOG(Daemon, Error) << "noting term " << term << ": " << job->term.error().message;
            if (!job->fence)
                LOG(Daemon, Error) << "cannot record the fence in the store (writers are not refused): "
                                   << job->fence.error().message;
            LOG(Daemon, Error) << "FENCED: " << full;
        });
    if (!queued) {
        LOG(Daemon, Error) << "cannot record the fence in the store: " << queued.error().message;
        LOG(Daemon, Error) << "FENCED: " << full;
    }
}

void Daemon::promote(bool confirmed, console::NoteDone done) {
    if (!replica_)
        return done(makeError(Errc::Refused, "promote is for slaves; this board is already the master"));
    if (restart_) return done(makeError(Errc::Busy, "this board is restarting after a role change"));
    if (failoverWork_ && failoverWork_->pending())
        return done(makeError(Errc::Busy, "a promote is already running"));
    auto state = replica_->state();
    if (state == sync::ReplicaState::ReceivingFull || state == sync::ReplicaState::FullReplay)
        return done(makeError(Errc::Busy,
                              "a FULL sync is in progress: this board's data is not complete; promote once "
                              "it is done (status shows the link state)"));
    if (!options_.listenSet)
        return done(makeError(Errc::Refused,
                              "this slave was started without --listen ADDR:PORT (the address it "
                              "serves slaves on as master): add it to its configuration, restart it, "
                              "then promote"));
    if (!confirmed) {
        std::string seen = liveMaster();
        if (!seen.empty())
            return done(makeError(Errc::Refused,
                                  "a master of store " + options_.store + " may still be alive (" + seen +
                                      "); if it is really gone or must be replaced: promote confirm"));
    }
    store::PromoteOptions po;
    if (finder_) po.minTerm = finder_->snapshot().term;  // above every term announced
    // Nothing more is taken from the old master: a change of its generation applied after the
    // promotion committed would land past the fork. A promotion that fails restarts the daemon
    // (as a slave: the role in the directory did not change), which starts the replica again.
    replica_->stop();
    auto job = std::make_shared<Result<store::PromoteResult>>(makeError(Errc::Io, "not run"));
    auto queued = runOffLoop(
        [store = store_.get(), job, po] { *job = store->promote(po); },
        [this, job, done] {
            if (!*job) {
                LOG(Daemon, Error) << "promote failed: " << job->error().message;
                done(job->takeError());
                restartSoon("promote failed");
                return;
            }
            const store::PromoteResult& r = **job;
            std::string note = "promoted: generation " + hex64(r.generation) + " (term " +
                               std::to_string(r.term) + "), forked from " + hex64(r.parent) + " at seq " +
                               std::to_string(r.forkSeq) + "; " + std::to_string(r.drained) +
                               " own queued request(s) applied; restarting as master on " + options_.listen;
            LOG(Daemon, Warning) << note;
            done(note);
            restartSoon("promoted to master");
        });
    if (!queued) {
        done(queued.takeError());
        restartSoon("promote could not start");
    }
}

void Daemon::rejoin(console::NoteDone done) {
    if (!master_)
        return done(makeError(Errc::Refused, "rejoin is for a master; this board is a slave already"));
    if (restart_) return done(makeError(Errc::Busy, "this board is restarting after a role change"));
    if (failoverWork_ && failoverWork_->pending())
        return done(makeError(Errc::Busy, "a rejoin or fence is still running; try again"));
    auto meta = store_->meta();
    if (!meta) return done(meta.takeError());
    // No writer may commit between the export and the role change: fenced first (writers are
    // refused with the reason, once the fence is committed below) and serving no slave.
    const bool fenceFirst = meta->fenced.empty();
    const std::string why = "rejoining as a slave (console rejoin)";
    if (fenceFirst) {
        master_->fence(why);
        advertiser_.reset();
    }
    // What the new master may lack: this generation's own entries. Where the new master forked
    // is not known here (its history names it: possync info there), so everything after this
    // generation's start goes out; a root generation starts at 0 (the log as far as kept).
    const store::HistoryRecord& own = meta->history.back();
    const uint64_t from = own.generation == meta->generation ? own.fork : 0;
    const std::string path =
        store_->dir() + "/possync-export-" + hex64(meta->generation) + "-" + utcStamp() + ".tsv";
    struct Job {
        Status fence, rejoin;
        Result<store::ExportInfo> info = makeError(Errc::Io, "not run");
    };
    auto job = std::make_shared<Job>();
    auto queued = runOffLoop(
        [store = store_.get(), job, fenceFirst, why, from, path] {
            if (fenceFirst) {
                job->fence = store->fence(why);
                if (!job->fence) return;
            }
            job->info = store->exportSince(from, path);
            if (job->info) job->rejoin = store->rejoinAsSlave();
        },
        [this, job, done, from, path] {
            if (!job->fence) return done(job->fence.takeError());
            if (!job->info)
                return done(makeError(job->info.error().code,
                                      "export to " + path + " failed: " + job->info.error().message +
                                          "; this board stays a fenced master (run rejoin again)"));
            if (!job->rejoin) return done(job->rejoin.takeError());
            const store::ExportInfo& info = *job->info;
            std::string note = "exported " + std::to_string(info.entries) + " log entries (" +
                               std::to_string(info.changes) + " changes) after seq " + std::to_string(from) +
                               " to " + path;
            if (!info.complete)
                note += " (INCOMPLETE: the oldest were trimmed from the log before this export)";
            note += "; rejoining as a slave (the next sync is FULL): restarting";
            LOG(Daemon, Warning) << note;
            done(note);
            restartSoon("rejoined as a slave");
        });
    if (!queued) done(queued.takeError());
}

}  // namespace possync::daemon
