#include "agent/cluster_delivery.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include <nlohmann/json.hpp>

#include "common/etcd_config.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "common/wire.h"

namespace statherd::agent {

namespace {

constexpr size_t kEpochDigits = 20;

uint64_t epoch_of(std::string_view digits) {
  if (digits.size() != kEpochDigits) return 0;
  uint64_t e = 0;
  for (char c : digits) {
    if (c < '0' || c > '9' || e > 1'000'000'000'000ull) return 0;
    e = e * 10 + static_cast<uint64_t>(c - '0');
  }
  return e;
}

}  // namespace

ClusterView parse_cluster_view(const std::string& prefix, const etcd::RangeResult& maps,
                               const etcd::RangeResult& members, std::vector<std::string>& problems) {
  ClusterView view;
  const std::string maps_dir = prefix + "maps/", members_dir = prefix + "members/";
  for (const auto& kv : maps.kvs) {
    if (kv.key.rfind(maps_dir, 0) != 0) continue;
    const uint64_t epoch = epoch_of(std::string_view(kv.key).substr(maps_dir.size()));
    auto map = cluster::map_from_json(kv.value, "etcd key " + etcd::printable(kv.key));
    if (epoch == 0 || !map || map->epoch != epoch) {
      problems.push_back("etcd key " + etcd::printable(kv.key) + ": " +
                         (!map ? map.error().message : std::string("not a map of its epoch")));
      continue;
    }
    view.maps.push_back(std::move(*map));
  }
  for (const auto& kv : members.kvs) {
    if (kv.key.rfind(members_dir, 0) != 0) continue;
    const std::string id = kv.key.substr(members_dir.size());
    if (!cluster::valid_name(id)) continue;
    const nlohmann::json value = nlohmann::json::parse(kv.value, nullptr, false);
    if (!value.is_object() || !value.contains("ingest") || !value["ingest"].is_string()) {
      problems.push_back("etcd key " + etcd::printable(kv.key) + ": no \"ingest\" URL");
      continue;
    }
    view.ingest[id] = value["ingest"].get<std::string>();
  }
  return view;
}

MapWatcher::MapWatcher(std::vector<etcd::Endpoint> endpoints, std::string prefix,
                       std::chrono::milliseconds period)
    : client_(std::move(endpoints), std::min<std::chrono::milliseconds>(period, std::chrono::seconds(2))),
      prefix_(std::move(prefix)), period_(period) {
  thread_ = std::thread([this] { run(); });
}

MapWatcher::~MapWatcher() { stop(); }

void MapWatcher::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<ClusterView> MapWatcher::view() const {
  std::lock_guard lock(mu_);
  return view_;
}

std::optional<ClusterView> MapWatcher::view_after(int64_t ms, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  auto fresh = [&] { return view_ && view_->read_ms >= ms; };
  if (!fresh()) {
    nudged_ = true;
    wake_.notify_all();
    read_done_.wait_for(lock, timeout, [&] { return fresh() || stopping_; });
  }
  if (!fresh()) return std::nullopt;
  return view_;
}

void MapWatcher::read_now() {
  const int64_t started_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  auto maps = client_.get_prefix(prefix_ + "maps/");
  auto members = maps ? client_.get_prefix(prefix_ + "members/") : Result<etcd::RangeResult>(maps.error());
  std::lock_guard lock(mu_);
  read_done_.notify_all();  // on return (the lock is released after this)
  if (!maps || !members) {
    const std::string error = (!maps ? maps.error() : members.error()).to_string();
    if (last_error_.empty())
      log::warn("cluster: cannot read the shard maps from etcd: " + error +
                " (retrying; batches wait in the spool)");
    last_error_ = error;
    return;
  }
  if (!last_error_.empty()) log::info("cluster: etcd answers again");
  last_error_.clear();
  std::vector<std::string> problems;
  ClusterView next = parse_cluster_view(prefix_, *maps, *members, problems);
  next.read_ms = started_ms;
  for (const auto& p : problems)
    if (reported_.insert(p).second) log::warn("cluster: ignoring " + p);
  const bool first = !view_ || view_->maps.empty();
  if (view_)  // members once seen keep their URL: a dead server's spool replays when it is back
    for (const auto& [id, url] : view_->ingest) next.ingest.try_emplace(id, url);
  if (first && !next.maps.empty())
    log::info("cluster: read " + std::to_string(next.maps.size()) + " shard map(s) from etcd; "
              "routing by map " + std::to_string(next.maps.back().epoch));
  view_ = std::move(next);
}

void MapWatcher::run() {
  name_this_thread("cluster-maps");
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    read_now();
    lock.lock();
    wake_.wait_for(lock, period_, [this] { return stopping_ || nudged_; });
    nudged_ = false;
  }
}

