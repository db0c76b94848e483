// scenario_writer's `orders` and `check-orders` modes (slave writes, issue 12): transactions of
// orders with ADD and conditions through the store's single write entry point, and the one-read
// check of what they leave.
//   scenario_writer orders --data DIR --prefix P --count N [--first F] [--add D] [--last-key K]
//                          [--chain 1] [--claim KEY] [--wait-ms W] [--out FILE] [--pause-ms P --every K]
//       A till taking orders (issue 12), on any board: N transactions, one request each on a
//       slave: transaction i (F, default 1, to F+N-1) puts orders/P/<i, 8 digits> = "P i", with
//       --add D also ADDs D to stock/items (8-byte BE signed), with --last-key K also puts
//       orders/K = "i" (a sequence on one key: its final value shows the order of application);
//       --chain 1 with --last-key also requires orders/K to hold "i-1" (absent for i = 1) when
//       applied: a request applied out of order or twice is rejected (and so is every one after).
//       Then with --claim KEY one more transaction: require stock/KEY absent + put stock/KEY = P
//       (the "last item": exactly one board may win it). A board busy with a FULL sync (Busy) is
//       retried. With --wait-ms W (default 0: no wait) the writer then waits (one deadline of W ms
//       for all) until each request is committed and applied here or rejected. --out FILE gets
//       one line per transaction: "KEY committed SEQ", "KEY rejected REASON", "KEY queued REQ"
//       (not yet applied when the wait ended); the claim's KEY is "claim". Prints one summary:
//       "orders: P count=N committed=C rejected=R pending=Q claim=won|rejected|pending|-".
//   scenario_writer check-orders --data DIR --prefix P
//       Read only, in ONE read transaction (what a POS application reading the board sees): the
//       number of orders/P/... keys, stock/items and orders/last; checks what `orders --add 1
//       --last-key last` leaves after each transaction: items = last = number of orders (absent
//       counts as 0). Prints "orders=N items=I last=L" and exits 0, or names the mismatch, exit 1.
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "base/bytes.h"

#include "scenario_writer.h"
#include "store/requests.h"
#include "store/store.h"

