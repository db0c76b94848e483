// console::Backend: what the diagnostic console asks of the daemon (the daemon implements it).
//
// The interpreter only formats what these calls return; it never reaches into the store,
// the sync engine or discovery itself. Every call is made on the daemon's loop thread,
// between two loop turns, and must return promptly (no waiting on the network): the console
// must never block the sync loop. Plain structs keep the daemon free to compute the values
// however it likes; fields that have no meaning in the current role are left empty/nullopt
// and printed as "-".
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace possync::console {

// Where a command that may finish later (promote, rejoin) sends its one-line note or error.
using NoteDone = std::function<void(Result<std::string>)>;

// The `status` command: one board's view of itself.
struct StatusInfo {
    std::string role;                    // "master" or "slave"
    std::string store;                   // store id
    std::string device;                  // this board's device id
    std::string key;                     // the fingerprint of this board's key (trust/keys.h)
    uint64_t generation = 0;             // generation of the data set (printed as 16 hex digits)
    uint64_t term = 0;                   // its failover term (DESIGN.md §10; 0: never failed over)
    uint64_t position = 0;               // seq of the last change committed (master) or applied (slave)
    std::optional<uint64_t> masterHead;  // master's head seq as last heard (slave), own head (master)
    std::optional<uint64_t> lagChanges;  // slave: head - position; nullopt when unknown
    std::optional<uint64_t> lagMs;       // slave: how far behind the master's clock it is
    std::string link;                    // link state text: "connected", "connecting", "full-sync", ...
    uint64_t uptimeS = 0;                // seconds since the daemon started
    std::string discovery;               // where the master came from: "avahi", "static", "-" on a master
    std::string waiting;                 // why the board is held back, e.g. "master generation changed:
                                         // run accept-generation"; empty when it is not waiting
    std::string trust;                   // the trust set and this board's pairing state (DESIGN.md §11)
    std::string failover;  // slave: what its last FULL after a promotion discarded (changes it held
                           // past the fork, which the new master never received); empty: nothing
};

// One line of `peers`: on a master every connected or recently seen slave; on a slave its
// master.
struct PeerInfo {
    std::string address;               // "10.0.0.5:7400"
    std::string device;                // the peer's device id
    std::optional<uint64_t> position;  // slave's acknowledged seq (master view) / master head
    std::optional<uint64_t> lagChanges;
    std::optional<uint64_t> lagMs;
    std::string state;                       // "streaming", "full-sync", "connecting", "down", ...
    std::optional<uint64_t> heartbeatAgoMs;  // time since the last Ping/Pong/frame from it
    std::string foundVia;                    // "avahi", "static", "incoming"
};

// One line of `tables`.
struct TableInfo {
    std::string name;
    uint64_t entries = 0;
    bool watched = false;
    std::string digest;  // hex digest of the table's contents
};

// The `stats` command: named counters in the order they should be printed. A vector, so
// the daemon can add counters without changing the console.
struct StatsInfo {
    std::vector<std::pair<std::string, uint64_t>> counters;
};

using KeyValue = std::pair<std::string, std::string>;  // raw key and value bytes

// The `outbox` command (DESIGN.md §9): a slave's requests waiting for the master.
struct OutboxInfo {
    uint64_t count = 0;                   // requests queued (not yet applied here)
    uint64_t bytes = 0;                   // their size
    uint64_t limit = 0;                   // --outbox-max-bytes: writes fail past it
    std::optional<uint64_t> oldestId;     // the oldest queued request; nullopt when empty
    std::optional<uint64_t> oldestAgeMs;  // how long it has waited (wall clock)
    uint64_t held = 0;                    // written against another generation: kept, not forwarded
    uint64_t nextRequest = 1;             // the id the next request will get
    std::string lastRejection;            // the master's last rejection of this board's requests
};

// One line of `clients`: a writing board as the master recorded it (possync.clients, which
// replicates, so a slave shows the master's records as of its position).
struct ClientInfo {
    std::string device;
    uint64_t lastRequest = 0;  // the newest request id handled for it
    uint64_t lastSeq = 0;      // the master's seq that carried its newest applied request
    uint64_t applied = 0;
    uint64_t rejected = 0;
};

// One line of `pair list` (DESIGN.md §11).
struct PairEntry {
    std::string state;              // "member", "pending" (asks to pair), "needs-upgrade" (older protocol)
    std::string device;             // device id (or the key's fingerprint, or the address)
    std::string key;                // the key's fingerprint; "-" when unknown
    std::string detail;             // member: how it joined; pending: address and verification code
    std::optional<uint64_t> agoMs;  // member: since it joined; pending: since it first asked
};

struct PairInfo {
    std::string summary;  // members, window, this board's state
    std::vector<PairEntry> entries;
};

class Backend {
public:
    virtual ~Backend() = default;

    virtual StatusInfo status() = 0;
    virtual std::vector<PeerInfo> peers() = 0;
    virtual std::vector<TableInfo> tables() = 0;
    // The value stored under `key`, nullopt if there is none. An error for an unknown
    // table or a store failure (the message is shown to the operator).
    virtual Result<std::optional<std::string>> get(const std::string& table, const std::string& key) = 0;
    // Up to `limit` entries of `table` whose key starts with `prefix`, in key order.
    virtual Result<std::vector<KeyValue>> scan(const std::string& table, const std::string& prefix,
                                               size_t limit) = 0;
    virtual StatsInfo stats() = 0;
    // Slave: drop the position and ask the master for a FULL sync. Returns a one-line note
    // for the operator ("full sync requested"); Refused on a master.
    virtual Result<std::string> resync() = 0;
    // Slave: accept the master generation it is waiting on. Returns a one-line note;
    // Refused when nothing is waiting or on a master.
    virtual Result<std::string> acceptGeneration() = 0;
    // What discovery currently sees, one human-readable line per service/event.
    virtual std::vector<std::string> discovery() = 0;
    // Slave: its outbox. Refused on a master (it has none: see clients()).
    virtual Result<OutboxInfo> outbox() = 0;
    // The writing boards, in device order. An error only for a store failure.
    virtual Result<std::vector<ClientInfo>> clients() = 0;
    // Failover (DESIGN.md §10). Slave: become the master of a new generation; without `confirmed`
    // refused while a master of the store may still be alive (the error says what is seen).
    // Answers a one-line note through `done` (once, on the loop: at once for a refusal, later
    // when the work ran off the loop); the daemon restarts itself as master after answering.
    virtual void promote(bool confirmed, NoteDone done) = 0;
    // Master (fenced or not): export its generation's changes to a file, become a slave. Answers
    // a one-line note naming the file through `done`; the daemon restarts itself as a slave after.
    virtual void rejoin(NoteDone done) = 0;
    // Trust (DESIGN.md §11). The trust set and pairing requests.
    virtual Result<PairInfo> pairList() = 0;
    // Master: `verb` accept|reject|open|close|remove with its argument; the note through `done`.
    // Refused on a slave.
    virtual void pair(const std::string& verb, const std::string& arg, NoteDone done) = 0;
};

}  // namespace possync::console
