#include "server/cluster_coordinator.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "common/etcd_config.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "common/time_floor.h"

namespace statherd::server {

namespace {

constexpr size_t kEpochDigits = 20;
constexpr uint64_t kMaxEpoch = 1'000'000'000'000ull;

std::string epoch_key(const std::string& prefix, uint64_t epoch) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(epoch));
  return prefix + "maps/" + digits;
}

// The epoch a maps/ key names (20 digits), or 0 when it is not one. Epochs above
// kMaxEpoch are not ones a coordinator writes (one a second would take 30,000 years): such a
// key is junk, and counting it would bring the next epoch near the wrap.
uint64_t epoch_of_key(std::string_view suffix) {
  if (suffix.size() != kEpochDigits) return 0;
  uint64_t e = 0;
  for (char c : suffix) {
    if (c < '0' || c > '9') return 0;
    e = e * 10 + static_cast<uint64_t>(c - '0');
    if (e > kMaxEpoch) return 0;
  }
  return e;
}

std::string joined(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ",") + id;
  return out;
}

const cluster::ShardMap* latest_of(const std::vector<cluster::ShardMap>& maps) {
  const cluster::ShardMap* latest = nullptr;
  for (const auto& m : maps)
    if (!latest || m.epoch > latest->epoch) latest = &m;
  return latest;
}

}  // namespace

int64_t MapPlanner::next_from_ms(int64_t now_ms, int64_t latest_from_ms) const {
  const int64_t step = std::max<int64_t>(settings_.interval.count(), 1);
  const int64_t lead = std::max<int64_t>(settings_.lead.count(), 2 * step);
  int64_t earliest = std::max(now_ms + lead, latest_from_ms + step);
  int64_t from = floor_to(earliest, step);
  if (from < earliest) from += step;
  return from;
}

std::optional<cluster::ShardMap> MapPlanner::plan(const std::vector<cluster::ShardMap>& maps,
                                                  const std::set<std::string>& registered,
                                                  int64_t now_ms, uint64_t highest_epoch_seen) {
  const cluster::ShardMap* latest = latest_of(maps);
  // Absences of the latest map's members: since when each has been missing from members/.
  std::set<std::string> in_map;
  if (latest) in_map.insert(latest->members.begin(), latest->members.end());
  for (auto it = absent_since_.begin(); it != absent_since_.end();) {
    if (registered.count(it->first) || !in_map.count(it->first)) it = absent_since_.erase(it);
    else ++it;
  }
  for (const auto& m : in_map)
    if (!registered.count(m)) absent_since_.emplace(m, now_ms);

  std::set<std::string> next(registered.begin(), registered.end());
  for (const auto& m : in_map) {
    auto absent = absent_since_.find(m);
    if (absent == absent_since_.end() || now_ms - absent->second < settings_.dead_after.count())
      next.insert(m);  // registered, or not gone for long enough: keeps its shards
  }
  if (next.empty()) return std::nullopt;  // nobody to give the shards to: keep the last map
  if (latest && next == in_map) return std::nullopt;

  const uint64_t epoch = std::max(latest ? latest->epoch : 0, highest_epoch_seen) + 1;
  const uint32_t shards = latest ? latest->shards : settings_.shards;
  const uint32_t replicas = latest ? latest->replicas : settings_.replicas;
  auto map = cluster::make_map(epoch, next_from_ms(now_ms, latest ? latest->from_ms : INT64_MIN / 2),
                               shards, replicas, {next.begin(), next.end()});
  if (!map) {
    log::warn("cluster: cannot make map " + std::to_string(epoch) + ": " + map.error().message);
    return std::nullopt;
  }
  return std::move(*map);
}

ClusterCoordinator::ClusterCoordinator(CoordinatorSettings settings, std::string prefix,
                                       std::string id)
    : prefix_(std::move(prefix)), id_(std::move(id)), planner_(settings), settings_(settings),
      leadership_(LeadershipSettings{settings.lease_ttl, settings.interval,
                                     settings.keep_superseded},
                  prefix_, id_) {}

