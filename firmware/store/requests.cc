#include "store/requests.h"

#include <xxhash.h>

#include <cstring>

namespace possync::store {

namespace {

std::string resultKey(std::string_view device, uint64_t id) {
    std::string k(device);
    k.push_back('\0');
    uint8_t be[8];
    putBe64(be, id);
    k.append(reinterpret_cast<const char*>(be), 8);
    return k;
}

ClientRecord decodeClient(std::string_view device, Bytes v) {
    ClientRecord c;
    c.device = std::string(device);
    if (v.size < 32) return c;
    c.lastRequest = getBe64(v.data);
    c.lastSeq = getBe64(v.data + 8);
    c.applied = getBe64(v.data + 16);
    c.rejected = getBe64(v.data + 24);
    return c;
}

}  // namespace

Result<std::optional<ClientRecord>> findClient(const lmdb::Txn& txn, const RequestDbs& dbs,
                                               std::string_view device) {
    auto v = txn.get(dbs.clients, Bytes(device));
    if (!v) return v.takeError();
    if (!*v) return std::optional<ClientRecord>();
    return std::optional<ClientRecord>(decodeClient(device, **v));
}

Result<std::vector<ClientRecord>> listClients(lmdb::Txn& txn, const RequestDbs& dbs) {
    std::vector<ClientRecord> out;
    auto cur = lmdb::Cursor::open(txn, dbs.clients);
    if (!cur) return cur.takeError();
    Bytes k, v;
    for (auto r = cur->first(k, v);; r = cur->next(k, v)) {
        if (!r) return r.takeError();
        if (!*r) break;
        out.push_back(decodeClient(std::string_view(reinterpret_cast<const char*>(k.data), k.size), v));
    }
    return out;
}

Result<std::optional<RequestResult>> findResult(const lmdb::Txn& txn, const RequestDbs& dbs,
                                                std::string_view device, uint64_t requestId) {
    std::string key = resultKey(device, requestId);
    auto v = txn.get(dbs.results, Bytes(key));
    if (!v) return v.takeError();
    if (!*v || (*v)->size < 9) return std::optional<RequestResult>();
    RequestResult r;
    r.requestId = requestId;
    r.rejected = (*v)->data[0] != 0;
    r.seq = getBe64((*v)->data + 1);
    r.reason.assign(reinterpret_cast<const char*>((*v)->data + 9), (*v)->size - 9);
    return std::optional<RequestResult>(std::move(r));
}

Status recordOutcome(lmdb::Txn& txn, const RequestDbs& dbs, std::string_view device,
                     const RequestResult& result) {
    auto old = findClient(txn, dbs, device);
    if (!old) return old.takeError();
    ClientRecord c = old->value_or(ClientRecord{});
    // A device's logged request ids only grow (the master answers an id at or below its last
    // with the stored outcome, never a second log entry), so one at or below the record's last
    // is a log entry applied again here (a replay after a FULL, PUT/DEL/CLEAR being idempotent):
    // counting it again would make this board's record differ from the master's.
    if (*old && result.requestId <= c.lastRequest) return {};
    c.lastRequest = std::max(c.lastRequest, result.requestId);
    c.lastSeq = std::max(c.lastSeq, result.seq);
    (result.rejected ? c.rejected : c.applied)++;
    uint8_t rec[32];
    putBe64(rec, c.lastRequest);
    putBe64(rec + 8, c.lastSeq);
    putBe64(rec + 16, c.applied);
    putBe64(rec + 24, c.rejected);
    POSSYNC_TRY(txn.put(dbs.clients, Bytes(device), Bytes(rec, 32)));
    return putResult(txn, dbs, device, result);
}

Status putResult(lmdb::Txn& txn, const RequestDbs& dbs, std::string_view device,
                 const RequestResult& result) {
    std::string value(9, '\0');
    value[0] = result.rejected ? 1 : 0;
    putBe64(reinterpret_cast<uint8_t*>(value.data()) + 1, result.seq);
    value += result.reason;
    std::string key = resultKey(device, result.requestId);
    POSSYNC_TRY(txn.put(dbs.results, Bytes(key), Bytes(value)));
    // Forget this device's outcomes older than the window (usually exactly one, or none): ids
    // below requestId - kResultsKeptPerDevice + 1 go, so at most kResultsKeptPerDevice stay.
    if (result.requestId > kResultsKeptPerDevice) {
        std::string from = resultKey(device, 0),
                    bound = resultKey(device, result.requestId - kResultsKeptPerDevice + 1);
        auto cur = lmdb::Cursor::open(txn, dbs.results);
        if (!cur) return cur.takeError();
        Bytes k, v;
        while (true) {
            auto r = cur->seek(Bytes(from), k, v);
            if (!r) return r.takeError();
            if (!*r || k.size != bound.size() || std::memcmp(k.data, bound.data(), bound.size()) >= 0) break;
            POSSYNC_TRY(cur->del());
        }
    }
    return {};
}

Result<int64_t> decodeCounter(std::string_view table, Bytes key, Bytes value) {
    if (value.size != 8)
        return makeError(Errc::InvalidArgument, "ADD on " + std::string(table) + "/" + describeKey(key) +
                                                    ": the value is " + std::to_string(value.size) +
                                                    " bytes, not an 8-byte big-endian integer");
    return static_cast<int64_t>(getBe64(value.data));
}

void encodeCounter(uint8_t out[8], int64_t value) {
    putBe64(out, static_cast<uint64_t>(value));
}

uint64_t valueHash(Bytes value) {
    return XXH64(value.data, value.size, 0);
}

std::string describeKey(Bytes key) {
    constexpr size_t kMax = 48;
    bool text = key.size > 0;
    for (size_t i = 0; i < key.size && text; ++i) text = key.data[i] >= 0x20 && key.data[i] < 0x7f;
    std::string out;
    if (text) {
        out.assign(reinterpret_cast<const char*>(key.data), std::min(key.size, kMax));
        if (key.size > kMax) out += "...";
        return "'" + out + "'";
    }
    static const char* hex = "0123456789abcdef";
    out = "0x";
    for (size_t i = 0; i < key.size && i < kMax / 2; ++i) {
        out += hex[key.data[i] >> 4];
        out += hex[key.data[i] & 15];
    }
    if (key.size > kMax / 2) out += "...";
    return out;
}

}  // namespace possync::store
