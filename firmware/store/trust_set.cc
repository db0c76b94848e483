#include "store/trust_set.h"

#include <algorithm>

namespace possync::store {

namespace {

constexpr size_t kFixedBytes = 9;  // addedMs (8) + how (1)

bool knownHow(uint8_t how) {
    return how <= static_cast<uint8_t>(TrustHow::Provisioned);
}

Error corrupt(const std::string& what) {
    return makeError(Errc::Corrupt, std::string(kTrustDb) + ": " + what);
}

}  // namespace

const char* trustHowName(TrustHow how) {
    switch (how) {
        case TrustHow::Self: return "self";
        case TrustHow::Accepted: return "accepted";
        case TrustHow::Window: return "window";
        case TrustHow::Provisioned: return "provisioned";
    }
    return "unknown";
}

Result<std::string> encodeTrustValue(const TrustMember& member) {
    if (member.name.size() > kMaxTrustNameBytes)
        return makeError(Errc::InvalidArgument, "trust member name is " + std::to_string(member.name.size()) +
                                                    " bytes; at most " + std::to_string(kMaxTrustNameBytes));
    if (!isUtf8(Bytes(member.name)))
        return makeError(Errc::InvalidArgument, "trust member name is not UTF-8");
    if (!knownHow(static_cast<uint8_t>(member.how)))
        return makeError(Errc::InvalidArgument,
                         "trust member with unknown how " + std::to_string(int(member.how)));
    std::string value(kFixedBytes, '\0');
    putBe64(reinterpret_cast<uint8_t*>(value.data()), member.addedMs);
    value[8] = static_cast<char>(member.how);
    value += member.name;
    return value;
}

Result<TrustMember> decodeTrustMember(Bytes key, Bytes value) {
    if (key.size != kTrustKeyBytes)
        return corrupt("a key of " + std::to_string(key.size) + " bytes (a member's key is " +
                       std::to_string(kTrustKeyBytes) + ")");
    TrustMember m;
    std::copy(key.data, key.data + key.size, m.key.begin());
    const std::string who = "member " + toHex(Bytes(key.data, 4)) + "...";
    if (value.size < kFixedBytes)
        return corrupt(who + ": a value of " + std::to_string(value.size) + " bytes (at least " +
                       std::to_string(kFixedBytes) + ")");
    if (!knownHow(value.data[8])) return corrupt(who + ": unknown how " + std::to_string(int(value.data[8])));
    Bytes name(value.data + kFixedBytes, value.size - kFixedBytes);
    if (name.size > kMaxTrustNameBytes)
        return corrupt(who + ": a name of " + std::to_string(name.size) + " bytes (at most " +
                       std::to_string(kMaxTrustNameBytes) + ")");
    if (!isUtf8(name)) return corrupt(who + ": its name is not UTF-8");
    m.addedMs = getBe64(value.data);
    m.how = static_cast<TrustHow>(value.data[8]);
    m.name = name.str();
    return m;
}

}  // namespace possync::store
