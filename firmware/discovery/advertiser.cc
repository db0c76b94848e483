#include "discovery/advertiser.h"

#include "base/bytes.h"
#include "log/log.h"

#include "discovery/announcement.h"
#include "possync_config.h"

#if POSSYNC_DISCOVERY_AVAHI
#include "avahi/client.h"
#include "avahi/publisher.h"
#endif

namespace possync::discovery {

POSSYNC_LOG_DECLARE(Discovery);

const char* advertiserStateName(AdvertiserState state) {
    switch (state) {
        case AdvertiserState::Waiting: return "waiting-for-avahi";
        case AdvertiserState::Registering: return "registering";
        case AdvertiserState::Established: return "established";
        case AdvertiserState::Failed: return "failed";
    }
    return "?";
}

#if POSSYNC_DISCOVERY_AVAHI

struct Advertiser::Impl {
    std::unique_ptr<avahi::Client> client;
    std::unique_ptr<avahi::Publisher> publisher;

    ~Impl() {
        publisher.reset();  // before the client it lives on
        client.reset();
    }
};

namespace {
Announcement announcementOf(const AdvertiserOptions& o) {
    return Announcement{o.storeId,    o.deviceId, POSSYNC_PROTOCOL_VERSION,
                        o.generation, o.term,     o.keyFingerprint};
}

AdvertiserState fromPublisher(avahi::PublisherState s) {
    switch (s) {
        case avahi::PublisherState::Waiting: return AdvertiserState::Waiting;
        case avahi::PublisherState::Registering: return AdvertiserState::Registering;
        case avahi::PublisherState::Established: return AdvertiserState::Established;
        case avahi::PublisherState::Failed: return AdvertiserState::Failed;
    }
    return AdvertiserState::Failed;
}
}  // namespace

#else

struct Advertiser::Impl {};

#endif

Advertiser::Advertiser(AdvertiserOptions options) : options_(std::move(options)) {}

Advertiser::~Advertiser() = default;

Result<std::unique_ptr<Advertiser>> Advertiser::create(uv_loop_s* loop, AdvertiserOptions options) {
    POSSYNC_TRY(validateId("store id", options.storeId));
    POSSYNC_TRY(validateId("device id", options.deviceId));
    if (options.port == 0) return makeError(Errc::InvalidArgument, "advertised port must be 1..65535");
    if (options.serviceName.empty())
        options.serviceName = defaultServiceName(options.storeId, options.deviceId);
#if POSSYNC_DISCOVERY_AVAHI
    std::unique_ptr<Advertiser> adv(new Advertiser(std::move(options)));
    adv->impl_ = std::make_unique<Impl>();
    auto client = avahi::Client::create(loop);
    if (!client.ok()) return client.takeError();
    adv->impl_->client = std::move(client).value();
    const AdvertiserOptions& o = adv->options_;
    auto pub = avahi::Publisher::create(
        *adv->impl_->client,
        avahi::ServiceSpec{o.serviceName, kServiceType, o.port, makeTxt(announcementOf(o))});
    if (!pub.ok()) return pub.takeError();
    adv->impl_->publisher = std::move(pub).value();
    Advertiser* self = adv.get();
    self->impl_->publisher->setStateCallback([self](avahi::PublisherState s) {
        AdvertiserState st = fromPublisher(s);
        if (st == AdvertiserState::Established)
            LOG(Discovery, Info) << "advertising master of store " << self->options_.storeId << " as \""
                                 << self->serviceName() << "\" on port " << self->options_.port;
        if (self->stateCallback_) self->stateCallback_(st);
    });
    LOG(Discovery, Info) << "advertising \"" << o.serviceName << "\" " << kServiceType << " port " << o.port
                         << " store=" << o.storeId << " dev=" << o.deviceId << " gen=" << hex64(o.generation)
                         << " term=" << o.term;
    return adv;
#else
    (void)loop;
    return makeError(Errc::Refused,
                     "this possync was built without Avahi (-Davahi=disabled): cannot advertise the "
                     "master; give slaves --discovery static --master HOST:PORT");
#endif
}

Status Advertiser::setPort(uint16_t port) {
    if (port == 0) return makeError(Errc::InvalidArgument, "advertised port must be 1..65535");
    options_.port = port;
    return republish();
}

void Advertiser::setGeneration(uint64_t generation) {
    setGenerationAndTerm(generation, options_.term);
}

void Advertiser::setGenerationAndTerm(uint64_t generation, uint64_t term) {
    options_.generation = generation;
    options_.term = term;
    Status st = republish();
    if (!st.ok()) LOG(Discovery, Error) << "cannot re-advertise: " << st.error().message;
}

Status Advertiser::republish() {
#if POSSYNC_DISCOVERY_AVAHI
    LOG(Discovery, Info) << "re-advertising \"" << serviceName() << "\" port " << options_.port
                         << " gen=" << hex64(options_.generation) << " term=" << options_.term;
    return impl_->publisher->update(options_.port, makeTxt(announcementOf(options_)));
#else
    return {};
#endif
}

AdvertiserState Advertiser::state() const {
#if POSSYNC_DISCOVERY_AVAHI
    return fromPublisher(impl_->publisher->state());
#else
    return AdvertiserState::Failed;
#endif
}

std::string Advertiser::serviceName() const {
#if POSSYNC_DISCOVERY_AVAHI
    return impl_->publisher->name();
#else
    return options_.serviceName;
#endif
}

std::string Advertiser::describe() const {
    std::string text = "advertising \"" + serviceName() + "\" " + kServiceType + " port " +
                       std::to_string(options_.port) + " store=" + options_.storeId +
                       " dev=" + options_.deviceId + " gen=" + hex64(options_.generation) +
                       " term=" + std::to_string(options_.term) + ": " + advertiserStateName(state());
#if POSSYNC_DISCOVERY_AVAHI
    text += std::string(" (avahi ") + avahi::clientStateName(impl_->client->state());
    std::string host = impl_->client->hostName();
    if (!host.empty()) text += ", host " + host;
    text += ")";
    if (impl_->publisher->renames() > 0)
        text += ", renamed from \"" + options_.serviceName + "\" after name collisions";
    if (!impl_->publisher->lastError().empty() && state() == AdvertiserState::Failed)
        text += ", error: " + impl_->publisher->lastError();
    else if (!impl_->client->lastError().empty() && state() == AdvertiserState::Waiting)
        text += ", last avahi error: " + impl_->client->lastError();
#endif
    return text;
}

}  // namespace possync::discovery
