#include "server/sinks/graphite_collisions.h"

#include "common/log.h"

namespace statherd::server {

namespace {

std::string describe_series(const GraphiteSeries& s, std::string_view stat) {
  const SeriesKey& k = *s.key;
  std::string out = std::string(series_kind_name(s.kind)) + " app '" + k.app + "'";
  if (k.level != Level::App) out += " host '" + k.host + "'";
  if (k.level == Level::Process) out += " pid " + std::to_string(k.pid);
  out += " metric '" + k.metric + "'";
  for (const auto& [tag, value] : k.tags) out += " tag '" + tag + "'='" + value + "'";
  out += " stat '" + std::string(stat) + "'";
  return out;
}

// Two keys of one series (the engine made a new key after dropping the old one, which is not
// idle yet): the same series, no collision. One name of two kinds is two series.
bool same_series(const GraphiteSeries& x, const GraphiteSeries& y) {
  const SeriesKey& a = *x.key;
  const SeriesKey& b = *y.key;
  return x.kind == y.kind && a.level == b.level && a.app == b.app && a.host == b.host &&
         a.pid == b.pid && a.metric == b.metric && a.tags == b.tags;
}

}  // namespace

void PathCollisions::join(GraphiteSeries& s) {
  auto [it, inserted] = holders_.try_emplace(std::string_view(s.path.text), &s);
  if (inserted) return;
  s.next_holder = it->second->next_holder;  // second in the list: the key's text stays valid
  it->second->next_holder = &s;
}

void PathCollisions::leave(GraphiteSeries& s) {
  auto it = holders_.find(std::string_view(s.path.text));
  if (it == holders_.end()) return;
  if (it->second == &s) {
    GraphiteSeries* next = s.next_holder;
    holders_.erase(it);  // the key viewed s's text: re-key on the next holder's
    if (next != nullptr) holders_.emplace(std::string_view(next->path.text), next);
  } else {
    for (GraphiteSeries* h = it->second; h != nullptr; h = h->next_holder) {
      if (h->next_holder != &s) continue;
      h->next_holder = s.next_holder;
      break;
    }
  }
  s.next_holder = nullptr;
}

bool PathCollisions::check(const GraphiteSeries& s, size_t slot, const GraphiteStatNames& names) {
  const uint32_t stat = s.slots[slot].stat;
  const uint32_t component = names.component_id(stat);
  for (size_t i = 0; i < s.slots.size(); ++i) {  // two stat names, one component
    if (i != slot && names.component_id(s.slots[i].stat) == component)
      return report(s, s, s.slots[i].stat, stat, names);
  }
  auto it = holders_.find(std::string_view(s.path.text));
  if (it == holders_.end()) return false;
  for (const GraphiteSeries* h = it->second; h != nullptr; h = h->next_holder) {
    if (h == &s || same_series(*h, s)) continue;
    for (const GraphiteSeries::Slot& other : h->slots)
      if (names.component_id(other.stat) == component)
        return report(*h, s, other.stat, stat, names);
  }
  return false;
}

bool PathCollisions::report(const GraphiteSeries& first, const GraphiteSeries& second,
                            uint32_t first_stat, uint32_t second_stat,
                            const GraphiteStatNames& names) {
  std::string path = second.path.with_stat(names.component(second_stat));
  if (reported_.size() >= kMaxRemembered || !reported_.insert(path).second) return false;
  ++total_;
  log::warn("graphite: two series sanitize to one path " + path + ": " +
            describe_series(first, names.name(first_stat)) + " and " +
            describe_series(second, names.name(second_stat)) +
            "; Carbon merges them\nhint: rename one of them (only A-Z a-z 0-9 _ - survive in a "
            "path component, everything else becomes _)");
  return true;
}

}  // namespace statherd::server