struct ClusterDelivery::Destination {
  std::string id, url;
  std::string bad_url;  // the last URL advertised that does not parse (logged once)
  std::unique_ptr<Spool> spool;
  std::unique_ptr<HttpBatchSender> sender;    // null while its URL is unknown
  std::unique_ptr<SpoolDelivery> delivery;
};

ClusterDelivery::ClusterDelivery(ClusterDeliveryOptions options,
                                 std::function<std::optional<ClusterView>(int64_t ms)> view)
    : options_(std::move(options)), view_(std::move(view)) {}

ClusterDelivery::~ClusterDelivery() = default;

Status ClusterDelivery::open() {
  const std::string dir = options_.spool_dir + "/servers";
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return make_error("cannot create " + dir + ": " + std::strerror(errno));
  DIR* d = ::opendir(dir.c_str());
  if (!d) return make_error("cannot list " + dir + ": " + std::strerror(errno));
  std::vector<std::string> ids;
  while (dirent* e = ::readdir(d))
    if (cluster::valid_name(e->d_name)) ids.emplace_back(e->d_name);
  ::closedir(d);
  for (const auto& id : ids) {
    auto dest = destination(id);
    if (!dest) return dest.error();
    if ((*dest)->spool->count() > 0)
      log::info("cluster: the spool of server " + id + " holds " +
                std::to_string((*dest)->spool->count()) + " batches; replaying them in order");
  }
  return Ok{};
}

Result<ClusterDelivery::Destination*> ClusterDelivery::destination(const std::string& id) {
  if (auto it = destinations_.find(id); it != destinations_.end()) return it->second.get();
  if (!cluster::valid_name(id)) return make_error("server id '" + etcd::printable(id) + "' is not a name");
  auto spool = Spool::open(options_.spool_dir + "/servers/" + id, options_.spool_max_bytes,
                           0);
  if (!spool) return spool.error();
  auto dest = std::make_unique<Destination>();
  dest->id = id;
  dest->spool = std::move(*spool);
  if (options_.stride_from) dest->spool->use_stride_from(options_.stride_from);
  Destination* out = dest.get();
  destinations_[id] = std::move(dest);
  return out;
}

void ClusterDelivery::refresh_urls(const ClusterView& view) {
  for (auto& [id, dest] : destinations_) {
    auto it = view.ingest.find(id);
    if (it == view.ingest.end() || it->second == dest->url || it->second == dest->bad_url) continue;
    auto url = parse_server_url(it->second);
    if (!url) {  // said once per URL
      log::warn("cluster: server " + id + " advertises " + etcd::printable(it->second) + ": " +
                url.error().message + "; its batches wait in its spool");
      dest->bad_url = it->second;
      continue;
    }
    if (!dest->url.empty())
      log::info("cluster: server " + id + " is now at " + it->second + " (was " + dest->url + ")");
    dest->url = it->second;
    dest->delivery.reset();
    dest->sender = std::make_unique<HttpBatchSender>(
        HttpSenderOptions{*url, options_.token, options_.agent_id, options_.ship_timeout});
    dest->delivery = std::make_unique<SpoolDelivery>(
        *dest->spool, *dest->sender,
        // At most 2 s between tries (a refused connect is cheap): a server back from a
        // restart has its batches replayed before it may emit anything (registering waits
        // for its old key to expire, then a lease_ttl of fencing), even as the only replica
        // left of a shard (server/shard_leadership.h, settle).
        Backoff(std::chrono::milliseconds(500), std::chrono::seconds(2),
                options_.seed ^ std::hash<std::string>{}(id)));
    dest->delivery->set_max_send_bytes(options_.max_send_bytes);
    dest->delivery->set_unreachable_hint("is server " + id + " running and reachable at " +
                                         dest->url + " (the ingest URL of its members/ key in "
                                         "etcd)? Its batches wait in its spool meanwhile");
  }
}

