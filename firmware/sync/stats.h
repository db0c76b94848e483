// Counters of one daemon's sync engine, shown by the console's `stats` command.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace possync::sync {

struct Stats {
    uint64_t framesIn = 0, framesOut = 0;
    uint64_t bytesIn = 0, bytesOut = 0;
    uint64_t changesIn = 0, changesOut = 0;
    uint64_t fullSyncs = 0;         // FULL syncs started (master) or completed (slave)
    uint64_t incrementalSyncs = 0;  // links that resumed INCREMENTAL
    uint64_t connects = 0;          // links accepted (master) or made (slave)
    uint64_t reconnects = 0;        // slave: links made after the first
    uint64_t snapshotChunksBuilt = 0;
    uint64_t snapshotChunksShared = 0;
    uint64_t logTrims = 0;  // master: log trims committed (each off the loop, on a worker)
    // Slave writes (DESIGN.md §9): master: WriteRequests received / rejected; slave: requests
    // forwarded (resends included) and their answers.
    uint64_t requestsIn = 0, requestsRejected = 0;
    uint64_t requestsOut = 0, requestResults = 0;
    std::map<std::string, uint64_t> errors;  // by kind: "protocol", "timeout", "verify", ...

    void error(const std::string& kind) { ++errors[kind]; }
    // name/value pairs in a stable order, for the console.
    std::vector<std::pair<std::string, uint64_t>> list() const {
        std::vector<std::pair<std::string, uint64_t>> out = {{"frames_in", framesIn},
                                                             {"frames_out", framesOut},
                                                             {"bytes_in", bytesIn},
                                                             {"bytes_out", bytesOut},
                                                             {"changes_in", changesIn},
                                                             {"changes_out", changesOut},
                                                             {"full_syncs", fullSyncs},
                                                             {"incremental_syncs", incrementalSyncs},
                                                             {"connects", connects},
                                                             {"reconnects", reconnects},
                                                             {"snapshot_chunks_built", snapshotChunksBuilt},
                                                             {"snapshot_chunks_shared", snapshotChunksShared},
                                                             {"log_trims", logTrims},
                                                             {"requests_in", requestsIn},
                                                             {"requests_rejected", requestsRejected},
                                                             {"requests_out", requestsOut},
                                                             {"request_results", requestResults}};
        for (const auto& [kind, n] : errors) out.emplace_back("errors_" + kind, n);
        return out;
    }
};

}  // namespace possync::sync
