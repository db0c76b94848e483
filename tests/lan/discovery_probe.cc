// discovery_probe: a small program for the LAN tests that publishes and browses through
// platform/avahi and firmware/discovery on a libuv loop, printing one greppable line per
// event on stdout.
//
//   discovery_probe publish --store S --dev D --port P [--gen HEX] [--name NAME]
//   discovery_probe publish-raw --name NAME --port P [--type T] [key=value ...]
//   discovery_probe find --store S [--timeout SEC] [--want-state found|conflict|searching]
//                        [--want-candidates N] [--want-dev D]... [--want-gen HEX]
//                        [--want-port P] [--want-address A] [--settle MS]   (SEC, MS: integers)
//   discovery_probe watch --store S [--timeout SEC]
//   discovery_probe browse [--type T] [--timeout SEC]
//
// Commands on stdin (one per line): "port N", "gen HEX" (publish), "txt k=v ..." (publish-raw),
// "snapshot", "choose" (watch), "quit". SIGTERM/SIGINT end it cleanly (the service is
// withdrawn). find exits 0 once every --want holds (after --settle ms), 1 on timeout; the
// others run until --timeout (default: forever), exit 0.
#include <signal.h>
#include <unistd.h>
#include <uv.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "avahi/browser.h"
#include "avahi/client.h"
#include "avahi/publisher.h"
#include "base/bytes.h"

#include "discovery/advertiser.h"
#include "discovery/announcement.h"
#include "discovery/master_finder.h"

using namespace possync;

namespace {

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr, "discovery_probe: %s\n", why.c_str());
    std::exit(2);
}

void out(const std::string& line) {
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

std::string quoted(const std::string& s) {
    return "\"" + s + "\"";
}

uint16_t parsePort(const std::string& s) {
    auto v = parseU64(s);
    if (!v || *v == 0 || *v > 65535) usage("bad port \"" + s + "\"");
    return static_cast<uint16_t>(*v);
}

uint64_t parseCount(const std::string& what, const std::string& s) {
    auto v = parseU64(s);
    if (!v || *v > 86400000) usage("bad " + what + " \"" + s + "\"");
    return *v;
}

uint64_t parseGen(const std::string& s) {
    auto v = parseHex64(s);
    if (!v) usage("bad generation \"" + s + "\" (want 1..16 hex digits)");
    return *v;
}

struct Args {
    std::string cmd;
    std::vector<std::pair<std::string, std::string>> opts;  // --key value
    std::vector<std::string> rest;                          // positional

    std::optional<std::string> get(const std::string& key) const {
        for (const auto& [k, v] : opts)
            if (k == key) return v;
        return std::nullopt;
    }
    std::vector<std::string> all(const std::string& key) const {
        std::vector<std::string> vs;
        for (const auto& [k, v] : opts)
            if (k == key) vs.push_back(v);
        return vs;
    }
    std::string need(const std::string& key) const {
        auto v = get(key);
        if (!v) usage(cmd + " needs --" + key);
        return *v;
    }
};

Args parseArgs(int argc, char** argv) {
    if (argc < 2) usage("usage: discovery_probe publish|publish-raw|find|watch|browse [options]");
    Args a;
    a.cmd = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string s = argv[i];
        if (s.rfind("--", 0) == 0) {
            if (i + 1 >= argc) usage("option " + s + " needs a value");
            a.opts.emplace_back(s.substr(2), argv[++i]);
        } else {
            a.rest.push_back(s);
        }
    }
    return a;
}

// The loop and its plumbing: signals, stdin lines, an optional deadline.
class Probe {
public:
    Probe() {
        uv_loop_init(&loop_);
        for (uv_signal_t* s : {&sigterm_, &sigint_}) {
            uv_signal_init(&loop_, s);
            s->data = this;
        }
        uv_signal_start(
            &sigterm_, [](uv_signal_t* s, int) { static_cast<Probe*>(s->data)->stop(0); }, SIGTERM);
        uv_signal_start(
            &sigint_, [](uv_signal_t* s, int) { static_cast<Probe*>(s->data)->stop(0); }, SIGINT);
        uv_timer_init(&loop_, &deadline_);
        deadline_.data = this;
        // stdin may be /dev/null (not pollable): then there are simply no commands.
        if (uv_poll_init(&loop_, &stdin_, STDIN_FILENO) == 0) {
            stdinOpen_ = true;
            stdin_.data = this;
            uv_poll_start(&stdin_, UV_READABLE, [](uv_poll_t* p, int status, int) {
                static_cast<Probe*>(p->data)->readStdin(status);
            });
        }
    }