ShipResult ClusterDelivery::send(uint64_t seq, std::string_view encoded_batch) {
  std::optional<ClusterView> view = view_(0);
  if (!view || view->maps.empty())
    return {ShipOutcome::RetryLater, 0,
            "no shard map read yet from " + options_.etcd_where +
                " (is etcd reachable, and is etcd.cluster the servers' one?)"};
  if (seq != pending_seq_ || pending_.empty()) {
    auto batch = decode_batch(encoded_batch);
    if (!batch) {
      return {ShipOutcome::Malformed, 400,
              "the spooled batch does not decode: " + batch.error().message};
    }
    // Maps read after the newest sample: every map that can apply to it is among them.
    int64_t newest = 0;
    for (const SourceSamples& s : batch->sources)
      for (const Sample& sample : s.samples) newest = std::max(newest, sample.timestamp_ms);
    if (view->read_ms < newest) {
      view = view_(newest);
      if (!view || view->maps.empty())
        return {ShipOutcome::RetryLater, 0,
                "no read of the shard maps from etcd since the batch was scraped (is etcd "
                "reachable?)"};
    }
    router_.set_maps(view->maps);
    memory_.apply(*batch);
    auto parts = router_.split(*batch);
    if (!parts) return {ShipOutcome::RetryLater, 0, parts.error().message};
    pending_ = std::move(*parts);
    pending_seq_ = seq;
    if (pending_.empty()) return {ShipOutcome::Acked, 200, "no samples"};
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    auto dest = destination(it->server);
    if (!dest) return {ShipOutcome::RetryLater, 0, dest.error().message};
    if (Status s = (*dest)->spool->put(seq, encode_batch(it->batch)); !s)
      return {ShipOutcome::RetryLater, 0, "server " + it->server + "'s spool: " + s.error().message};
    it = pending_.erase(it);  // stored: not again on a retry
  }
  pending_seq_ = 0;
  refresh_urls(*view);
  return {ShipOutcome::Acked, 200, ""};
}

bool ClusterDelivery::drain(SteadyClock::time_point deadline, bool ignore_backoff) {
  if (auto view = view_(0)) refresh_urls(*view);
  bool empty = true;
  for (auto& [id, dest] : destinations_) {
    if (dest->delivery && dest->spool->count() > 0) dest->delivery->drain(deadline, ignore_backoff);
    empty = empty && dest->spool->count() == 0;
  }
  return empty;
}

void ClusterDelivery::set_timeout(std::chrono::milliseconds timeout) {
  options_.ship_timeout = timeout;
  for (auto& [id, dest] : destinations_)
    if (dest->sender) dest->sender->set_timeout(timeout);
}

std::vector<DestinationStatus> ClusterDelivery::status() const {
  std::vector<DestinationStatus> out;
  for (const auto& [id, dest] : destinations_) {
    DestinationStatus s;
    s.id = id;
    s.url = dest->url;
    s.batches = dest->spool->count();
    s.bytes = dest->spool->bytes();
    s.dropped = dest->spool->dropped_batches();
    if (dest->delivery) {
      s.acked = dest->delivery->stats().acked;
      s.failed_attempts = dest->delivery->stats().failed_attempts;
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace statherd::agent
