// possyncd: the possync daemon of one POS board (DESIGN.md §5).
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "log/log.h"

#include "daemon/daemon.h"
#include "daemon/options.h"
#include "possync_config.h"
#include "store/dir_lock.h"

using namespace possync;

namespace possync::daemon {
POSSYNC_LOG_DECLARE(Daemon);
}  // namespace possync::daemon

namespace {

std::string limitText(rlim_t n) {
    return n == RLIM_INFINITY ? std::string("unlimited") : std::to_string(n);
}

// Every slave link, console session, LMDB file and the Avahi client is a descriptor, and the
// soft RLIMIT_NOFILE a service starts with (often 1024) is far below the hard limit: a master
// near its soft limit could not accept a genuine slave (issue 10). Raised once, at start, to
// the hard limit, and logged so an operator sees the number the daemon runs with.
void raiseFileLimit() {
    using possync::daemon::logCategoryDaemon;
    struct rlimit lim {};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        LOG(Daemon, Warning) << "cannot read the open file limit";
        return;
    }
    if (lim.rlim_cur == lim.rlim_max) {
        LOG(Daemon, Info) << "open file limit: " << limitText(lim.rlim_cur);
        return;
    }
    const rlim_t before = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        // Linux refuses an unlimited soft limit for descriptors: keep the old one.
        LOG(Daemon, Warning) << "cannot raise the open file limit from " << limitText(before) << " to "
                             << limitText(lim.rlim_max) << "; it stays " << limitText(before);
        return;
    }
    LOG(Daemon, Info) << "open file limit raised from " << limitText(before) << " to "
                      << limitText(lim.rlim_max);
}

}  // namespace

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
        case daemon::ParseOutcome::PrintConfig:
            fputs(daemon::defaultConfigText(options).c_str(), stdout);
            return 0;
        case daemon::ParseOutcome::Run:
        case daemon::ParseOutcome::CheckConfig: break;
    }
    if (auto v = daemon::validate(options); !v) {
        fprintf(stderr, "possyncd: %s\n", v.error().message.c_str());
        return 2;
    }
    if (auto e = daemon::checkEnvironment(options); !e) {
        fprintf(stderr, "possyncd: %s\n", e.error().message.c_str());
        return 1;
    }
    if (*parsed == daemon::ParseOutcome::CheckConfig) {
        printf("configuration ok: %s of store %s, data in %s\n", options.role.c_str(), options.store.c_str(),
               options.data.c_str());
        return 0;
    }
    log::setAllLevels(*log::parseLevel(options.logLevel));
    raiseFileLimit();
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
    int rc = (*d)->run();
    if (!(*d)->restartRequested()) return rc;
    // Promote or rejoin changed the role in the data directory: the program starts again with
    // the same arguments and takes the role from there (daemon/role.h). Same pid, so a service
    // manager or a test harness keeps following it. The store is closed and the directory lock
    // released first (it is O_CLOEXEC as well).
    d->reset();
    dirLock->reset();
    fflush(nullptr);
    execv("/proc/self/exe", argv);
    // Not restarted here: exit non-zero, the packaged unit restarts us (Restart=on-failure).
    fprintf(stderr, "possyncd: cannot restart itself (%s); exiting for the service manager to restart it\n",
            strerror(errno));
    return 1;
}
