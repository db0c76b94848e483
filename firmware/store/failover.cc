// Store: failover (DESIGN.md §10) at the store layer: promotion of a slave, the resume rule
// across promotions, terms, fencing, the export of a fenced master's orphaned changes, rejoin.
// promote, drainOwnOutbox, noteTerm, fence, exportSince and rejoinAsSlave run on the daemon's
// thread pool (daemon/failover_ops.cc): they do not log (the log is loop-only); the caller logs
// what they did.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "store/store.h"
#include "wire/change_model.h"
#include "wire/messages.h"

namespace possync::store {

Status WriteTxn::settleOwnQueued(uint64_t requestId) {
    uint8_t key[8];
    putBe64(key, requestId);
    auto dbs = store_->requestDbs();
    auto old = txn_.get(dbs.outbox, Bytes(key, 8));
    if (!old) return old.takeError();
    if (!*old) return {};
    uint64_t size = (*old)->size;
    POSSYNC_TRY(txn_.del(dbs.outbox, Bytes(key, 8)));
    meta_.outboxCount = meta_.outboxCount ? meta_.outboxCount - 1 : 0;
    meta_.outboxBytes = meta_.outboxBytes >= size ? meta_.outboxBytes - size : 0;
    POSSYNC_TRY(writeMetaU64(txn_, store_->metaDbi(), "outbox_count", meta_.outboxCount));
    return writeMetaU64(txn_, store_->metaDbi(), "outbox_bytes", meta_.outboxBytes);
}

static bool fullSyncRunning(const std::string& dir) {
    int fd = ::open((dir + "/possync.full").c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return false;
    bool busy = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);
    return busy;
}

Result<PromoteResult> Store::promote(const PromoteOptions& options) {
    auto refusal = [&](const Meta& m) -> std::optional<Error> {
        if (m.role != Role::Slave) return makeError(Errc::Refused, dir_ + " is already a master's directory");
        if (!m.synced)
            return makeError(Errc::Refused, dir_ +
                                                " has never completed a sync with a master: it holds no "
                                                "data of the store to continue from");
        return std::nullopt;
    };
    {
        auto m = meta();
        if (!m) return m.takeError();
        if (auto e = refusal(*m)) return *e;
    }
    // A FULL sync holds LMDB's writer lock for its whole length: refused at once, as writers are.
    if (fullSyncRunning(dir_))
        return makeError(Errc::Busy, dir_ +
                                         ": a FULL sync is in progress; its data is not complete, "
                                         "promote once it is done");
    PromoteResult out;
    {
        auto txn = lmdb::Txn::begin(*env_, true);
        if (!txn) return txn.takeError();
        auto m = readMeta(*txn, metaDbi_);
        if (!m) return m.takeError();
        if (auto e = refusal(*m)) return *e;
        Meta next = *m;
        out.parent = m->generation;
        out.forkSeq = m->seq;
        out.term = std::max({m->term, m->highestTermSeen, options.minTerm}) + 1;
        do out.generation = randomU64();
        while (out.generation == 0 || out.generation == m->generation);
        pushHistory(next.history, HistoryRecord{out.generation, out.parent, out.forkSeq, out.term});
        next.generation = out.generation;
        next.term = out.term;
        next.highestTermSeen = out.term;
        next.role = Role::Master;
        next.rolePinned = true;  // a restart with the board's old --role slave stays master
        next.fenced.clear();
        // The log goes on at seq+1 (WriteTxn: meta seq + 1, the new generation in the header).
        POSSYNC_TRY(writeMeta(*txn, metaDbi_, next));
        POSSYNC_TRY(txn->commit());
    }
    auto drained = drainOwnOutbox();
    if (!drained) return drained.takeError();
    out.drained = *drained;
    touchNotify();
    return out;
}

Result<uint64_t> Store::drainOwnOutbox() {
    std::vector<std::pair<uint64_t, std::string>> queued;
    POSSYNC_TRY(readOutbox(0, [&](uint64_t id, Bytes frame) {
        queued.emplace_back(id, frame.str());
        return true;
    }));
    uint64_t handled = 0;
    for (auto& [id, frame] : queued) {
        auto f = wire::verifyFrame(Bytes(frame));
        const wire::WriteRequest* req = f ? wire::asWriteRequest(*f) : nullptr;
        std::optional<RequestResult> settle;  // an outcome with no log entry that removes it
        bool record = true;
        if (!req) {
            settle = RequestResult{id, true, 0, "the queued request is unreadable"};
        } else {
            auto o = applyRequest(req);
            if (!o) return o.takeError();
            // Applied and logged: it left the outbox in its own transaction (settleOwnQueued).
            if (o->result.seq != 0 && !o->duplicate) {
                ++handled;
                continue;
            }
            settle = o->result;
            record = !o->duplicate;  // a duplicate's outcome is stored already
        }
        auto txn = lmdb::Txn::begin(*env_, true);
        if (!txn) return txn.takeError();
        auto m = readMeta(*txn, metaDbi_);
        if (!m) return m.takeError();
        uint8_t key[8];
        putBe64(key, id);
        auto old = txn->get(requestDbs_.outbox, Bytes(key, 8));
        if (!old) return old.takeError();
        if (*old) {
            uint64_t size = (*old)->size;
            POSSYNC_TRY(txn->del(requestDbs_.outbox, Bytes(key, 8)));
            POSSYNC_TRY(
                writeMetaU64(*txn, metaDbi_, "outbox_count", m->outboxCount ? m->outboxCount - 1 : 0));
            POSSYNC_TRY(writeMetaU64(*txn, metaDbi_, "outbox_bytes",
                                     m->outboxBytes >= size ? m->outboxBytes - size : 0));
        }
        if (record) POSSYNC_TRY(putResult(*txn, requestDbs_, m->device, *settle));
        if (settle->rejected) {
            std::string why = "request " + std::to_string(id) + ": " + settle->reason;
            POSSYNC_TRY(txn->put(metaDbi_, Bytes("last_rejection"), Bytes(why)));
        }
        POSSYNC_TRY(txn->commit());
        ++handled;
    }
    return handled;
}

Result<ResumePlan> Store::resumePlan(uint64_t peerGeneration, uint64_t peerSeq) {
    auto txn = lmdb::Txn::begin(*env_, false);
    if (!txn) return txn.takeError();
    auto m = readMeta(*txn, metaDbi_);
    if (!m) return m.takeError();
    if (m->role != Role::Master)
        return makeError(Errc::Refused, dir_ + " is a slave's directory: it serves no peer");
    ResumeView view{m->history, m->generation, m->seq, 0, m->resyncSeq};
    auto cur = lmdb::Cursor::open(*txn, logDbi_);
    if (!cur) return cur.takeError();
    Bytes k, v;
    auto first = cur->first(k, v);
    if (!first) return first.takeError();
    if (*first && k.size == 8) view.logFirst = getBe64(k.data);
    return planResume(view, peerGeneration, peerSeq);
}

Status Store::noteTerm(uint64_t term) {
    {
        auto m = meta();
        if (!m) return m.takeError();
        if (m->highestTermSeen >= term) return {};
    }
    auto txn = lmdb::Txn::begin(*env_, true);
    if (!txn) return txn.takeError();
    auto m = readMeta(*txn, metaDbi_);
    if (!m) return m.takeError();
    if (m->highestTermSeen >= term) return {};
    POSSYNC_TRY(writeMetaU64(*txn, metaDbi_, "highest_term_seen", term));
    return txn->commit();
}

Status Store::fence(const std::string& reason) {
    if (reason.empty()) return makeError(Errc::InvalidArgument, "fence needs a reason");
    auto txn = lmdb::Txn::begin(*env_, true);
    if (!txn) return txn.takeError();
    POSSYNC_TRY(txn->put(metaDbi_, Bytes("fenced"), Bytes(reason)));
    POSSYNC_TRY(txn->commit());
    return {};
}

Status Store::unfence() {
    auto txn = lmdb::Txn::begin(*env_, true);
    if (!txn) return txn.takeError();
    POSSYNC_TRY(txn->put(metaDbi_, Bytes("fenced"), Bytes("")));
    return txn->commit();
}

Status Store::rejoinAsSlave() {
    auto txn = lmdb::Txn::begin(*env_, true);
    if (!txn) return txn.takeError();
    auto m = readMeta(*txn, metaDbi_);
    if (!m) return m.takeError();
    Meta next = *m;
    next.role = Role::Slave;
    next.synced = false;     // its data left the store's history at the fork: a FULL sync next
    next.rolePinned = true;  // a restart with the board's old --role master stays slave
    next.fenced.clear();
    POSSYNC_TRY(writeMeta(*txn, metaDbi_, next));
    POSSYNC_TRY(txn->commit());
    return {};
}

namespace {

void appendHex(std::string& out, Bytes b) {
    static const char* hex = "0123456789abcdef";
    for (size_t i = 0; i < b.size; ++i) {
        out += hex[b.data[i] >> 4];
        out += hex[b.data[i] & 15];
    }
}

const char* opName(wire::Op op) {
    switch (op) {
        case wire::Op::PUT: return "put";
        case wire::Op::DEL: return "del";
        case wire::Op::CLEAR: return "clear";
        case wire::Op::ADD: return "add";
    }
    return "?";
}

Status writeAll(int fd, const std::string& data, const std::string& path) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return makeError(Errc::Io, "cannot write " + path + ": " + strerror(errno));
        off += size_t(n);
    }
    return {};
}

}  // namespace