namespace possync::scenario {
namespace {

// One transaction of `orders`: what it is and where it stands.
struct OrderTxn {
    std::string key;       // orders/P/i, or "claim"
    uint64_t request = 0;  // a slave's request id (0: applied at once, on a master)
    enum Kind { Committed, Rejected, Queued } kind = Queued;
    uint64_t seq = 0;
    std::string reason;
};

std::string orderKey(const std::string& prefix, uint64_t i) {
    char b[32];
    snprintf(b, sizeof b, "/%08" PRIu64, i);
    return prefix + b;
}

// Runs build(txn) in a write transaction and commits it; a FULL sync in progress on a slave
// (Errc::Busy) is retried for up to a minute. A condition the master (this board) finds false
// ends as Rejected, not as an error.
Status commitOrder(store::Store& s, OrderTxn& o, const std::function<Status(store::WriteTxn&)>& build) {
    for (int attempt = 0;; ++attempt) {
        auto txn = s.beginWrite();
        Result<store::CommitInfo> info = store::CommitInfo{};
        if (!txn) {
            info = txn.takeError();
        } else if (Status b = build(*txn); !b) {
            info = b.takeError();
        } else {
            info = txn->commitWrite();
        }
        if (info) {
            o.request = info->request;
            o.seq = info->seq;
            o.kind = info->request ? OrderTxn::Queued : OrderTxn::Committed;
            return Status{};
        }
        if (info.error().code == Errc::Rejected) {
            o.kind = OrderTxn::Rejected;
            o.reason = info.error().message;
            return Status{};
        }
        if (info.error().code != Errc::Busy || attempt >= 1200) return info.error();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

}  // namespace

int runOrders(store::Store& s, const Args& a) {
    auto count = number(a, "count", std::nullopt);
    auto first = number(a, "first", 1);
    auto waitMs = number(a, "wait-ms", 0);
    auto pacer = Pacer::fromArgs(a);
    if (!a.options.count("prefix")) return fail("--prefix P is required");
    if (!count || !first || !waitMs) return fail("--count N is required; --first and --wait-ms take numbers");
    if (!pacer) return fail("--pause-ms and --every take numbers (--every >= 1)");
    int64_t delta = 0;
    if (a.options.count("add")) {
        char* end = nullptr;
        const std::string& text = a.options.at("add");
        delta = std::strtoll(text.c_str(), &end, 10);
        if (text.empty() || *end) return fail("--add takes a signed number");
    }
    const std::string prefix = a.options.at("prefix");
    const std::string lastKey = a.options.count("last-key") ? a.options.at("last-key") : "";
    auto chainOpt = number(a, "chain", 0);
    if (!chainOpt || (*chainOpt && lastKey.empty())) return fail("--chain takes 0 or 1 and needs --last-key");
    const bool chain = *chainOpt != 0;
    std::vector<OrderTxn> done;
    done.reserve(*count + 1);
    for (uint64_t i = *first; i < *first + *count; ++i) {
        OrderTxn o;
        o.key = orderKey(prefix, i);
        std::string value = prefix + " " + std::to_string(i), seqText = std::to_string(i);
        auto st = commitOrder(s, o, [&](store::WriteTxn& t) -> Status {
            POSSYNC_TRY(t.put("orders", Bytes(o.key), Bytes(value)));
            if (delta != 0) POSSYNC_TRY(t.add("stock", Bytes(std::string_view("items")), delta));
            if (chain && i == 1) POSSYNC_TRY(t.require("orders", Bytes(lastKey), store::Require::Absent));
            if (chain && i > 1)
                POSSYNC_TRY(t.require("orders", Bytes(lastKey), store::Require::ValueHash,
                                      store::valueHash(Bytes(std::to_string(i - 1)))));
            if (!lastKey.empty()) POSSYNC_TRY(t.put("orders", Bytes(lastKey), Bytes(seqText)));
            return Status{};
        });
        if (!st)
            return fail(o.key + " (transaction " + std::to_string(done.size() + 1) +
                        "): " + st.error().message);
        done.push_back(std::move(o));
        pacer->committed();
    }
    if (a.options.count("claim")) {
        OrderTxn o;
        o.key = "claim";
        const std::string claimKey = a.options.at("claim");
        auto st = commitOrder(s, o, [&](store::WriteTxn& t) -> Status {
            POSSYNC_TRY(t.require("stock", Bytes(claimKey), store::Require::Absent));
            return t.put("stock", Bytes(claimKey), Bytes(prefix));
        });
        if (!st) return fail("claim: " + st.error().message);
        done.push_back(std::move(o));
    }
    // Wait (one deadline for all) until each queued request is applied here or rejected.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(*waitMs);
    for (OrderTxn& o : done) {
        while (o.kind == OrderTxn::Queued && *waitMs > 0) {
            auto state = s.requestState(o.request);
            if (!state) return fail("request " + std::to_string(o.request) + ": " + state.error().message);
            if (state->kind == store::RequestState::Committed) {
                o.kind = OrderTxn::Committed;
                o.seq = state->seq;
            } else if (state->kind == store::RequestState::Rejected) {
                o.kind = OrderTxn::Rejected;
                o.reason = state->reason;
            } else if (state->kind == store::RequestState::Unknown) {
                return fail("request " + std::to_string(o.request) + ": " + state->reason);
            } else if (std::chrono::steady_clock::now() >= deadline) {
                break;
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
        }
    }
    uint64_t committed = 0, rejected = 0, pending = 0;
    std::string claim = "-";
    FILE* out = nullptr;
    if (a.options.count("out")) {
        out = fopen(a.options.at("out").c_str(), "w");
        if (!out) return fail(a.options.at("out") + ": " + std::strerror(errno));
    }
    for (const OrderTxn& o : done) {
        if (o.key == "claim")
            claim = o.kind == OrderTxn::Committed  ? "won"
                    : o.kind == OrderTxn::Rejected ? "rejected"
                                                   : "pending";
        else
            (o.kind == OrderTxn::Committed  ? committed
             : o.kind == OrderTxn::Rejected ? rejected
                                            : pending) += 1;
        if (!out) continue;
        if (o.kind == OrderTxn::Committed)
            fprintf(out, "%s committed %" PRIu64 "\n", o.key.c_str(), o.seq);
        else if (o.kind == OrderTxn::Rejected)
            fprintf(out, "%s rejected %s\n", o.key.c_str(), o.reason.c_str());
        else
            fprintf(out, "%s queued %" PRIu64 "\n", o.key.c_str(), o.request);
    }
    if (out && fclose(out) != 0) return fail(a.options.at("out") + ": " + std::strerror(errno));
    printf("orders: %s count=%" PRIu64 " committed=%" PRIu64 " rejected=%" PRIu64 " pending=%" PRIu64
           " claim=%s\n",
           prefix.c_str(), *count, committed, rejected, pending, claim.c_str());
    return 0;
}

int runCheckOrders(store::Store& s, const Args& a) {
    if (!a.options.count("prefix")) return fail("--prefix P is required");
    const std::string prefix = a.options.at("prefix") + "/";
    auto txn = s.beginRead();
    if (!txn) return fail(txn.error().message);
    uint64_t orders = 0;
    auto scanned = txn->scan("orders", Bytes(prefix), 0, [&](Bytes key, Bytes) {
        if (key.view().substr(0, prefix.size()) != prefix) return false;
        ++orders;
        return true;
    });
    if (!scanned && scanned.error().code != Errc::NotFound) return fail(scanned.error().message);
    int64_t items = 0;
    auto item = txn->get("stock", Bytes(std::string_view("items")));
    if (!item.ok() && item.error().code != Errc::NotFound) return fail(item.error().message);
    if (item.ok() && *item) {
        if ((**item).size != 8) return fail("stock/items is not an 8-byte counter");
        items = static_cast<int64_t>(getBe64((**item).data));
    }
    uint64_t last = 0;
    auto l = txn->get("orders", Bytes(std::string_view("last")));
    if (!l.ok() && l.error().code != Errc::NotFound) return fail(l.error().message);
    if (l.ok() && *l) {
        auto v = parseU64((**l).view());
        if (!v) return fail("orders/last holds '" + (**l).str() + "', not a number");
        last = *v;
    }
    std::string line = "orders=" + std::to_string(orders) + " items=" + std::to_string(items) +
                       " last=" + std::to_string(last);
    if (items != static_cast<int64_t>(orders) || last != orders) return fail("inconsistent read: " + line);
    printf("%s\n", line.c_str());
    return 0;
}

}  // namespace possync::scenario
