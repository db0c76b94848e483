// MasterFinder: how a slave learns where its store's master is: a fixed --master HOST:PORT
// (static mode) or Avahi browsing of _possync._tcp filtered by store and protocol.
//
// Event-driven interface for the sync engine: candidates() is the current list, the change
// callback reports each Added/Removed/Updated candidate, the state callback reports
// Searching/Found/Conflict, and choose() answers "whom do I connect to?" with the single
// board's candidate or an error saying why not (no master yet, or two boards claiming the
// store: a conflict is reported and logged, never resolved at random).
//
// A candidate is a claim, not proof of life: a master that died without a goodbye stays
// listed for minutes. The caller still connects, and keeps listening for changes.
// Callbacks report changes after create(); read candidates()/state() for the start.
// Callbacks run on the loop and must not destroy the MasterFinder.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

#include "discovery/candidate_table.h"

struct uv_loop_s;

namespace possync::discovery {

enum class DiscoveryMode {
    Static,    // --master HOST:PORT, no discovery
    Avahi,     // browse _possync._tcp through avahi-daemon
    Injected,  // sightings fed by the caller (tests, tools); no I/O
};
const char* discoveryModeName(DiscoveryMode mode);
// "static" | "avahi" (the --discovery values).
Result<DiscoveryMode> parseDiscoveryMode(std::string_view text);

// What the console's `discovery` command shows.
struct DiscoverySnapshot {
    DiscoveryMode mode = DiscoveryMode::Static;
    std::string storeId;
    FinderState state = FinderState::Searching;
    std::string source;            // "static 10.0.0.5:7700", "avahi running (host s1.local)", ...
    bool initialScanDone = false;  // Avahi sent "all for now" since the last (re)start
    std::vector<Candidate> candidates;
    std::vector<Ignored> ignored;
    std::string conflict;  // conflictText() or ""
    std::string tie;       // tieText() or ""
    uint64_t term = 0;     // the term followed (topTerm())
};
// Multi-line text, one item per line, ages relative to nowMs.
std::string formatSnapshot(const DiscoverySnapshot& snap, uint64_t nowMs);

class MasterFinder final {
public:
    using ChangeCallback = std::function<void(const Change&)>;
    using StateCallback = std::function<void(FinderState)>;

    // Static mode: one candidate from "HOST:PORT" that never goes away.
    static Result<std::unique_ptr<MasterFinder>> createStatic(std::string storeId, std::string_view hostPort);
    // Avahi mode on `loop` (borrowed; must outlive the finder). Refused if built without Avahi.
    static Result<std::unique_ptr<MasterFinder>> createAvahi(uv_loop_s* loop, std::string storeId);
    // Injected mode: the caller feeds inject()/injectGone().
    static Result<std::unique_ptr<MasterFinder>> createInjected(std::string storeId);
    // By mode name, as the daemon's command line gives it: static needs `master`; avahi
    // refuses a `master` (use one or the other).
    static Result<std::unique_ptr<MasterFinder>> create(uv_loop_s* loop, DiscoveryMode mode,
                                                        std::string storeId, std::string_view master);
    ~MasterFinder();
    MasterFinder(const MasterFinder&) = delete;
    MasterFinder& operator=(const MasterFinder&) = delete;

    DiscoveryMode mode() const { return mode_; }
    const std::string& storeId() const { return table_.storeId(); }
    FinderState state() const { return table_.state(); }
    const std::vector<Candidate>& candidates() const { return table_.candidates(); }
    Result<Candidate> choose() const { return table_.choose(); }
    DiscoverySnapshot snapshot() const;
    // The highest term this board has seen (from its store): masters below it are superseded.
    // Raising it may change the choice: the change and state callbacks then run.
    void setMinTerm(uint64_t term);
    // Announcements whose key fingerprint `trusted` refuses are ignored (CandidateTable).
    void setKeyFilter(std::function<bool(const std::string& fingerprint)> trusted) {
        table_.setKeyFilter(std::move(trusted));
    }

    void setChangeCallback(ChangeCallback callback) { changeCallback_ = std::move(callback); }
    void setStateCallback(StateCallback callback) { stateCallback_ = std::move(callback); }
    // Wall clock in ms since the epoch (tests inject one).
    void setClock(std::function<uint64_t()> clock) { clock_ = std::move(clock); }

    // Feeding (Injected mode; the Avahi side uses the same path).
    void inject(const Sighting& sighting);
    void injectGone(const std::string& serviceName);
    void injectAllForNow();

private:
    struct AvahiSide;  // the Avahi objects (master_finder.cc)
    MasterFinder(DiscoveryMode mode, std::string storeId);
    void apply(std::optional<Change> change);
    void reviewState();  // logs conflicts and ties, runs the state callback on a change

    DiscoveryMode mode_;
    CandidateTable table_;
    std::unique_ptr<AvahiSide> avahi_;
    FinderState lastState_ = FinderState::Searching;
    std::vector<std::string> lastConflictDevs_;
    std::string lastTie_;
    bool allForNow_ = false;
    ChangeCallback changeCallback_;
    StateCallback stateCallback_;
    std::function<uint64_t()> clock_;
};

}  // namespace possync::discovery
