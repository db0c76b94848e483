#include "trust/identity.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace possync::trust {

namespace {

constexpr uint8_t kMagic[4] = {'P', 'S', 'K', '1'};
constexpr size_t kFileBytes = sizeof kMagic + 32;

Error ioError(const std::string& what, int err) {
    return makeError(Errc::Io, what + ": " + std::strerror(err));
}

std::string modeText(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

Status syncDir(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ioError("cannot open " + dir, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return ioError("cannot sync " + dir, err);
    return {};
}

// Writes a new key file for `seed` (tmp, fsync, rename, fsync dir).
Status writeKeyFile(const std::string& dir, const uint8_t* seed) {
    std::string path = dir + "/" + kKeyFileName, tmp = path + ".tmp";
    ::unlink(tmp.c_str());  // a crash while making the key before left a partial one
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return ioError("cannot create " + tmp, errno);
    uint8_t buf[kFileBytes];
    std::memcpy(buf, kMagic, sizeof kMagic);
    std::memcpy(buf + sizeof kMagic, seed, 32);
    bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, buf, sizeof buf) == static_cast<ssize_t>(sizeof buf) &&
              ::fsync(fd) == 0;
    int err = errno;
    sodium_memzero(buf, sizeof buf);
    ::close(fd);
    if (!ok) {
        ::unlink(tmp.c_str());
        return ioError("cannot write " + tmp, err);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        err = errno;
        ::unlink(tmp.c_str());
        return ioError("cannot rename " + tmp, err);
    }
    return syncDir(dir);
}

}  // namespace

Identity::~Identity() {
    sodium_memzero(secret_.data(), secret_.size());
}

Identity Identity::fromSeed(const std::array<uint8_t, 32>& seed) {
    Identity id;
    crypto_sign_seed_keypair(id.public_.data(), id.secret_.data(), seed.data());
    return id;
}

Identity Identity::generate() {
    Identity id;
    crypto_sign_keypair(id.public_.data(), id.secret_.data());
    return id;
}

Result<Identity> Identity::loadOrCreate(const std::string& dir, bool create) {
    POSSYNC_TRY(initSodium());
    std::string path = dir + "/" + kKeyFileName;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
        if (!create) return makeError(Errc::NotFound, path + " does not exist (the board has no key yet)");
        std::array<uint8_t, 32> seed;
        randombytes_buf(seed.data(), seed.size());
        Status written = writeKeyFile(dir, seed.data());
        Identity id = fromSeed(seed);
        sodium_memzero(seed.data(), seed.size());
        if (!written) return written.takeError();
        return id;
    }
    if (fd < 0) {
        if (errno == ELOOP)
            return makeError(Errc::Refused, path + " is a symbolic link: the key file must be a plain file");
        return ioError("cannot open " + path, errno);
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        return ioError("cannot stat " + path, err);
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return makeError(Errc::Refused, path + " is not a regular file");
    }
    if ((st.st_mode & 077) != 0) {
        ::close(fd);
        return makeError(Errc::Refused,
                         path + " has mode " + modeText(st.st_mode) +
                             ": group or others may read it, so it is no longer this board's "
                             "secret (chmod 600 it if no one else could have read it, or remove "
                             "it to make a new key and pair the board again)");
    }
    if (st.st_uid != ::geteuid()) {
        ::close(fd);
        return makeError(Errc::Refused, path + " belongs to uid " + std::to_string(st.st_uid) +
                                            ", not to this process's uid " + std::to_string(::geteuid()));
    }
    uint8_t buf[kFileBytes + 1];
    ssize_t n = ::read(fd, buf, sizeof buf);
    int err = errno;
    ::close(fd);
    if (n < 0) return ioError("cannot read " + path, err);
    if (static_cast<size_t>(n) != kFileBytes || std::memcmp(buf, kMagic, sizeof kMagic) != 0) {
        sodium_memzero(buf, sizeof buf);
        return makeError(Errc::Corrupt, path + " is not a possync key file (" + std::to_string(n) +
                                            " bytes; expected " + std::to_string(kFileBytes) +
                                            " starting PSK1)");
    }
    std::array<uint8_t, 32> seed;
    std::memcpy(seed.data(), buf + sizeof kMagic, seed.size());
    sodium_memzero(buf, sizeof buf);
    Identity id = fromSeed(seed);
    sodium_memzero(seed.data(), seed.size());
    return id;
}

std::array<uint8_t, kSignatureBytes> Identity::sign(Bytes message) const {
    std::array<uint8_t, kSignatureBytes> sig;
    crypto_sign_detached(sig.data(), nullptr, message.data, message.size, secret_.data());
    return sig;
}

bool verifySignature(const PublicKey& key, Bytes message, const uint8_t* signature) {
    return crypto_sign_verify_detached(signature, message.data, message.size, key.data()) == 0;
}

}  // namespace possync::trust