    uv_loop_t* loop() { return &loop_; }
    void onLine(std::function<void(const std::string&)> f) { onLine_ = std::move(f); }
    void onTimeout(std::function<void()> f) { onTimeout_ = std::move(f); }

    void setTimeout(uint64_t seconds) {
        uv_timer_start(
            &deadline_,
            [](uv_timer_t* t) {
                Probe* self = static_cast<Probe*>(t->data);
                if (self->onTimeout_)
                    self->onTimeout_();
                else
                    self->stop(0);
            },
            seconds * 1000, 0);
    }

    // Ends uv_run; `cleanup` (set by the mode) destroys the Avahi objects first.
    void stop(int code) {
        if (stopping_) return;
        stopping_ = true;
        exitCode_ = code;
        uv_stop(&loop_);
    }

    int finish(const std::function<void()>& destroy) {
        destroy();
        uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&deadline_), nullptr);
        if (stdinOpen_) uv_close(reinterpret_cast<uv_handle_t*>(&stdin_), nullptr);
        for (int i = 0; i < 100 && uv_loop_alive(&loop_); ++i) uv_run(&loop_, UV_RUN_NOWAIT);
        int rc = uv_loop_close(&loop_);
        if (rc != 0) {
            std::fprintf(stderr, "discovery_probe: loop still has handles at exit: %s\n", uv_strerror(rc));
            return 3;
        }
        return exitCode_;
    }

    void run() { uv_run(&loop_, UV_RUN_DEFAULT); }

private:
    void readStdin(int status) {
        char buf[512];
        ssize_t n = status < 0 ? 0 : read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0) return;  // EAGAIN
        if (n == 0) {       // EOF: no more commands; keep running
            uv_poll_stop(&stdin_);
            return;
        }
        pending_.append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = pending_.find('\n')) != std::string::npos) {
            std::string line = pending_.substr(0, nl);
            pending_.erase(0, nl + 1);
            if (line == "quit")
                stop(0);
            else if (onLine_)
                onLine_(line);
        }
    }

    uv_loop_t loop_;
    uv_signal_t sigterm_, sigint_;
    uv_timer_t deadline_;
    uv_poll_t stdin_;
    bool stdinOpen_ = false;
    bool stopping_ = false;
    int exitCode_ = 0;
    std::string pending_;
    std::function<void(const std::string&)> onLine_;
    std::function<void()> onTimeout_;
};

std::string candidateLine(const discovery::Candidate& c) {
    std::string s = "name=" + quoted(c.serviceName) + " dev=" + c.deviceId + " at " + c.endpoint();
    if (c.generation) s += " gen=" + hex64(*c.generation);
    return s;
}

void printSnapshot(const discovery::MasterFinder& f) {
    std::string text = discovery::formatSnapshot(f.snapshot(), 0);
    std::fputs(text.c_str(), stdout);
    auto c = f.choose();
    out(c.ok() ? "choose: ok " + candidateLine(*c) : "choose: error " + c.error().message);
}

int cmdPublish(const Args& a) {
    Probe probe;
    discovery::AdvertiserOptions o;
    o.storeId = a.need("store");
    o.deviceId = a.need("dev");
    o.port = parsePort(a.need("port"));
    o.generation = a.get("gen") ? parseGen(*a.get("gen")) : 1;
    o.serviceName = a.get("name").value_or("");
    auto adv = discovery::Advertiser::create(probe.loop(), o);
    if (!adv.ok()) usage(adv.error().message);
    discovery::Advertiser* ad = adv->get();
    ad->setStateCallback([ad](discovery::AdvertiserState s) {
        out(std::string("publisher ") + discovery::advertiserStateName(s) +
            " name=" + quoted(ad->serviceName()));
    });
    probe.onLine([ad](const std::string& line) {
        if (line.rfind("port ", 0) == 0) {
            Status st = ad->setPort(parsePort(line.substr(5)));
            out(st.ok() ? "ok " + line : "error " + st.error().message);
        } else if (line.rfind("gen ", 0) == 0) {
            ad->setGeneration(parseGen(line.substr(4)));
            out("ok " + line);
        } else if (line == "describe") {
            out(ad->describe());
        } else {
            out("error unknown command: " + line);
        }
    });
    if (auto t = a.get("timeout")) probe.setTimeout(parseCount("timeout", *t));
    probe.run();
    return probe.finish([&] { adv->reset(); });
}