void ClusterCoordinator::tick(etcd::Client& client, int64_t lease, int64_t now_ms,
                              std::chrono::steady_clock::time_point renewed_at) {
  Status s = round(client, lease, now_ms, renewed_at);
  std::lock_guard lock(mu_);
  if (!s) {
    if (last_error_.empty()) log::warn("cluster: " + s.error().to_string() + " (retrying)");
    last_error_ = s.error().message;
  } else {
    last_error_.clear();
  }
}

Status ClusterCoordinator::round(etcd::Client& client, int64_t lease, int64_t now_ms,
                                 std::chrono::steady_clock::time_point renewed_at) {
  const auto started = std::chrono::steady_clock::now();
  auto over_budget = [&] {
    return std::chrono::steady_clock::now() - started > settings_.round_budget;
  };
  const Error slow = make_error("etcd is slow: the coordinator's round was cut short after "
                                "a whole lease_ttl (the rest at the next round)");
  auto members = client.get_prefix(prefix_ + "members/");
  if (!members) return members.error();
  if (over_budget()) return slow;
  auto stored = client.get_prefix(prefix_ + "maps/");
  if (!stored) return stored.error();
  if (over_budget()) return slow;

  std::map<std::string, nlohmann::json> member_values;
  std::set<std::string> registered;
  const std::string members_dir = prefix_ + "members/", maps_dir = prefix_ + "maps/";
  for (const auto& kv : members->kvs) {
    if (kv.key.rfind(members_dir, 0) != 0) continue;
    const std::string id = kv.key.substr(members_dir.size());
    if (!cluster::valid_name(id)) continue;  // no server writes such a key
    nlohmann::json value = nlohmann::json::parse(kv.value, nullptr, false);
    if (value.is_discarded()) value = etcd::printable(kv.value);  // shown, never dumped raw
    member_values[id] = std::move(value);
    registered.insert(id);
  }
  std::vector<cluster::ShardMap> maps;
  uint64_t highest = 0;
  std::vector<std::string> newly_bad;
  for (const auto& kv : stored->kvs) {
    if (kv.key.rfind(maps_dir, 0) != 0) continue;
    const uint64_t epoch = epoch_of_key(std::string_view(kv.key).substr(maps_dir.size()));
    highest = std::max(highest, epoch);
    auto map = cluster::map_from_json(kv.value, "etcd key " + kv.key);
    std::string problem;
    if (epoch == 0) problem = "etcd key " + kv.key + ": not maps/<20-digit epoch>";
    else if (!map) problem = map.error().message;
    else if (map->epoch != epoch) problem = "etcd key " + kv.key + ": holds epoch " +
                                            std::to_string(map->epoch);
    if (problem.empty()) {
      maps.push_back(std::move(*map));
    } else {
      std::lock_guard lock(mu_);
      if (bad_keys_.insert(kv.key).second)
        log::warn("cluster: ignoring " + problem + " (never overwritten; the next map takes the "
                  "epoch after it)");
    }
  }
  std::sort(maps.begin(), maps.end(),
            [](const cluster::ShardMap& a, const cluster::ShardMap& b) { return a.epoch < b.epoch; });

  // The coordinator key, under this server's membership lease: it goes when this server does.
  auto holder = client.get(prefix_ + "coordinator");
  if (!holder) return holder.error();
  if (over_budget()) return slow;
  std::string coordinator;
  bool mine = false;
  if (holder->kvs.empty()) {
    if (over_budget()) return slow;
    auto took = client.put_if(prefix_ + "coordinator", id_, 0, lease);
    if (!took) return took.error();
    mine = took->succeeded;
    coordinator = took->succeeded ? id_ : (took->current.empty() ? "" : took->current[0].value);
  } else {
    coordinator = holder->kvs[0].value;
    mine = coordinator == id_ && holder->kvs[0].lease == lease;
  }
  bool was;
  {
    std::lock_guard lock(mu_);
    was = coordinating_;
    members_ = std::move(member_values);
    maps_ = maps;
    coordinator_ = coordinator;
    coordinating_ = mine;
    last_round_ms_ = now_ms;
  }
  if (mine != was)
    log::info(mine ? "cluster: this server coordinates (writes the shard maps)"
                   : "cluster: " + (coordinator.empty() ? std::string("nobody") : coordinator) +
                         " coordinates now");

  auto next = planner_.plan(maps, registered, now_ms, highest);  // absences tracked by all
  if (mine && next) {
    if (over_budget()) return slow;
    if (Status s = write_map(client, *next); !s) return s;
  }
  if (over_budget()) return slow;
  std::map<std::string, int64_t> member_started;  // for the leaders' order (catching up)
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, value] : members_)
      if (value.is_object() && value.contains("started_ms") && value["started_ms"].is_number_integer())
        member_started[id] = value["started_ms"].get<int64_t>();
  }
  leadership_.set_started(std::move(member_started));
  if (Status s = leadership_.tick(client, this->maps(), registered, lease, renewed_at, now_ms,
                                  std::chrono::steady_clock::now(),
                                  started + settings_.round_budget);
      !s)
    return s;
  if (over_budget()) return slow;
  return sync_emitted(client, now_ms);
}

