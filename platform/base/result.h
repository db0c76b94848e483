// Result<T>: a value or an Error, the return type of every fallible call (no exceptions).
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace possync {

// Error kinds. Callers branch on the kind; the message is for people (one line, no
// trailing newline) and is written by the layer that knows the most about the failure.
enum class Errc {
    InvalidArgument,  // bad input from a caller or an operator
    NotFound,         // a key, table, file or peer that does not exist
    Exists,           // something that must not exist yet does
    MapFull,          // the LMDB map is full: grow it with --map-size
    TooLarge,         // over a configured or hard limit (key size, frame size, ...)
    Io,               // the OS or a C library reported an error
    Corrupt,          // data on disk or on the wire failed verification
    Version,          // written by a newer format or protocol version
    Refused,          // the operation is not allowed in this state (e.g. writes on a slave)
    Protocol,         // a peer broke the wire protocol
    Closed,           // the other side or the object is gone
    Busy,             // try again later
    Rejected,         // a condition of a write did not hold: nothing was written
    Full,             // a bounded queue (a slave's outbox) is full: nothing was queued
};

const char* errcName(Errc errc);

struct [[nodiscard]] Error {
    Errc code;
    std::string message;
};

// Result<T> holds either a T or an Error. Check with ok() (or operator bool) before value().
template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & {
        assert(ok());
        return std::get<0>(v_);
    }
    const T& value() const& {
        assert(ok());
        return std::get<0>(v_);
    }
    T&& value() && {
        assert(ok());
        return std::get<0>(std::move(v_));
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }

    const Error& error() const {
        assert(!ok());
        return std::get<1>(v_);
    }
    Error takeError() {
        assert(!ok());
        return std::get<1>(std::move(v_));
    }

private:
    std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : err_(std::move(error)), failed_(true) {}

    bool ok() const { return !failed_; }
    explicit operator bool() const { return ok(); }
    const Error& error() const {
        assert(failed_);
        return err_;
    }
    Error takeError() {
        assert(failed_);
        return std::move(err_);
    }

private:
    Error err_{Errc::InvalidArgument, {}};
    bool failed_ = false;
};

using Status = Result<void>;

inline Error makeError(Errc code, std::string message) {
    return Error{code, std::move(message)};
}

}  // namespace possync

// Propagate an error from an expression returning Result<...>/Status.
#define POSSYNC_TRY(expr)                                            \
    do {                                                             \
        auto possync_try_r_ = (expr);                                \
        if (!possync_try_r_.ok()) return possync_try_r_.takeError(); \
    } while (0)
