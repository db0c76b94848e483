// FakeBackend: a console::Backend with fixed, inspectable state for the console tests.
#pragma once

#include <functional>
#include <map>
#include <vector>

#include "console/backend.h"

namespace possync::console::test {

class FakeBackend final : public Backend {
public:
    FakeBackend() {
        statusInfo.role = "slave";
        statusInfo.store = "shop1";
        statusInfo.device = "till-2";
        statusInfo.key = "4f1c9a20b7d3e865";
        statusInfo.generation = 0x0123456789abcdefULL;
        statusInfo.position = 41;
        statusInfo.masterHead = 42;
        statusInfo.lagChanges = 1;
        statusInfo.lagMs = 15;
        statusInfo.link = "connected";
        statusInfo.uptimeS = 3600;
        statusInfo.discovery = "avahi";
        data["orders"] = {{"a1", "one"},
                          {"a2", "two words"},
                          {"b1", "three"},
                          {std::string("\x00\xff", 2), std::string("\x01\x02", 2)}};
        data["menu"] = {};
    }

    StatusInfo status() override { return statusInfo; }
    std::vector<PeerInfo> peers() override { return peerList; }
    std::vector<TableInfo> tables() override {
        std::vector<TableInfo> out;
        for (const auto& [name, rows] : data)
            out.push_back(TableInfo{name, rows.size(), name == "orders", "00ff"});
        return out;
    }
    Result<std::optional<std::string>> get(const std::string& table, const std::string& key) override {
        auto t = data.find(table);
        if (t == data.end()) return makeError(Errc::NotFound, "no table '" + table + "'");
        auto v = t->second.find(key);
        if (v == t->second.end()) return std::optional<std::string>();
        return std::optional<std::string>(v->second);
    }
    Result<std::vector<KeyValue>> scan(const std::string& table, const std::string& prefix,
                                       size_t limit) override {
        lastScanLimit = limit;
        auto t = data.find(table);
        if (t == data.end()) return makeError(Errc::NotFound, "no table '" + table + "'");
        std::vector<KeyValue> out;
        for (auto it = t->second.lower_bound(prefix);
             it != t->second.end() && it->first.compare(0, prefix.size(), prefix) == 0 && out.size() < limit;
             ++it)
            out.push_back(*it);
        return out;
    }
    StatsInfo stats() override {
        return StatsInfo{{{"frames_in", 10}, {"bytes_in", 2048}, {"errors_protocol", 0}}};
    }
    Result<std::string> resync() override {
        ++resyncs;
        if (statusInfo.role != "slave") return makeError(Errc::Refused, "resync: this board is the master");
        return std::string("full sync requested");
    }
    Result<std::string> acceptGeneration() override {
        if (statusInfo.waiting.empty())
            return makeError(Errc::Refused, "accept-generation: not waiting for a new generation");
        statusInfo.waiting.clear();
        ++accepts;
        return std::string("generation accepted; full sync started");
    }
    std::vector<std::string> discovery() override { return discoveryLines; }
    Result<OutboxInfo> outbox() override {
        if (statusInfo.role != "slave")
            return makeError(Errc::Refused, "outbox is for slaves; this board is the master");
        return outboxInfo;
    }
    Result<std::vector<ClientInfo>> clients() override {
        if (clientsError) return *clientsError;
        return clientList;
    }
    void promote(bool confirmed, NoteDone done) override {
        promoteCalls.push_back(confirmed);
        Result<std::string> r = std::string("promoted");
        if (statusInfo.role != "slave")
            r = makeError(Errc::Refused, "promote is for slaves");
        else if (!confirmed && masterAlive)
            r = makeError(Errc::Refused, "a master may still be alive; if it is gone: promote confirm");
        if (deferNotes)
            deferred.push_back([done = std::move(done), r] { done(r); });
        else
            done(std::move(r));
    }
    void rejoin(NoteDone done) override {
        ++rejoins;
        Result<std::string> r = std::string("exported 3 log entries to /d/x.tsv");
        if (statusInfo.role != "master") r = makeError(Errc::Refused, "rejoin is for a master");
        if (deferNotes)
            deferred.push_back([done = std::move(done), r] { done(r); });
        else
            done(std::move(r));
    }
    Result<PairInfo> pairList() override { return pairInfo; }
    void pair(const std::string& verb, const std::string& arg, NoteDone done) override {
        pairCalls.emplace_back(verb, arg);
        if (statusInfo.role != "master")
            return done(makeError(Errc::Refused, "pairing is settled on the master; this board is a slave"));
        done(verb + " " + arg);
    }
    // promote/rejoin answer later (as the daemon does when the work runs off the loop): each
    // answer waits in `deferred` until the test runs it.
    bool deferNotes = false;
    std::vector<std::function<void()>> deferred;

    StatusInfo statusInfo;
    std::vector<PeerInfo> peerList;
    std::map<std::string, std::map<std::string, std::string>> data;
    std::vector<std::string> discoveryLines;
    OutboxInfo outboxInfo;
    std::vector<ClientInfo> clientList;
    std::optional<Error> clientsError;
    size_t lastScanLimit = 0;
    int resyncs = 0;
    int accepts = 0;
    bool masterAlive = false;
    std::vector<bool> promoteCalls;
    int rejoins = 0;
    Result<PairInfo> pairInfo = PairInfo{};
    std::vector<std::pair<std::string, std::string>> pairCalls;
};

}  // namespace possync::console::test