// The export format: text lines, '#' lines are comments; every change of every exported entry
// is one line "seq<TAB>op<TAB>table<TAB>key<TAB>value" with key and value in hex, as
// `possync --hex dump` prints "table<TAB>key<TAB>value" (op: put, del, clear; del and clear
// have an empty value, clear an empty key). An entry that answered a forwarded request is
// preceded by a comment naming the device, request and outcome.
Result<ExportInfo> Store::exportSince(uint64_t forkSeq, const std::string& path) {
    auto rt = beginRead();
    if (!rt) return rt.takeError();
    const Meta& m = rt->meta();
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return makeError(Errc::Io, "cannot create " + tmp + ": " + strerror(errno));
    auto fail = [&](Error e) -> Error {
        ::close(fd);
        ::unlink(tmp.c_str());
        return e;
    };
    ExportInfo info;
    std::string buf = "# possync export of " + m.device + ": generation " + hex64(m.generation) + " (term " +
                      std::to_string(m.term) + "), log entries after seq " + std::to_string(forkSeq) +
                      " up to " + std::to_string(m.seq) + "\n# seq\top\ttable\tkey (hex)\tvalue (hex)\n";
    auto cur = lmdb::Cursor::open(rt->raw(), logDbi_);
    if (!cur) return fail(cur.takeError());
    uint8_t from[8];
    putBe64(from, forkSeq + 1);
    Bytes k, v;
    for (auto r = cur->seek(Bytes(from, 8), k, v);; r = cur->next(k, v)) {
        if (!r) return fail(r.takeError());
        if (!*r || k.size != 8) break;
        uint64_t seq = getBe64(k.data);
        auto f = wire::verifyFrame(v);
        const wire::ChangeModel* cm = f ? wire::asChangeModel(*f) : nullptr;
        if (!cm) return fail(makeError(Errc::Corrupt, "log entry " + std::to_string(seq) + " is unreadable"));
        if (!info.firstSeq) info.firstSeq = seq;
        if (const wire::Origin* o = cm->origin()) {
            buf += "# seq " + std::to_string(seq) + ": request " + std::to_string(o->request_id()) + " of " +
                   std::string(wire::textOf(o->device_id())) +
                   (o->status() == wire::WriteStatus::REJECTED
                        ? ", rejected: " + std::string(wire::textOf(o->reason()))
                        : std::string(", committed")) +
                   "\n";
        }
        if (cm->changes()) {
            for (const wire::Change* c : *cm->changes()) {
                buf += std::to_string(seq) + '\t' + opName(c->op()) + '\t' + std::string(wire::tableOf(c)) +
                       '\t';
                appendHex(buf, wire::keyOf(c));
                buf += '\t';
                appendHex(buf, wire::valueOf(c));
                buf += '\n';
                ++info.changes;
            }
        }
        ++info.entries;
        if (buf.size() > (1u << 20)) {
            if (auto w = writeAll(fd, buf, tmp); !w) return fail(w.takeError());
            buf.clear();
        }
    }
    // Entries after the fork that were trimmed before this export are lost to it: say so.
    info.complete = m.seq <= forkSeq || info.firstSeq == forkSeq + 1;
    if (!info.complete)
        buf += "# INCOMPLETE: the log no longer held seq " + std::to_string(forkSeq + 1) + " (trimmed)\n";
    if (auto w = writeAll(fd, buf, tmp); !w) return fail(w.takeError());
    if (::fsync(fd) != 0) return fail(makeError(Errc::Io, "cannot fsync " + tmp + ": " + strerror(errno)));
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return makeError(Errc::Io, "cannot rename " + tmp + " to " + path + ": " + strerror(e));
    }
    std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
    if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
        (void)::fsync(dfd);  // the rename itself durable
        ::close(dfd);
    }
    return info;
}

}  // namespace possync::store
