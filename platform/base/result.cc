#include "base/result.h"

namespace possync {

const char* errcName(Errc errc) {
    switch (errc) {
        case Errc::InvalidArgument: return "invalid-argument";
        case Errc::NotFound: return "not-found";
        case Errc::Exists: return "exists";
        case Errc::MapFull: return "map-full";
        case Errc::TooLarge: return "too-large";
        case Errc::Io: return "io";
        case Errc::Corrupt: return "corrupt";
        case Errc::Version: return "version";
        case Errc::Refused: return "refused";
        case Errc::Protocol: return "protocol";
        case Errc::Closed: return "closed";
        case Errc::Busy: return "busy";
        case Errc::Rejected: return "rejected";
        case Errc::Full: return "full";
    }
    return "unknown";
}

}  // namespace possync