std::string ClusterCoordinator::emitted_key(const std::string& prefix, uint64_t epoch,
                                            uint32_t shard, const std::string& writer) {
  char tail[48];
  std::snprintf(tail, sizeof tail, "%020llu/%05u/", static_cast<unsigned long long>(epoch), shard);
  return prefix + "emitted/" + tail + writer;
}

Status ClusterCoordinator::sync_emitted(etcd::Client& client, int64_t now_ms) {
  const std::string dir = prefix_ + "emitted/";
  auto got = client.get_prefix(dir);
  if (!got) return got.error();
  // <20-digit epoch>/<5-digit shard>/<writer id>: each leader writes its own key, so a mark
  // never moves back and a server can tell its own marks from the others'. Anything else is
  // not statherd's, and ignored.
  std::map<Slot, int64_t> markers, own;  // the others' highest mark; this server's
  for (const auto& kv : got->kvs) {
    const std::string_view rest = std::string_view(kv.key).substr(std::min(kv.key.size(), dir.size()));
    if (kv.key.rfind(dir, 0) != 0 || rest.size() < kEpochDigits + 8 || rest[kEpochDigits] != '/' ||
        rest[kEpochDigits + 6] != '/')
      continue;
    const uint64_t epoch = epoch_of_key(rest.substr(0, kEpochDigits));
    const std::string_view shard_digits = rest.substr(kEpochDigits + 1, 5);
    const std::string_view writer = rest.substr(kEpochDigits + 7);
    uint32_t shard = 0;
    int64_t ms = 0;
    auto [p1, e1] = std::from_chars(shard_digits.data(), shard_digits.data() + 5, shard);
    auto [p2, e2] = std::from_chars(kv.value.data(), kv.value.data() + kv.value.size(), ms);
    if (epoch == 0 || e1 != std::errc() || p1 != shard_digits.data() + 5 || e2 != std::errc() ||
        p2 != kv.value.data() + kv.value.size() || !cluster::valid_name(writer))
      continue;
    auto& to = writer == id_ ? own : markers;
    auto [it, added] = to.try_emplace({epoch, shard}, ms);
    if (!added) it->second = std::max(it->second, ms);
  }
  std::vector<std::pair<std::string, std::string>> writes;
  std::set<uint64_t> stale_epochs;
  {
    std::lock_guard lock(mu_);
    for (const auto& [slot, ms] : progress_) {
      auto it = own.find(slot);
      if (it != own.end() && it->second >= ms) continue;
      writes.emplace_back(emitted_key(prefix_, slot.first, slot.second, id_), std::to_string(ms));
    }
    for (const auto& [slot, ms] : own) markers.try_emplace(slot, kNeverEmitted);  // epochs seen
    // Epochs superseded for longer than the late window: nothing of theirs is emitted again.
    for (const auto& [slot, ms] : markers) {
      const cluster::ShardMap* successor = nullptr;
      for (const auto& m : maps_)
        if (m.epoch > slot.first && (!successor || m.from_ms < successor->from_ms)) successor = &m;
      if (successor && now_ms - successor->from_ms > settings_.keep_superseded.count())
        stale_epochs.insert(slot.first);
    }
    std::erase_if(progress_, [&](const auto& e) { return stale_epochs.count(e.first.first) > 0; });
    std::erase_if(markers, [](const auto& e) { return e.second == kNeverEmitted; });
    markers_ = markers;
  }
  if (Status s = client.put_all(writes); !s) return s;
  if (!coordinating()) return Ok{};
  for (uint64_t epoch : stale_epochs) {
    char digits[32];
    std::snprintf(digits, sizeof digits, "%020llu/", static_cast<unsigned long long>(epoch));
    auto gone = client.del_prefix(dir + digits);
    if (!gone) return gone.error();
  }
  return Ok{};
}

