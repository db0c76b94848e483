// The libFuzzer-free replay driver: runs a fuzz target over files, so the g++ build checks
// every seed and regression input of a target as a plain test (no clang needed).
//
//   fuzz_replay_<target> PATH...    each PATH a file or a directory of files
//
// Exits 0 when every input ran (a crash aborts the process, which fails the test), 1 when
// there was nothing to run: an empty corpus would otherwise pass while testing nothing.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_target.h"

int main(int argc, char** argv) {
    LLVMFuzzerInitialize(&argc, &argv);
    std::vector<std::filesystem::path> files;
    for (int i = 1; i < argc; ++i) {
        std::filesystem::path p(argv[i]);
        std::error_code ec;
        if (std::filesystem::is_directory(p, ec)) {
            for (auto& e : std::filesystem::directory_iterator(p))
                // Dot files (.gitkeep of an empty regressions/) are not inputs.
                if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
        } else if (std::filesystem::is_regular_file(p, ec)) {
            files.push_back(p);
        } else {
            std::fprintf(stderr, "replay: %s: no such file or directory\n", argv[i]);
            return 1;
        }
    }
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        // A copy of exactly the file's size, as libFuzzer gives it: reads past the end are caught
        // by the sanitizer build.
        std::vector<uint8_t> input(bytes.begin(), bytes.end());
        LLVMFuzzerTestOneInput(input.data(), input.size());
    }
    std::printf("replay: %zu inputs ran\n", files.size());
    return files.empty() ? 1 : 0;
}
