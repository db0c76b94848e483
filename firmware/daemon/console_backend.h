// DaemonBackend: the console's view of a running daemon (console::Backend over the store, the
// sync engine and discovery). Every call reads current state and returns at once.
#pragma once

#include "console/backend.h"

namespace possync::daemon {

class Daemon;

class DaemonBackend final : public console::Backend {
public:
    explicit DaemonBackend(Daemon& daemon) : daemon_(daemon) {}

    console::StatusInfo status() override;
    std::vector<console::PeerInfo> peers() override;
    std::vector<console::TableInfo> tables() override;
    Result<std::optional<std::string>> get(const std::string& table, const std::string& key) override;
    Result<std::vector<console::KeyValue>> scan(const std::string& table, const std::string& prefix,
                                                size_t limit) override;
    console::StatsInfo stats() override;
    Result<std::string> resync() override;
    Result<std::string> acceptGeneration() override;
    std::vector<std::string> discovery() override;
    Result<console::OutboxInfo> outbox() override;
    Result<std::vector<console::ClientInfo>> clients() override;
    void promote(bool confirmed, console::NoteDone done) override;
    void rejoin(console::NoteDone done) override;
    Result<console::PairInfo> pairList() override;
    void pair(const std::string& verb, const std::string& arg, console::NoteDone done) override;

private:
    Daemon& daemon_;
};

}  // namespace possync::daemon
