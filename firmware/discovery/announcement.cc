#include "discovery/announcement.h"

#include "base/bytes.h"

namespace possync::discovery {

Status validateId(std::string_view what, std::string_view id) {
    if (id.empty() || id.size() > 64)
        return makeError(Errc::InvalidArgument, std::string(what) + " must be 1..64 characters");
    for (char ch : id)
        if (ch <= 0x20 || ch > 0x7e || ch == '=')
            return makeError(Errc::InvalidArgument,
                             std::string(what) + " \"" + std::string(id) +
                                 "\" may only hold printable ASCII without spaces or '='");
    return {};
}

std::vector<std::pair<std::string, std::string>> makeTxt(const Announcement& a) {
    std::vector<std::pair<std::string, std::string>> txt{
        {"store", a.storeId}, {"dev", a.deviceId}, {"proto", std::to_string(a.proto)}};
    if (a.generation) txt.emplace_back("gen", hex64(*a.generation));
    if (a.term != 0) txt.emplace_back("term", std::to_string(a.term));
    if (!a.keyFingerprint.empty()) txt.emplace_back("key", a.keyFingerprint);
    return txt;
}

Result<Announcement> parseAnnouncement(const std::map<std::string, std::string>& txt) {
    Announcement a;
    auto get = [&](const char* key) -> const std::string* {
        auto it = txt.find(key);
        return it == txt.end() ? nullptr : &it->second;
    };
    const std::string* store = get("store");
    if (store == nullptr || store->empty()) return makeError(Errc::Protocol, "TXT record has no store=");
    a.storeId = *store;
    const std::string* dev = get("dev");
    if (dev == nullptr || dev->empty()) return makeError(Errc::Protocol, "TXT record has no dev=");
    a.deviceId = *dev;
    const std::string* proto = get("proto");
    if (proto == nullptr) return makeError(Errc::Protocol, "TXT record has no proto=");
    std::optional<uint64_t> p = parseU64(*proto);
    if (!p || *p > 1000000)
        return makeError(Errc::Protocol, "TXT proto=" + *proto + " is not a version number");
    a.proto = static_cast<int>(*p);
    if (const std::string* gen = get("gen")) {
        std::optional<uint64_t> g = gen->empty() ? std::nullopt : parseHex64(*gen);
        if (!g) return makeError(Errc::Protocol, "TXT gen=" + *gen + " is not 1..16 hex digits");
        a.generation = *g;
    }
    if (const std::string* term = get("term")) {
        std::optional<uint64_t> t = parseU64(*term);
        if (!t) return makeError(Errc::Protocol, "TXT term=" + *term + " is not a decimal number");
        a.term = *t;
    }
    if (const std::string* key = get("key")) {
        if (key->size() != 16 || key->find_first_not_of("0123456789abcdef") != std::string::npos)
            return makeError(Errc::Protocol, "TXT key=" + *key + " is not a key fingerprint (16 hex digits)");
        a.keyFingerprint = *key;
    }
    return a;
}

std::string defaultServiceName(std::string_view storeId, std::string_view deviceId) {
    std::string name = "possync-";
    name += storeId;
    name += '-';
    name += deviceId;
    if (name.size() > 63) name.resize(63);  // ids are ASCII: no UTF-8 sequence is cut
    return name;
}

}  // namespace possync::discovery