std::optional<EmitView> ClusterCoordinator::view_at(int64_t interval_start_ms,
                                                    std::chrono::steady_clock::time_point now) const {
  std::lock_guard lock(mu_);
  if (maps_.empty()) return std::nullopt;
  const cluster::ShardMap* map = cluster::map_at(maps_, interval_start_ms);
  if (!map) {  // before the first map: its leaders emit what came before it
    map = &maps_.front();
    for (const auto& m : maps_)
      if (m.epoch < map->epoch) map = &m;
  }
  EmitView v;
  v.epoch = map->epoch;
  v.shards = map->shards;
  v.role.assign(map->shards, ShardRole::None);
  v.emitted_ms.assign(map->shards, kNeverEmitted);
  const auto me = std::find(map->members.begin(), map->members.end(), id_);
  if (me != map->members.end()) {
    const auto index = static_cast<uint32_t>(me - map->members.begin());
    for (uint32_t shard = 0; shard < map->shards && shard < map->owners.size(); ++shard) {
      const auto& owners = map->owners[shard];
      if (std::find(owners.begin(), owners.end(), index) == owners.end()) continue;
      v.role[shard] = leadership_.may_emit(map->epoch, shard, now) ? ShardRole::Emit
                                                                   : ShardRole::Replica;
    }
  }
  // The other servers' marks only: what this server emitted itself it never held, and a
  // re-emission it held (fenced meanwhile) must still go when it may emit again.
  for (auto it = markers_.lower_bound({map->epoch, 0});
       it != markers_.end() && it->first.first == map->epoch; ++it)
    if (it->first.second < map->shards)
      v.emitted_ms[it->first.second] = std::max(v.emitted_ms[it->first.second], it->second);
  return v;
}

void ClusterCoordinator::emitted(uint64_t epoch, const std::vector<uint32_t>& shards,
                                 int64_t interval_start_ms) {
  std::lock_guard lock(mu_);
  for (uint32_t shard : shards) {
    int64_t& ms = progress_.try_emplace({epoch, shard}, kNeverEmitted).first->second;
    ms = std::max(ms, interval_start_ms);
  }
}

Status ClusterCoordinator::write_map(etcd::Client& client, cluster::ShardMap next) {
  auto wrote = client.put_if(epoch_key(prefix_, next.epoch), cluster::to_json(next), 0);
  if (!wrote) return wrote.error();
  if (!wrote->succeeded) {  // another coordinator wrote it (or a key by hand): read next round
    log::info("cluster: map " + std::to_string(next.epoch) + " exists already; reading it at "
              "the next round");
    return Ok{};
  }
  log::info("cluster: wrote map " + std::to_string(next.epoch) + " (members " +
            joined(next.members) + ", " + std::to_string(next.shards) + " shards, " +
            std::to_string(next.replicas) + " replicas), in force from interval " +
            std::to_string(next.from_ms) + " ms");
  std::lock_guard lock(mu_);
  maps_.push_back(std::move(next));
  return Ok{};
}

