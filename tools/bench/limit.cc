#include "limit.h"

#include <unistd.h>

#include <chrono>

#include "lmdb/mdb.h"

#include "commands.h"

namespace possync::bench {

std::vector<uint8_t> pregenerateValues(uint64_t records, uint64_t valueSize, uint64_t maxBytes) {
    if (valueSize != 0 && records > maxBytes / valueSize) return {};
    std::vector<uint8_t> values(records * valueSize);
    for (uint64_t i = 0; i < records; ++i)
        tool::syntheticValue(1, i, values.data() + i * valueSize, valueSize);
    return values;
}

Result<LimitRun> runLimit(const std::string& dir, uint64_t records, uint64_t valueSize,
                          const std::vector<uint8_t>& values, size_t mapBytes) {
    using Steady = std::chrono::steady_clock;
    std::vector<uint8_t> scratch(values.empty() ? valueSize : 0);
    uint8_t key[16];
    const Sched s0 = readSched(::getpid());
    auto t0 = Steady::now();
    lmdb::EnvOptions eo;
    eo.mapSize = mapBytes;
    // The same LMDB mode as the slave's store (possyncd opens a slave with MDB_WRITEMAP): the
    // limit is the fastest way this LMDB takes the records, not a slower configuration.
    eo.writeMap = true;
    eo.maxDbs = 4;
    eo.create = true;
    auto env = lmdb::Env::open(dir, eo);
    if (!env) return env.takeError();
    {
        auto txn = lmdb::Txn::begin(**env, true);
        if (!txn) return txn.takeError();
        auto dbi = txn->open("bench", true);
        if (!dbi) return dbi.takeError();
        for (uint64_t i = 0; i < records; ++i) {
            tool::syntheticKey(i, key);
            const uint8_t* v;
            if (values.empty()) {
                tool::syntheticValue(1, i, scratch.data(), valueSize);
                v = scratch.data();
            } else {
                v = values.data() + i * valueSize;
            }
            POSSYNC_TRY(txn->put(*dbi, Bytes(key, sizeof key), Bytes(v, valueSize), lmdb::Txn::putAppend));
        }
        auto t1 = Steady::now();
        POSSYNC_TRY(txn->commit());
        auto t2 = Steady::now();
        const Sched s2 = readSched(::getpid());
        LimitRun run;
        if (s0.cpuS >= 0 && s2.cpuS >= 0) run.sched = Sched{s2.cpuS - s0.cpuS, s2.waitS - s0.waitS};
        run.seconds = std::chrono::duration<double>(t2 - t0).count();
        run.commitSeconds = std::chrono::duration<double>(t2 - t1).count();
        return run;
    }
}

}  // namespace possync::bench