int cmdPublishRaw(const Args& a) {
    Probe probe;
    auto client = avahi::Client::create(probe.loop());
    if (!client.ok()) usage(client.error().message);
    avahi::ServiceSpec spec;
    spec.name = a.need("name");
    spec.type = a.get("type").value_or(discovery::kServiceType);
    spec.port = parsePort(a.need("port"));
    auto parseTxt = [](const std::vector<std::string>& items) {
        avahi::TxtList txt;
        for (const std::string& kv : items) {
            size_t eq = kv.find('=');
            if (eq == std::string::npos) usage("TXT item \"" + kv + "\" is not key=value");
            txt.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
        }
        return txt;
    };
    spec.txt = parseTxt(a.rest);
    auto pub = avahi::Publisher::create(**client, spec);
    if (!pub.ok()) usage(pub.error().message);
    avahi::Publisher* p = pub->get();
    (*client)->setStateCallback(
        [](avahi::ClientState s) { out(std::string("client ") + avahi::clientStateName(s)); });
    p->setStateCallback([p](avahi::PublisherState s) {
        out(std::string("publisher ") + avahi::publisherStateName(s) + " name=" + quoted(p->name()));
    });
    probe.onLine([p, &parseTxt](const std::string& line) {
        Status st;
        if (line.rfind("port ", 0) == 0) {
            st = p->update(parsePort(line.substr(5)), p->spec().txt);
        } else if (line.rfind("txt", 0) == 0) {
            std::vector<std::string> items;
            size_t pos = 3;
            while (pos < line.size()) {
                size_t sp = line.find(' ', pos);
                if (sp == std::string::npos) sp = line.size();
                if (sp > pos) items.push_back(line.substr(pos, sp - pos));
                pos = sp + 1;
            }
            st = p->update(p->spec().port, parseTxt(items));
        } else {
            out("error unknown command: " + line);
            return;
        }
        out(st.ok() ? "ok " + line : "error " + st.error().message);
    });
    if (auto t = a.get("timeout")) probe.setTimeout(parseCount("timeout", *t));
    probe.run();
    return probe.finish([&] {
        pub->reset();
        client->reset();
    });
}

