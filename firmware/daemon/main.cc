// possyncd: the possync daemon of one POS board (DESIGN.md §5).
#include <cstdio>

#include "log/log.h"

#include "daemon/daemon.h"
#include "daemon/options.h"
#include "possync_config.h"
#include "store/dir_lock.h"

using namespace possync;

int main(int argc, char** argv) {
    daemon::Options options;
    auto parsed = daemon::parseOptions(argc, argv, options);
    if (!parsed) {
        fprintf(stderr, "possyncd: %s\n", parsed.error().message.c_str());
        return 2;
    }
    switch (*parsed) {
        case daemon::ParseOutcome::Help: fputs(daemon::helpText().c_str(), stdout); return 0;
        case daemon::ParseOutcome::Version:
            printf("possyncd %s (protocol %d, format %d)\n", POSSYNC_VERSION, POSSYNC_PROTOCOL_VERSION,
                   POSSYNC_FORMAT_VERSION);
            return 0;
        case daemon::ParseOutcome::PrintConfig: fputs(daemon::defaultConfigText().c_str(), stdout); return 0;
        case daemon::ParseOutcome::Run:
        case daemon::ParseOutcome::CheckConfig: break;
    }
    if (auto v = daemon::validate(options); !v) {
        fprintf(stderr, "possyncd: %s\n", v.error().message.c_str());
        return 2;
    }
    if (*parsed == daemon::ParseOutcome::CheckConfig) {
        printf("configuration ok: %s of store %s, data in %s\n", options.role.c_str(), options.store.c_str(),
               options.data.c_str());
        return 0;
    }
    log::setAllLevels(*log::parseLevel(options.logLevel));
    // The data directory is this daemon's until it exits: taken before the store opens, so a
    // second daemon changes nothing (role, store, generation), and released last (declared
    // before the daemon, so destroyed after it).
    auto dirLock = store::DirLock::acquire(options.data);
    if (!dirLock) {
        fprintf(stderr, "possyncd: %s\n", dirLock.error().message.c_str());
        return 1;
    }
    auto d = daemon::Daemon::create(options);
    if (!d) {
        fprintf(stderr, "possyncd: %s\n", d.error().message.c_str());
        return 1;
    }
    return (*d)->run();
}
