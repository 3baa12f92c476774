#include "server/sinks/remote_write_series.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <span>

namespace statherd::server {

namespace {

// Shortest round trip ("0.99"), as the text exposition spells a quantile.
std::string quantile_text(double q) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, q);
  return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

void insert_sorted(std::vector<RwLabel>& labels, RwLabel label) {
  auto at = std::lower_bound(labels.begin(), labels.end(), label.name,
                             [](const RwLabel& l, const std::string& n) { return l.name < n; });
  labels.insert(at, std::move(label));
}

std::vector<RwLabel> named(const std::vector<RwLabel>& base, std::string name) {
  std::vector<RwLabel> labels = base;
  insert_sorted(labels, {"__name__", std::move(name)});
  return labels;
}

void add_sample(std::vector<RwSeries>& into, const std::vector<RwLabel>& labels, double value,
                int64_t ts_ms) {
  RwSeries& s = into.emplace_back();
  s.labels = labels;
  s.samples.push_back({value, ts_ms});
}

}  // namespace

RwSeriesBuilder::Entry& RwSeriesBuilder::entry_for(const RollupRecord& r) {
  auto [it, fresh] = cache_.try_emplace(r.key->id);
  Entry& e = it->second;
  if (fresh) {
    for (const auto& [name, value] : prometheus_series_labels(*r.key))
      e.base.push_back({name, value});  // a std::map: sorted by name
  }
  if (fresh || e.kind != r.kind) {
    e.kind = r.kind;
    e.slots.clear();
    e.count_labels = e.sum_labels = {};
    if (r.kind == SeriesKind::Distribution) {
      const std::string family = prometheus_metric_name(r.key->metric, "");
      e.count_labels = named(e.base, family + "_count");
      e.sum_labels = named(e.base, family + "_sum");
    }
  }
  return e;
}

RwSeriesBuilder::Slot& RwSeriesBuilder::slot_for(Entry& e, const SeriesKey& key, size_t index,
                                                 std::string_view stat) {
  if (index < e.slots.size() && e.slots[index].stat == stat) return e.slots[index];
  for (Slot& s : e.slots)
    if (s.stat == stat) return s;
  PromTarget t = prometheus_target(e.kind, key.metric, stat);
  Slot& s = e.slots.emplace_back();
  s.stat = stat;
  s.role = t.role;
  if (t.role == PromRole::CounterTotal || t.role == PromRole::Gauge) {
    s.labels = named(e.base, std::move(t.family));
  } else if (t.role == PromRole::Quantile) {
    s.labels = named(e.base, prometheus_metric_name(key.metric, ""));
    insert_sorted(s.labels, {"quantile", quantile_text(t.quantile)});
  }
  return s;
}

void RwSeriesBuilder::add_record(const RollupRecord& r, const IntervalOutput& out,
                                 std::vector<RwSeries>& into) {
  Entry& e = entry_for(r);
  e.last_start_s = std::max(e.last_start_s, out.start_s);
  const int64_t ts = out.start_s * 1000;
  double count = 0, sum = NAN;
  const std::span<const Stat> stats = out.stats_of(r);
  for (size_t i = 0; i < stats.size(); ++i) {
    const Slot& slot = slot_for(e, *r.key, i, stats[i].name);
    const double v = stats[i].value;
    switch (slot.role) {
      case PromRole::CounterTotal:
        if (std::isfinite(r.count_total)) e.count_total = r.count_total;
        else if (std::isfinite(v) && v > 0) e.count_total += v;
        add_sample(into, slot.labels, e.count_total, ts);
        break;
      case PromRole::SummaryCount: count = v; break;
      case PromRole::SummarySum: sum = v; break;
      case PromRole::Gauge:
      case PromRole::Quantile: add_sample(into, slot.labels, v, ts); break;
    }
  }
  if (r.kind != SeriesKind::Distribution) return;
  if (std::isfinite(r.count_total)) {
    e.count_total = r.count_total;
    if (std::isfinite(r.sum_total)) e.sum_total = r.sum_total;
  } else {
    if (std::isfinite(count) && count > 0) e.count_total += count;
    if (std::isfinite(sum)) e.sum_total += sum;
  }
  add_sample(into, e.sum_labels, e.sum_total, ts);
  // As the summary's sample_count on /metrics: a whole number.
  add_sample(into, e.count_labels, static_cast<double>(std::llround(e.count_total)), ts);
}

void RwSeriesBuilder::build(const IntervalOutput& out, std::vector<RwSeries>& into) {
  into.reserve(into.size() + out.stats.size());
  for (const RollupRecord& r : out.records)
    if (r.key) add_record(r, out, into);
  const int64_t oldest_kept =
      out.start_s - expire_intervals_ * std::max<int64_t>(1, out.interval_s);
  std::erase_if(cache_, [&](const auto& entry) { return entry.second.last_start_s < oldest_kept; });
}

}  // namespace statherd::server