int cmdFindOrWatch(const Args& a, bool find) {
    Probe probe;
    auto made = discovery::MasterFinder::createAvahi(probe.loop(), a.need("store"));
    if (!made.ok()) usage(made.error().message);
    discovery::MasterFinder* f = made->get();

    auto wantState = a.get("want-state");
    auto wantCount = a.get("want-candidates");
    auto wantDevs = a.all("want-dev");
    auto wantGen = a.get("want-gen");
    auto wantPort = a.get("want-port");
    auto wantAddress = a.get("want-address");
    uint64_t settleMs = a.get("settle") ? parseCount("settle", *a.get("settle")) : 300;

    auto satisfied = [=]() {
        if (wantState && *wantState != discovery::finderStateName(f->state())) return false;
        if (wantCount && std::to_string(f->candidates().size()) != *wantCount) return false;
        for (const std::string& d : wantDevs) {
            bool seen = false;
            for (const auto& c : f->candidates()) seen = seen || c.deviceId == d;
            if (!seen) return false;
        }
        auto any = [&](const std::function<bool(const discovery::Candidate&)>& pred) {
            for (const auto& c : f->candidates())
                if (pred(c)) return true;
            return false;
        };
        if (wantGen && !any([&](const auto& c) { return c.generation && hex64(*c.generation) == *wantGen; }))
            return false;
        if (wantPort && !any([&](const auto& c) { return std::to_string(c.port) == *wantPort; }))
            return false;
        if (wantAddress && !any([&](const auto& c) { return c.address == *wantAddress; })) return false;
        return true;
    };

    // find: re-check on every event; once satisfied, wait `settle` ms and check again (so
    // a result that is about to change is not reported).
    uv_timer_t settle;
    uv_timer_init(probe.loop(), &settle);
    struct Ctx {
        Probe* probe;
        discovery::MasterFinder* f;
        std::function<bool()> satisfied;
    } ctx{&probe, f, satisfied};
    settle.data = &ctx;
    auto check = [&, find]() {
        if (!find) return;
        if (satisfied()) {
            if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&settle)))
                uv_timer_start(
                    &settle,
                    [](uv_timer_t* t) {
                        Ctx* c = static_cast<Ctx*>(t->data);
                        if (!c->satisfied()) return;
                        printSnapshot(*c->f);
                        c->probe->stop(0);
                    },
                    settleMs, 0);
        } else {
            uv_timer_stop(&settle);
        }
    };
    f->setChangeCallback([check](const discovery::Change& c) {
        out(std::string("change ") + discovery::changeKindName(c.kind) + " " + candidateLine(c.candidate));
        check();
    });
    f->setStateCallback([f, check](discovery::FinderState s) {
        std::string line = std::string("state ") + discovery::finderStateName(s);
        if (s == discovery::FinderState::Conflict) line += ": " + f->snapshot().conflict;
        out(line);
        check();
    });
    probe.onLine([f](const std::string& line) {
        if (line == "snapshot")
            printSnapshot(*f);
        else if (line == "choose") {
            auto c = f->choose();
            out(c.ok() ? "choose: ok " + candidateLine(*c) : "choose: error " + c.error().message);
        } else
            out("error unknown command: " + line);
    });
    uint64_t timeout = a.get("timeout") ? parseCount("timeout", *a.get("timeout")) : (find ? 20 : 0);
    if (timeout > 0) {
        probe.onTimeout([&, find]() {
            printSnapshot(*f);
            if (find) out("TIMEOUT: the wanted discovery state was not reached");
            probe.stop(find ? 1 : 0);
        });
        probe.setTimeout(timeout);
    }
    check();
    probe.run();
    return probe.finish([&] {
        uv_close(reinterpret_cast<uv_handle_t*>(&settle), nullptr);
        made->reset();
    });
}

int cmdBrowse(const Args& a) {
    Probe probe;
    auto client = avahi::Client::create(probe.loop());
    if (!client.ok()) usage(client.error().message);
    (*client)->setStateCallback(
        [](avahi::ClientState s) { out(std::string("client ") + avahi::clientStateName(s)); });
    avahi::BrowserCallbacks cb;
    cb.found = [](const avahi::ServiceInfo& i) {
        std::string txt;
        for (const auto& [k, v] : i.txt) txt += (txt.empty() ? "" : ",") + k + "=" + v;
        out("found name=" + quoted(i.name) + " host=" + i.host + " address=" + i.address +
            " port=" + std::to_string(i.port) + " if=" + std::to_string(i.interfaceIndex) + " txt=" + txt);
    };
    cb.removed = [](const std::string& name) { out("removed name=" + quoted(name)); };
    cb.allForNow = [] { out("all-for-now"); };
    auto browser = avahi::Browser::create(**client, a.get("type").value_or(discovery::kServiceType), cb);
    if (!browser.ok()) usage(browser.error().message);
    if (auto t = a.get("timeout")) probe.setTimeout(parseCount("timeout", *t));
    probe.run();
    return probe.finish([&] {
        browser->reset();
        client->reset();
    });
}

}  // namespace

int main(int argc, char** argv) {
    Args a = parseArgs(argc, argv);
    if (a.cmd == "publish") return cmdPublish(a);
    if (a.cmd == "publish-raw") return cmdPublishRaw(a);
    if (a.cmd == "find") return cmdFindOrWatch(a, true);
    if (a.cmd == "watch") return cmdFindOrWatch(a, false);
    if (a.cmd == "browse") return cmdBrowse(a);
    usage("unknown command \"" + a.cmd + "\" (want publish, publish-raw, find, watch or browse)");
}
