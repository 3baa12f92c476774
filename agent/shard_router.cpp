#include "agent/shard_router.h"

#include <algorithm>
#include <map>

namespace statherd::agent {

void ShardRouter::set_maps(std::vector<cluster::ShardMap> maps) {
  std::sort(maps.begin(), maps.end(),
            [](const cluster::ShardMap& a, const cluster::ShardMap& b) { return a.epoch < b.epoch; });
  maps_ = std::move(maps);
}

const cluster::ShardMap& ShardRouter::map_for(int64_t timestamp_ms) const {
  if (const cluster::ShardMap* m = cluster::map_at(maps_, timestamp_ms)) return *m;
  return maps_.front();  // older than every map: the first map's (as the servers count it)
}

Result<std::vector<RoutedBatch>> ShardRouter::split(const Batch& batch) const {
  if (maps_.empty())
    return make_error("no shard map yet: the batch waits until the agent has read one");
  std::map<std::string, Batch> by_server;
  auto part_for = [&](const std::string& server) -> Batch& {
    auto [it, fresh] = by_server.try_emplace(server);
    if (fresh) {
      it->second.agent_id = batch.agent_id;
      it->second.seq = batch.seq;
      it->second.sent_ms = batch.sent_ms;
      it->second.errors = batch.errors;  // every server shows the agent's source errors
    }
    return it->second;
  };
  for (const SourceSamples& source : batch.sources) {
    // This source's part in each server's batch, made when its first sample goes there.
    std::map<std::string, SourceSamples*> parts;
    for (const Sample& sample : source.samples) {
      const cluster::ShardMap& map = map_for(sample.timestamp_ms);
      const uint32_t shard =
          cluster::shard_of(cluster::series_hash(source.id.app, sample.name, sample.tags), map.shards);
      for (uint32_t owner : map.owners[shard]) {
        const std::string& server = map.members[owner];
        SourceSamples*& part = parts[server];
        if (!part) {
          Batch& b = part_for(server);
          SourceSamples& s = b.sources.emplace_back();
          s.id = source.id;
          s.fresh = source.fresh;
          s.start_is_file_birth = source.start_is_file_birth;
          part = &s;
        }
        part->samples.push_back(sample);
      }
    }
  }
  std::vector<RoutedBatch> out;
  out.reserve(by_server.size());
  for (auto& [server, b] : by_server) out.push_back({server, std::move(b)});
  return out;
}

namespace {

// source key \0 name \0 (tag key \0 value \0)*
std::string series_key(const std::string& source_key, const Sample& s) {
  std::string key = source_key;
  key.push_back('\0');
  key += s.name;
  for (const auto& [k, v] : s.tags) {
    key.push_back('\0');
    key += k;
    key.push_back('\0');
    key += v;
  }
  return key;
}

}  // namespace

void CounterMemory::apply(Batch& batch) {
  ++scrape_;
  for (SourceSamples& source : batch.sources) {
    const std::string source_key = source.id.key();
    for (Sample& s : source.samples) {
      if (s.kind != Kind::Counter) continue;
      auto [it, added] = last_.try_emplace(series_key(source_key, s));
      if (!added && std::isfinite(it->second.value) && it->second.value >= 0)
        s.previous = it->second.value;
      it->second.value = s.value;
      it->second.scrape = scrape_;
    }
  }
  std::erase_if(last_, [&](const auto& e) { return scrape_ - e.second.scrape >= forget_after_; });
}

}  // namespace statherd::agent
