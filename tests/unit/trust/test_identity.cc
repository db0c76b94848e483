// Identity: the board key file is made once, owner-only whatever the umask, reloads to the same
// key, and is refused (with the reason) when others may read it, when it is not a plain file,
// or when it is not a possync key; fingerprints and pairing codes are stable and symmetric.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "trust/identity.h"
#include "trust/keys.h"

using namespace possync;
using namespace possync::trust;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/possync-trust-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
    std::string key() const { return path + "/" + kKeyFileName; }
};

mode_t modeOf(const std::string& path) {
    struct stat st;
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

void writeFile(const std::string& path, const std::string& bytes, mode_t mode) {
    std::ofstream(path, std::ios::binary) << bytes;
    REQUIRE(::chmod(path.c_str(), mode) == 0);
}

}  // namespace

TEST_CASE("a board's key is made on first use, owner-only whatever the umask, and reloads the same") {
    TempDir dir;
    mode_t old = ::umask(0);
    auto made = Identity::loadOrCreate(dir.path);
    ::umask(old);
    REQUIRE(made.ok());
    CHECK(modeOf(dir.key()) == 0600);
    struct stat st;
    REQUIRE(::stat(dir.key().c_str(), &st) == 0);
    CHECK(st.st_size == 36);
    auto again = Identity::loadOrCreate(dir.path);
    REQUIRE(again.ok());
    CHECK(again->publicKey() == made->publicKey());
    CHECK(again->fingerprint() == made->fingerprint());
    CHECK(::access((dir.key() + ".tmp").c_str(), F_OK) != 0);
}

TEST_CASE("a key file others may read is refused with its mode; chmod 600 makes it usable again") {
    TempDir dir;
    REQUIRE(Identity::loadOrCreate(dir.path).ok());
    for (mode_t mode : {0640, 0604, 0660, 0602}) {
        REQUIRE(::chmod(dir.key().c_str(), mode) == 0);
        auto r = Identity::loadOrCreate(dir.path);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Errc::Refused);
        char text[8];
        std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode));
        CHECK(r.error().message.find(text) != std::string::npos);
    }
    REQUIRE(::chmod(dir.key().c_str(), 0600) == 0);
    CHECK(Identity::loadOrCreate(dir.path).ok());
}

TEST_CASE("a key file of the wrong size or magic, a symbolic link or a directory is refused") {
    TempDir dir;
    writeFile(dir.key(), std::string(36, 'x'), 0600);
    auto magic = Identity::loadOrCreate(dir.path);
    REQUIRE_FALSE(magic.ok());
    CHECK(magic.error().code == Errc::Corrupt);

    writeFile(dir.key(), "PSK1" + std::string(31, 'x'), 0600);
    auto shortFile = Identity::loadOrCreate(dir.path);
    REQUIRE_FALSE(shortFile.ok());
    CHECK(shortFile.error().code == Errc::Corrupt);
    CHECK(shortFile.error().message.find("35 bytes") != std::string::npos);

    writeFile(dir.key(), "PSK1" + std::string(33, 'x'), 0600);
    CHECK(Identity::loadOrCreate(dir.path).error().code == Errc::Corrupt);

    REQUIRE(::unlink(dir.key().c_str()) == 0);
    writeFile(dir.path + "/elsewhere", "PSK1" + std::string(32, 'x'), 0600);
    REQUIRE(::symlink((dir.path + "/elsewhere").c_str(), dir.key().c_str()) == 0);
    auto link = Identity::loadOrCreate(dir.path);
    REQUIRE_FALSE(link.ok());
    CHECK(link.error().code == Errc::Refused);

    REQUIRE(::unlink(dir.key().c_str()) == 0);
    REQUIRE(::mkdir(dir.key().c_str(), 0700) == 0);
    auto directory = Identity::loadOrCreate(dir.path);
    REQUIRE_FALSE(directory.ok());
    CHECK(directory.error().code == Errc::Refused);
}

TEST_CASE("a half-made key (board.key.tmp from a crash) is replaced; no file and no create is NotFound") {
    TempDir dir;
    auto none = Identity::loadOrCreate(dir.path, false);
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().code == Errc::NotFound);
    writeFile(dir.key() + ".tmp", "PSK1", 0600);
    REQUIRE(Identity::loadOrCreate(dir.path).ok());
    CHECK(::access((dir.key() + ".tmp").c_str(), F_OK) != 0);
    CHECK(modeOf(dir.key()) == 0600);
}

TEST_CASE("fingerprints name keys; the pairing code is the same on both sides and differs between pairs") {
    REQUIRE(initSodium().ok());
    std::array<uint8_t, 32> seedA{}, seedB{}, seedC{};
    seedA[0] = 1;
    seedB[0] = 2;
    seedC[0] = 3;
    Identity a = Identity::fromSeed(seedA), b = Identity::fromSeed(seedB), c = Identity::fromSeed(seedC);
    CHECK(a.fingerprint().size() == 16);
    CHECK(a.fingerprint() != b.fingerprint());
    CHECK(Identity::fromSeed(seedA).publicKey() == a.publicKey());
    std::string ab = verificationCode(a.publicKey(), b.publicKey());
    CHECK(ab.size() == 6);
    CHECK(ab.find_first_not_of("0123456789") == std::string::npos);
    CHECK(verificationCode(b.publicKey(), a.publicKey()) == ab);
    CHECK(verificationCode(a.publicKey(), c.publicKey()) != ab);

    auto parsed = parsePublicKey(publicKeyHex(a.publicKey()));
    REQUIRE(parsed.ok());
    CHECK(*parsed == a.publicKey());
    CHECK_FALSE(parsePublicKey("abcd").ok());
    CHECK_FALSE(parsePublicKey(std::string(64, 'g')).ok());
}

TEST_CASE("signatures verify under their key only") {
    REQUIRE(initSodium().ok());
    Identity a = Identity::generate(), b = Identity::generate();
    auto sig = a.sign(Bytes("total 12.50"));
    CHECK(verifySignature(a.publicKey(), Bytes("total 12.50"), sig.data()));
    CHECK_FALSE(verifySignature(a.publicKey(), Bytes("total 12.51"), sig.data()));
    CHECK_FALSE(verifySignature(b.publicKey(), Bytes("total 12.50"), sig.data()));
}
