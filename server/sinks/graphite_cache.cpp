#include "server/sinks/graphite_cache.h"

namespace statherd::server {

namespace {

bool same_rules(const GraphiteRules& a, const GraphiteRules& b) {
  if (a.rules().size() != b.rules().size()) return false;
  for (size_t i = 0; i < a.rules().size(); ++i) {
    if (a.rules()[i].kind != b.rules()[i].kind || a.rules()[i].pattern != b.rules()[i].pattern)
      return false;
  }
  return true;
}

}  // namespace

GraphiteSeriesCache::~GraphiteSeriesCache() {
  entries_.clear([](GraphiteSeries&) {});
}

void GraphiteSeriesCache::configure(Naming naming) {
  if (naming.prefix == naming_.prefix && naming.tags == naming_.tags &&
      same_rules(naming.rules, naming_.rules))
    return;
  entries_.clear([this](GraphiteSeries& s) { collisions_.leave(s); });
  naming_ = std::move(naming);
}

GraphiteSeries& GraphiteSeriesCache::series(const SeriesKey* key, SeriesKind kind) {
  bool made = false;
  GraphiteSeries& s = entries_.get(key->id, made);
  if (made) {
    s.key = SeriesKeyRef(key);
    s.kind = kind;
    s.path = graphite_series_path(*key, naming_.prefix, naming_.tags);
    collisions_.join(s);
  }
  return s;
}

const GraphiteSeries::Slot& GraphiteSeriesCache::find_or_add_slot(GraphiteSeries& s,
                                                                  std::string_view name) {
  for (const GraphiteSeries::Slot& slot : s.slots)
    if (names_.is(slot.stat, name)) return slot;
  GraphiteSeries::Slot slot;
  slot.stat = names_.intern(name);
  const std::string& component = names_.component(slot.stat);
  slot.passes =
      naming_.rules.empty() || naming_.rules.passes(s.path.dotted_with_stat(component));
  s.slots.push_back(slot);
  if (slot.passes) collisions_.check(s, s.slots.size() - 1, names_);
  return s.slots.back();
}

void GraphiteSeriesCache::end_emit() {
  entries_.end_emit([this](GraphiteSeries& s) { collisions_.leave(s); });
}

}  // namespace statherd::server
