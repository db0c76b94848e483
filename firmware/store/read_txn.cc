// ReadTxn: reads of business tables, digests and table names in one LMDB read transaction.
#include "store/digest.h"
#include "store/store.h"
#include "store/txn.h"
#include "wire/change_model.h"
#include "wire/messages.h"

namespace possync::store {

// --- ReadTxn ----------------------------------------------------------------------------

ReadTxn::~ReadTxn() {
    end();
}

void ReadTxn::end() {
    // Committing (not aborting) a read transaction keeps the table handles it opened usable.
    if (txn_.isOpen()) (void)txn_.commit();
}

Result<lmdb::Dbi> ReadTxn::dbi(std::string_view table) {
    POSSYNC_TRY(validateTableName(table));
    return txn_.open(table, false);
}

Result<std::optional<Bytes>> ReadTxn::get(std::string_view table, Bytes key) {
    POSSYNC_TRY(checkKeySize(key, store_->maxKeySize()));
    auto d = dbi(table);
    if (!d) return d.takeError();
    return txn_.get(*d, key);
}

Status ReadTxn::scan(std::string_view table, Bytes prefix, size_t limit,
                     const std::function<bool(Bytes, Bytes)>& fn) {
    auto d = dbi(table);
    if (!d) return d.takeError();
    auto cur = lmdb::Cursor::open(txn_, *d);
    if (!cur) return cur.takeError();
    Bytes k, v;
    auto r = prefix.size ? cur->seek(prefix, k, v) : cur->first(k, v);
    size_t n = 0;
    while (true) {
        if (!r) return r.takeError();
        if (!*r) break;
        if (prefix.size && (k.size < prefix.size || std::memcmp(k.data, prefix.data, prefix.size) != 0))
            break;
        if (!fn(k, v)) break;
        if (limit && ++n >= limit) break;
        r = cur->next(k, v);
    }
    return {};
}

Status ReadTxn::scanFrom(std::string_view table, Bytes from, const std::function<bool(Bytes, Bytes)>& fn) {
    auto d = dbi(table);
    if (!d) return d.takeError();
    auto cur = lmdb::Cursor::open(txn_, *d);
    if (!cur) return cur.takeError();
    Bytes k, v;
    auto r = from.size ? cur->seek(from, k, v) : cur->first(k, v);
    while (true) {
        if (!r) return r.takeError();
        if (!*r || !fn(k, v)) break;
        r = cur->next(k, v);
    }
    return {};
}

Result<std::vector<std::string>> ReadTxn::tableNames() {
    auto all = lmdb::listDatabases(txn_);
    if (!all) return all.takeError();
    std::vector<std::string> out;
    for (auto& n : *all)
        if (n.compare(0, kReservedPrefix.size(), kReservedPrefix) != 0) out.push_back(std::move(n));
    return out;
}

Result<std::vector<TrustMember>> ReadTxn::trustMembers() {
    std::vector<TrustMember> out;
    if (!store_->hasTrustDb()) return out;
    auto cur = lmdb::Cursor::open(txn_, store_->trustDbi());
    if (!cur) return cur.takeError();
    Bytes k, v;
    for (auto r = cur->first(k, v);; r = cur->next(k, v)) {
        if (!r) return r.takeError();
        if (!*r) break;
        auto m = decodeTrustMember(k, v);
        if (!m) return m.takeError();
        out.push_back(std::move(*m));
    }
    return out;
}

Result<std::optional<TrustMember>> ReadTxn::trustMember(const TrustKey& key) {
    if (!store_->hasTrustDb()) return std::optional<TrustMember>();
    Bytes k = trustKeyBytes(key);
    auto v = txn_.get(store_->trustDbi(), k);
    if (!v) return v.takeError();
    if (!*v) return std::optional<TrustMember>();
    auto m = decodeTrustMember(k, **v);
    if (!m) return m.takeError();
    return std::optional<TrustMember>(std::move(*m));
}

Result<uint64_t> ReadTxn::entries(std::string_view table) {
    auto d = dbi(table);
    if (!d) return d.takeError();
    return txn_.entries(*d);
}

Result<uint64_t> ReadTxn::digest(std::string_view table) {
    auto d = txn_.get(store_->digestDbi(), Bytes(table));
    if (!d) return d.takeError();
    return (*d && (*d)->size == 8) ? getBe64((*d)->data) : uint64_t(0);
}

Result<uint64_t> ReadTxn::watchedDigest() {
    uint64_t combined = 0;
    for (const auto& t : meta_.watched) {
        auto d = digest(t);
        if (!d) return d.takeError();
        combined ^= *d;
    }
    return combined;
}

}  // namespace possync::store
