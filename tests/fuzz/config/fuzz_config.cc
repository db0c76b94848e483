// Fuzz target: the config file parser (toml++) and possyncd's option validation.
//
// The input is the text of a config file. It goes through daemon::loadConfigText (the same
// code as --config FILE) into Options that start at their defaults; when that succeeds,
// through daemon::validate, and the addresses through parseHostPort. Errors are expected
// for most inputs; what must never happen is a crash, a hang or an exception (the firmware
// is built without them: toml++ runs in its no-exception mode).
#include <cstdint>
#include <string>
#include <string_view>

#include "base/host_port.h"
#include "log/log.h"

#include "daemon/options.h"
#include "fuzz_target.h"

using namespace possync;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    log::setStderr(false);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    daemon::Options options;
    auto r = daemon::loadConfigText(text, "fuzz.toml", options);
    if (!r) {
        (void)r.error().message.size();
        return 0;
    }
    (void)daemon::validate(options);
    (void)possync::parseHostPort(options.listen, possync::PortUse::Listen);
    (void)possync::parseHostPort(options.master, possync::PortUse::Connect);
    return 0;
}
