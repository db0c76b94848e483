#include "wire/frame.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace possync::wire {

namespace {

// Storage kept between frames; a bigger buffer (after a large frame) is given back.
constexpr size_t kKeepBytes = 4u << 20;

bool aligned(const uint8_t* p) {
    return reinterpret_cast<uintptr_t>(p) % kPayloadAlignment == 0;
}

}  // namespace

void appendFrameHeader(std::vector<uint8_t>& out, uint32_t payloadBytes) {
    size_t at = out.size();
    out.resize(at + kFrameHeaderBytes);
    putLe32(out.data() + at, payloadBytes);
}

std::vector<uint8_t> encodeFrame(Bytes payload) {
    std::vector<uint8_t> out;
    out.reserve(kFrameHeaderBytes + payload.size);
    appendFrameHeader(out, static_cast<uint32_t>(payload.size));
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

Status FrameDecoder::checkLength(uint32_t length) {
    if (length == 0) return fail(makeError(Errc::Protocol, "zero-length frame"));
    if (length > maxFrameBytes_)
        return fail(makeError(Errc::TooLarge, "frame of " + std::to_string(length) +
                                                  " bytes is over the limit of " +
                                                  std::to_string(maxFrameBytes_) + " bytes"));
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
            uint32_t len = getLe32(p);
            if (Status st = checkLength(len); !st.ok()) {
                result = std::move(st);
                break;
            }
            if (n - kFrameHeaderBytes >= len) {
                const uint8_t* payload = p + kFrameHeaderBytes;
                p += kFrameHeaderBytes + len;
                n -= kFrameHeaderBytes + len;
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
        }
        // Slow path: gather a frame split across feeds, header first.
        if (headerHave_ < kFrameHeaderBytes) {
            size_t take = std::min(kFrameHeaderBytes - headerHave_, n);
            std::memcpy(header_ + headerHave_, p, take);
            headerHave_ += take;
            p += take;
            n -= take;
            if (headerHave_ < kFrameHeaderBytes) break;
            payloadLen_ = getLe32(header_);
            // Checked before a single payload byte is buffered.
            if (Status st = checkLength(payloadLen_); !st.ok()) {
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
        if (!deliver(Bytes(storage(), payloadLen_))) break;
    }
    if (!failed_ && headerHave_ == 0 && capacityWords_ * sizeof(uint64_t) > kKeepBytes) {
        storage_.reset();
        capacityWords_ = 0;
    }
    return result;
}

}  // namespace possync::wire