void ClusterCoordinator::lost() {
  leadership_.lost();
  std::lock_guard lock(mu_);
  if (coordinating_) log::info("cluster: this server no longer coordinates (its lease is gone)");
  coordinating_ = false;
}

std::vector<cluster::ShardMap> ClusterCoordinator::maps() const {
  std::lock_guard lock(mu_);
  return maps_;
}

bool ClusterCoordinator::coordinating() const {
  std::lock_guard lock(mu_);
  return coordinating_;
}

nlohmann::json ClusterCoordinator::view_json(int64_t now_ms) const {
  std::lock_guard lock(mu_);
  nlohmann::json out;
  out["id"] = id_;
  out["prefix"] = prefix_;
  out["coordinator"] = coordinator_.empty() ? nlohmann::json() : nlohmann::json(coordinator_);
  out["coordinating"] = coordinating_;
  out["members"] = nlohmann::json::object();
  for (const auto& [id, value] : members_) out["members"][id] = value;
  out["maps"] = nlohmann::json::array();
  for (const auto& m : maps_)
    out["maps"].push_back({{"epoch", m.epoch},
                           {"from_ms", m.from_ms},
                           {"shards", m.shards},
                           {"replicas", m.replicas},
                           {"members", m.members}});
  const int64_t step = std::max<int64_t>(settings_.interval.count(), 1);
  const cluster::ShardMap* now = cluster::map_at(maps_, floor_to(now_ms, step));
  out["in_force"] = now ? nlohmann::json(now->epoch) : nlohmann::json();
  nlohmann::json held = nlohmann::json::array();
  uint32_t first = 0;
  if (now) {
    for (uint32_t shard = 0; shard < now->shards; ++shard) {
      if (!now->owns(id_, shard)) continue;
      held.push_back(shard);
      if (!now->owners[shard].empty() && now->members[now->owners[shard][0]] == id_) ++first;
    }
  }
  out["shards_held"] = std::move(held);
  out["first_replica_of"] = first;
  // The shards this server leads (holds the leader key of), by epoch, and of the map in
  // force, those it may emit now (fenced: server/shard_leadership.h).
  nlohmann::json leads = nlohmann::json::object();
  for (const auto& [epoch, shards] : leadership_.led()) leads[std::to_string(epoch)] = shards;
  out["leads"] = std::move(leads);
  uint32_t may_emit = 0;
  const auto steady_now = std::chrono::steady_clock::now();
  if (now)
    for (uint32_t shard = 0; shard < now->shards; ++shard)
      if (leadership_.may_emit(now->epoch, shard, steady_now)) ++may_emit;
  out["may_emit"] = may_emit;
  // How old this view is: etcd read this long ago (null: never), every third of lease_ttl
  // while etcd answers.
  out["read_ms_ago"] = last_round_ms_ ? nlohmann::json(now_ms - last_round_ms_) : nlohmann::json();
  out["error"] = last_error_.empty() ? nlohmann::json() : nlohmann::json(last_error_);
  return out;
}

CoordinatorThread::CoordinatorThread(ClusterCoordinator& coordinator,
                                     const ClusterMembership& membership,
                                     std::vector<etcd::Endpoint> endpoints,
                                     std::chrono::milliseconds call_deadline,
                                     std::chrono::milliseconds period,
                                     std::function<int64_t()> now_ms)
    : coordinator_(coordinator), membership_(membership),
      client_(std::move(endpoints), call_deadline), period_(period), now_ms_(std::move(now_ms)) {
  thread_ = std::thread([this] { run(); });
}

CoordinatorThread::~CoordinatorThread() {
  stop();
}

void CoordinatorThread::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CoordinatorThread::run() {
  name_this_thread("cluster-maps");
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, period_, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    const MembershipState state = membership_.state();
    if (state.registered) coordinator_.tick(client_, state.lease, now_ms_(), state.renewed_at);
    lock.lock();
  }
}

}  // namespace statherd::server
