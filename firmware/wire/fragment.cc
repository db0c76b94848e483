#include "wire/fragment.h"

#include <flatbuffers/flatbuffers.h>

#include <cstring>
#include <string>

namespace possync::wire {

size_t fragmentDataBytes(uint32_t maxFrameBytes) {
    return maxFrameBytes > 2 * kFragmentOverheadBytes ? maxFrameBytes - kFragmentOverheadBytes
                                                      : kFragmentOverheadBytes;
}

std::vector<uint8_t> buildFragment(uint64_t messageBytes, uint64_t offset, Bytes data) {
    flatbuffers::FlatBufferBuilder fbb(data.size + kFragmentOverheadBytes);
    auto bytes = fbb.CreateVector(data.data, data.size);
    FragmentBuilder b(fbb);
    b.add_message_bytes(messageBytes);
    b.add_offset(offset);
    b.add_data(bytes);
    fbb.Finish(CreateFrame(fbb, Message::Fragment, b.Finish().Union()), FrameIdentifier());
    return std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

namespace {
// A buffer grown for one big message is given back afterwards; smaller ones are kept.
constexpr size_t kKeepWords = (size_t(1) << 20) / 8;
}  // namespace

void Reassembler::release() {
    if (have_ == 0 && buffer_.size() > kKeepWords) std::vector<uint64_t>().swap(buffer_);
}

Result<Bytes> Reassembler::feed(const Fragment* f) {
    release();
    uint64_t total = f->message_bytes(), offset = f->offset();
    uint64_t n = f->data() ? f->data()->size() : 0;
    if (total > maxMessageBytes_) {
        reset();
        release();
        return makeError(Errc::TooLarge, "fragmented message of " + std::to_string(total) +
                                             " bytes is over this board's limit of " +
                                             std::to_string(maxMessageBytes_));
    }
    if (n == 0) {
        reset();
        return makeError(Errc::Corrupt, "empty fragment");
    }
    if (offset != have_ || (have_ != 0 && total != total_) || n > total - std::min(total, offset)) {
        std::string why = "fragment [" + std::to_string(offset) + ", +" + std::to_string(n) + ") of " +
                          std::to_string(total) + " bytes does not continue the message (have " +
                          std::to_string(have_) + " of " + std::to_string(total_) + ")";
        reset();
        return makeError(Errc::Corrupt, std::move(why));
    }
    total_ = total;
    size_t words = static_cast<size_t>((have_ + n + 7) / 8);
    if (buffer_.size() < words)  // grows with what arrived, doubling, never past the message
        buffer_.resize(
            std::max(words, std::min<size_t>(buffer_.size() * 2, static_cast<size_t>((total + 7) / 8))));
    std::memcpy(reinterpret_cast<uint8_t*>(buffer_.data()) + have_, f->data()->data(), n);
    have_ += n;
    if (have_ < total_) return Bytes();
    Bytes whole(reinterpret_cast<const uint8_t*>(buffer_.data()), static_cast<size_t>(total_));
    have_ = total_ = 0;  // the bytes stay valid until the next feed()
    return whole;
}

}  // namespace possync::wire
