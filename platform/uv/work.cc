#include "uv/work.h"

#include "uv/internal.h"
#include "uv/loop.h"

namespace possync::uv {

// Owned by libuv from uv_queue_work until the after-work callback, which deletes it.
struct Work::Request {
    uv_work_t req;
    Loop* loop;
    Work* owner;  // nullptr once the Work was destroyed: nobody to tell
    std::function<void()> work;
    std::function<void()> done;
};

Result<std::unique_ptr<Work>> Work::queue(Loop& loop, std::function<void()> work,
                                          std::function<void()> done) {
    std::unique_ptr<Work> self(new Work());
    auto* r = new Request{};
    r->req.data = r;
    r->loop = &loop;
    r->owner = self.get();
    r->work = std::move(work);
    r->done = std::move(done);
    int rc = uv_queue_work(
        loop.raw(), &r->req,
        [](uv_work_t* req) {
            auto* request = static_cast<Request*>(req->data);
            if (request->work) request->work();
        },
        [](uv_work_t* req, int /*status: 0, or UV_ECANCELED when ~Work cancelled it*/) {
            std::unique_ptr<Request> request(static_cast<Request*>(req->data));
            Work* owner = request->owner;
            if (!owner) return;
            owner->request_ = nullptr;
            if (request->loop->closing()) return;
            // The request (and its functions) stay alive for this call: `done` may destroy
            // the Work.
            if (request->done) request->done();
        });
    if (rc < 0) {
        delete r;
        return uvError(rc, "uv_queue_work");
    }
    self->request_ = r;
    return self;
}

Work::~Work() {
    if (!request_) return;
    request_->owner = nullptr;
    // Fails with UV_EBUSY once the work is running: it then finishes and frees itself.
    (void)uv_cancel(reinterpret_cast<uv_req_t*>(&request_->req));
}

}  // namespace possync::uv
