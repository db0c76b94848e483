// Announcement: what a possync master says about itself in its DNS-SD TXT record.
//
// Contract (DESIGN.md §4): service type _possync._tcp; TXT store=<store id>, dev=<device
// id>, proto=<wire protocol version>, gen=<generation as 16 hex digits>, term=<decimal> (the
// store's failover term, DESIGN.md §10; absent = 0, a store that never failed over),
// key=<the master's key fingerprint, 16 hex digits> (DESIGN.md §11: names the board's key,
// which its links then prove; absent on a board of an older version). Slaves filter on store
// and proto and follow the highest term; dev tells boards apart (host names are not trusted
// for that).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace possync::discovery {

inline constexpr const char* kServiceType = "_possync._tcp";

struct Announcement {
    std::string storeId;
    std::string deviceId;
    int proto = 0;
    std::optional<uint64_t> generation;  // absent in a TXT record without gen=
    uint64_t term = 0;                   // 0 in a TXT record without term=
    std::string keyFingerprint;          // empty in a TXT record without key=
};

// Store and device ids: 1..64 bytes of printable ASCII without spaces or '='.
// `what` names the id in the message ("store id", "device id").
Status validateId(std::string_view what, std::string_view id);

// The TXT items in publication order: store, dev, proto, gen, term (only when not 0), key
// (only when known).
std::vector<std::pair<std::string, std::string>> makeTxt(const Announcement& a);

// Reads a resolved TXT record. Errors (one line): missing/empty store= or dev=, proto= not
// a number, gen= not 1..16 hex digits, term= not a decimal number, key= not 16 hex digits.
Result<Announcement> parseAnnouncement(const std::map<std::string, std::string>& txt);

// The default instance name of a board: "possync-<store>-<dev>", cut to DNS-SD's 63 bytes.
std::string defaultServiceName(std::string_view storeId, std::string_view deviceId);

}  // namespace possync::discovery
