// Private helpers of platform/uv: error mapping, the log category, callback invocation.
// Includes <uv.h>; only platform/uv sources include this file.
#pragma once

#include <uv.h>

#include <string>
#include <string_view>
#include <utility>

#include "base/result.h"
#include "log/log.h"

namespace possync::uv {

POSSYNC_LOG_DECLARE(Uv);

// Errc::Io with "<what>: <uv_strerror(code)>".
inline Error uvError(int code, std::string_view what) {
    return makeError(Errc::Io, std::string(what) + ": " + uv_strerror(code));
}

inline Status uvStatus(int code, std::string_view what) {
    if (code < 0) return uvError(code, what);
    return {};
}

inline Error closedError(std::string_view what) {
    return makeError(Errc::Closed, std::string(what) + ": handle is closed");
}

// Calls the callback held in `slot` so that the callback may replace the slot (or destroy
// the wrapper that holds it, which is freed later) while it runs: the callable is moved to
// the stack for the call and put back only if nobody stored a new one meanwhile.
template <typename F, typename... Args>
void invokeSlot(F& slot, Args&&... args) {
    if (!slot) return;
    F running = std::move(slot);
    slot = nullptr;
    running(std::forward<Args>(args)...);
    if (!slot) slot = std::move(running);
}

}  // namespace possync::uv
