// Wire bounds: the limits every string in a wire message keeps, in one place.
//
// The schema (schemas/possync.fbs) says what each string is; this says how long it may be.
// verifyFrame() (messages.h) checks them on every received frame, before anything reads a
// string, so a peer's 8 MiB store id or refusal reason is refused as Corrupt and is never
// logged, stored, compared or copied. Our own builders keep them too (ids are checked when
// the daemon starts, reasons are clipped when built), so an honest peer never trips them.
#pragma once

#include <cstddef>
#include <string_view>

namespace possync::wire {

// Hello.store_id, Hello.device_id, Welcome.device_id: what `possyncd --store/--device`
// accepts (daemon/options.cc), printable (see isIdText).
inline constexpr size_t kMaxIdBytes = 64;
// Welcome.reason and Error.text: a sentence for people, clipped by our builders.
inline constexpr size_t kMaxReasonBytes = 256;
// Change.table and ChangeModel.tables: the store's limit on a table name (LMDB's named
// databases; store/meta.cc validateTableName uses this constant).
inline constexpr size_t kMaxTableNameBytes = 255;
// Welcome.lineage: the ancestry a master keeps (store/meta.h, history) is bounded by this.
inline constexpr size_t kMaxLineage = 16;

// True when `text` holds at most kMaxIdBytes and no ASCII control byte (a newline or an
// escape sequence in an id would forge log lines and console output). UTF-8 passes.
constexpr bool isIdText(std::string_view text) {
    if (text.size() > kMaxIdBytes) return false;
    for (char c : text) {
        auto b = static_cast<unsigned char>(c);
        if (b < 0x20 || b == 0x7f) return false;
    }
    return true;
}

// The longest prefix of `text` of at most `max` bytes that does not end inside a UTF-8
// character (for clipping reasons and log lines).
constexpr std::string_view clipUtf8(std::string_view text, size_t max) {
    if (text.size() <= max) return text;
    size_t end = max;
    // Back off continuation bytes (10xxxxxx) so the cut falls on a character boundary.
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) --end;
    return text.substr(0, end);
}

}  // namespace possync::wire
