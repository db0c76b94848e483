#include "trust/secure_stream.h"

namespace possync::trust {

Sealer::Sealer(const StreamKey& key) {
    crypto_secretstream_xchacha20poly1305_init_push(&state_, header_.data(), key.data());
}

Sealer::~Sealer() {
    sodium_memzero(&state_, sizeof state_);
}

void Sealer::seal(Bytes plain, std::vector<uint8_t>& out) {
    size_t at = out.size();
    out.resize(at + plain.size + kSealBytes);
    crypto_secretstream_xchacha20poly1305_push(&state_, out.data() + at, nullptr, plain.data, plain.size,
                                               nullptr, 0, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
}

Opener::Opener(const StreamKey& key, const StreamHeader& header) {
    // init_pull fails only for a header of the wrong size, which the type rules out.
    failed_ = crypto_secretstream_xchacha20poly1305_init_pull(&state_, header.data(), key.data()) != 0;
}

Opener::~Opener() {
    sodium_memzero(&state_, sizeof state_);
}

Status Opener::open(Bytes sealed, std::vector<uint8_t>& out) {
    out.clear();
    return openAppend(sealed, out);
}

Status Opener::openAppend(Bytes sealed, std::vector<uint8_t>& out) {
    if (failed_) return makeError(Errc::Corrupt, "the link's stream failed before");
    if (sealed.size < kSealBytes) {
        failed_ = true;
        return makeError(Errc::Corrupt, "a sealed record shorter than its tag");
    }
    const size_t at = out.size();
    out.resize(at + sealed.size - kSealBytes);
    unsigned char tag = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(&state_, out.data() + at, nullptr, &tag, sealed.data,
                                                   sealed.size, nullptr, 0) != 0 ||
        tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
        failed_ = true;
        out.resize(at);
        return makeError(Errc::Corrupt,
                         "a record failed authentication (tampered, replayed, reordered or cut)");
    }
    return {};
}

}  // namespace possync::trust
