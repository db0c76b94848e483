#include "wire/frame.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace possync::wire {

namespace {

// Storage kept between frames; a bigger buffer (after a large frame) is given back.
constexpr size_t kKeepBytes = 4u << 20;
// Header fields (frame.h).
constexpr size_t kLengthAt = 0;
constexpr size_t kPayloadSumAt = 4;
constexpr size_t kFlagsAt = 8;
constexpr size_t kHeaderSumAt = 12;

bool aligned(const uint8_t* p) {
    return reinterpret_cast<uintptr_t>(p) % kPayloadAlignment == 0;
}

std::string hex32(uint32_t v) {
    static const char digits[] = "0123456789abcdef";
    std::string s(8, '0');
    for (int i = 7; i >= 0; --i, v >>= 4) s[size_t(i)] = digits[v & 15];
    return s;
}

}  // namespace

uint32_t frameChecksum(Bytes data) {
    return XXH32(data.data, data.size, 0);
}

void writeFrameHeader(uint8_t* out, uint32_t payloadBytes, uint32_t payloadChecksum, uint32_t flags) {
    putLe32(out + kLengthAt, payloadBytes);
    putLe32(out + kPayloadSumAt, payloadChecksum);
    putLe32(out + kFlagsAt, flags);
    putLe32(out + kHeaderSumAt, frameChecksum(Bytes(out, kHeaderSumAt)));
}

void appendFrameHeader(std::vector<uint8_t>& out, Bytes payload) {
    size_t at = out.size();
    out.resize(at + kFrameHeaderBytes);
    writeFrameHeader(out.data() + at, static_cast<uint32_t>(payload.size), frameChecksum(payload));
}

std::vector<uint8_t> encodeFrame(Bytes payload) {
    std::vector<uint8_t> out;
    out.reserve(kFrameHeaderBytes + payload.size);
    appendFrameHeader(out, payload);
    if (payload.size) out.insert(out.end(), payload.data, payload.data + payload.size);
    return out;
}

FrameDecoder::FrameDecoder(uint32_t maxFrameBytes) : maxFrameBytes_(maxFrameBytes) {}

FrameDecoder::~FrameDecoder() = default;

void FrameDecoder::reset() {
    headerHave_ = 0;
    payloadLen_ = 0;
    payloadHave_ = 0;
    failed_ = false;
}

Status FrameDecoder::fail(possync::Error error) {
    failed_ = true;
    headerHave_ = 0;
    payloadHave_ = 0;
    return error;
}

Status FrameDecoder::checkHeader(const uint8_t* header) {
    // The header check first: no field of a corrupted header is believed, the length least of all.
    uint32_t want = getLe32(header + kHeaderSumAt), got = frameChecksum(Bytes(header, kHeaderSumAt));
    if (want != got)
        return fail(makeError(Errc::Corrupt, "frame header checksum mismatch (header says " + hex32(want) +
                                                 ", computed " + hex32(got) + "): corrupted in transit"));
    uint32_t flags = getLe32(header + kFlagsAt);
    if (flags != 0) return fail(makeError(Errc::Protocol, "frame with unknown flags 0x" + hex32(flags)));
    uint32_t length = getLe32(header + kLengthAt);
    if (length == 0) return fail(makeError(Errc::Protocol, "zero-length frame"));
    if (length > maxFrameBytes_)
        return fail(makeError(Errc::TooLarge, "frame of " + std::to_string(length) +
                                                  " bytes is over the limit of " +
                                                  std::to_string(maxFrameBytes_) + " bytes"));
    payloadLen_ = length;
    payloadSum_ = getLe32(header + kPayloadSumAt);
    return {};
}

Status FrameDecoder::checkPayload(Bytes payload) {
    uint32_t got = frameChecksum(payload);
    if (got != payloadSum_)
        return fail(makeError(Errc::Corrupt, "frame checksum mismatch over " + std::to_string(payload.size) +
                                                 " bytes (header says " + hex32(payloadSum_) + ", computed " +
                                                 hex32(got) + "): corrupted in transit"));
    return {};
}

void FrameDecoder::reserve(size_t bytes) {
    size_t words = (bytes + sizeof(uint64_t) - 1) / sizeof(uint64_t);
    if (words <= capacityWords_) return;
    // Exactly what this frame needs: the buffer never exceeds one frame.
    storage_ = std::make_unique_for_overwrite<uint64_t[]>(words);
    capacityWords_ = words;
}

Status FrameDecoder::feed(Bytes data, const FrameCallback& onFrame) {
    if (failed_) return makeError(Errc::Protocol, "frame decoder stopped after an earlier error");
    // Calls onFrame; false when decoding must stop (an error).
    Status result;
    auto deliver = [&](Bytes payload) {
        Status st = onFrame(payload);
        ++frames_;
        if (!st.ok()) {
            result = fail(st.takeError());
            return false;
        }
        return true;
    };

    const uint8_t* p = data.data;
    size_t n = data.size;
    while (n > 0) {
        if (headerHave_ == 0 && n >= kFrameHeaderBytes) {
            // Fast path: a frame starts here; deliver it from `data` if it is all here.
            if (Status st = checkHeader(p); !st.ok()) {
                result = std::move(st);
                break;
            }
            uint32_t len = payloadLen_;
            if (n - kFrameHeaderBytes >= len) {
                const uint8_t* payload = p + kFrameHeaderBytes;
                p += kFrameHeaderBytes + len;
                n -= kFrameHeaderBytes + len;
                if (Status st = checkPayload(Bytes(payload, len)); !st.ok()) {
                    result = std::move(st);
                    break;
                }
                bool go;
                if (aligned(payload)) {
                    go = deliver(Bytes(payload, len));
                } else {
                    reserve(len);
                    std::memcpy(storage(), payload, len);
                    go = deliver(Bytes(storage(), len));
                }
                if (!go) break;
                continue;
            }
            // Not all here: the slow path takes this header again (it is checked again: cheap).
        }
        // Slow path: gather a frame split across feeds, header first.
        if (headerHave_ < kFrameHeaderBytes) {
            size_t take = std::min(kFrameHeaderBytes - headerHave_, n);
            std::memcpy(header_ + headerHave_, p, take);
            headerHave_ += take;
            p += take;
            n -= take;
            if (headerHave_ < kFrameHeaderBytes) break;
            // Checked before a single payload byte is buffered.
            if (Status st = checkHeader(header_); !st.ok()) {
                result = std::move(st);
                break;
            }
            reserve(payloadLen_);
            payloadHave_ = 0;
        }
        size_t take = std::min(size_t(payloadLen_) - payloadHave_, n);
        std::memcpy(storage() + payloadHave_, p, take);
        payloadHave_ += take;
        p += take;
        n -= take;
        if (payloadHave_ < payloadLen_) break;
        headerHave_ = 0;
        payloadHave_ = 0;
        if (Status st = checkPayload(Bytes(storage(), payloadLen_)); !st.ok()) {
            result = std::move(st);
            break;
        }
        if (!deliver(Bytes(storage(), payloadLen_))) break;
    }
    if (!failed_ && headerHave_ == 0 && capacityWords_ * sizeof(uint64_t) > kKeepBytes) {
        storage_.reset();
        capacityWords_ = 0;
    }
    return result;
}

}  // namespace possync::wire
