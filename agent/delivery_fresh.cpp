#include "agent/delivery_fresh.h"

#include <set>

namespace statherd::agent {

void FreshUntilAcked::on_built(uint64_t seq, std::vector<SourceSamples>& sources) {
  std::set<std::string> here;
  for (auto& ss : sources) {
    std::string key = ss.id.key();
    if (ss.fresh) waiting_.try_emplace(key, 0);
    auto it = waiting_.find(key);
    if (it == waiting_.end() || !here.insert(key).second) continue;
    ss.fresh = true;
    ++it->second;
    carried_[seq].push_back(std::move(key));
  }
  // A source gone from the scrapes and from every spooled batch needs no flag any more.
  std::erase_if(waiting_, [&](const auto& kv) { return kv.second == 0 && !here.count(kv.first); });
}

void FreshUntilAcked::on_acked(uint64_t seq) {
  auto it = carried_.find(seq);
  if (it == carried_.end()) return;
  for (const auto& key : it->second) waiting_.erase(key);
  carried_.erase(it);
}

void FreshUntilAcked::on_gone(uint64_t seq) {
  auto it = carried_.find(seq);
  if (it == carried_.end()) return;
  for (const auto& key : it->second)
    if (auto w = waiting_.find(key); w != waiting_.end() && w->second > 0) --w->second;
  carried_.erase(it);
}

void FreshUntilAcked::prune(const std::function<bool(uint64_t)>& spooled) {
  std::vector<uint64_t> gone;
  for (const auto& [seq, keys] : carried_)
    if (!spooled(seq)) gone.push_back(seq);
  for (uint64_t seq : gone) on_gone(seq);
}

}  // namespace statherd::agent
