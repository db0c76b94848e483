// Handle: the common base of every libuv handle wrapper, and Owned<T>, its owning pointer.
//
// Lifetime rules (written once here, true for every wrapper in platform/uv):
// - A wrapper lives on the heap, is neither copied nor moved, and is owned by an
//   Owned<T> (a std::unique_ptr whose deleter is Closer). The uv handle's `data` points to
//   the wrapper.
// - Destroying the Owned<T> closes the handle (uv_close); the wrapper and its callbacks are
//   freed later, in the close callback. So a wrapper may be destroyed from inside one of its
//   own callbacks, and a callback may replace itself (start() again from inside it).
// - Once closing has begun no user callback is called again: a write or connect request
//   that completes with UV_ECANCELED frees its own memory and stays silent.
// - Loop::close() closes handles whose owners still hold them; such a wrapper becomes
//   inert (its calls fail with Errc::Closed) and its Owned<T> later just frees it.
// - Every call is made on the loop's thread; nothing here is locked.
#pragma once

#include <memory>

struct uv_handle_s;

namespace possync::uv {

class Loop;

class Handle {
public:
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    Handle(Handle&&) = delete;
    Handle& operator=(Handle&&) = delete;

    // True once the handle is closing or closed; no callback runs after that.
    bool closing() const { return closing_; }
    // Whether the handle keeps Loop::run() from returning (uv_ref / uv_unref).
    void setRef(bool ref);
    // The loop this handle belongs to; nullptr after Loop::close() closed it.
    Loop* loop() const { return loop_; }

protected:
    // Allocates the uv handle struct of the given uv_handle_type (zeroed), sets its data
    // to this and registers with the loop. The subclass then calls uv_<type>_init on raw().
    Handle(Loop& loop, int uvHandleType);
    virtual ~Handle();

    uv_handle_s* rawHandle() const { return handle_; }
    // Marks a handle whose uv_<type>_init failed: it is freed without uv_close.
    void markInitFailed() { initialized_ = false; }
    // Called once, just before uv_close, whoever closes; subclasses stop things here.
    virtual void onClosing() {}

private:
    friend struct Closer;
    friend class Loop;

    void release();        // the owner is done with it: close, free in the close callback
    void closeFromLoop();  // Loop::close(): close, but the owner still holds it
    void detach() { loop_ = nullptr; }
    void beginClose();
    static void onClosed(uv_handle_s* handle);

    Loop* loop_;
    uv_handle_s* handle_;
    bool initialized_ = true;
    bool closing_ = false;
    bool closed_ = false;
    bool ownerGone_ = false;
};

// Deleter of Owned<T>: closes the handle; the memory is freed in the close callback.
struct Closer {
    void operator()(Handle* handle) const noexcept { handle->release(); }
};

template <typename T>
using Owned = std::unique_ptr<T, Closer>;

}  // namespace possync::uv
