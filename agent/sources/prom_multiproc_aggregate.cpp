// PromSeriesTable: folds prometheus_client .db entries into output series (rules in the header).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>

#include "agent/sources/prom_multiproc_aggregate.h"

namespace statherd::agent {
namespace {

// Python's float() of an `le` label: "+Inf", "inf", "1.0", "0.005" ...
bool parse_le(const std::string& text, double& out) {
  std::string_view t = text;
  while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  bool negative = false;
  if (!t.empty() && (t.front() == '+' || t.front() == '-')) {
    negative = t.front() == '-';
    t.remove_prefix(1);
  }
  std::string lower(t);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "inf" || lower == "infinity") {
    out = negative ? -INFINITY : INFINITY;
    return true;
  }
  if (lower == "nan") return false;  // a NaN bound cannot be ordered
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  if (ec != std::errc() || end != t.data() + t.size()) return false;
  if (negative) out = -out;
  return true;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(),
                                                suffix) == 0;
}

void append_key_part(std::string& key, std::string_view part) {
  key.append(part);
  key.push_back('\0');
}

std::string series_key(char type, const std::string& name, const Tags& tags) {
  std::string key(1, type);
  append_key_part(key, name);
  for (const auto& [k, v] : tags) {
    append_key_part(key, k);
    append_key_part(key, v);
  }
  return key;
}

Tags without(const Tags& tags, std::string_view label) {
  Tags out;
  for (const auto& t : tags)
    if (t.first != label) out.push_back(t);
  return out;
}

}  // namespace

uint32_t PromSeriesTable::series_for(std::string key, std::string name, Tags tags, Op op) {
  auto [it, inserted] = index_.try_emplace(std::move(key), static_cast<uint32_t>(series_.size()));
  if (inserted) {
    Series s;
    s.name = std::move(name);
    s.tags = std::move(tags);
    s.op = op;
    series_.push_back(std::move(s));
  }
  return it->second;
}

PromEntryTarget PromSeriesTable::histogram_target(const PromDbKey& key) {
  auto le = std::find_if(key.labels.begin(), key.labels.end(),
                         [](const auto& l) { return l.first == "le"; });
  if (le == key.labels.end()) {
    if (ends_with(key.sample, "_sum")) {
      Tags tags = key.labels;
      uint32_t s = series_for(series_key('h', key.metric, tags), key.metric, tags, Op::Histogram);
      return {s, PromEntryTarget::kSum};
    }
    if (ends_with(key.sample, "_count")) return {0, PromEntryTarget::kIgnore};  // recomputed
    return {series_for(series_key('o', key.sample, key.labels), key.sample, key.labels,
                       Op::Other), PromEntryTarget::kValue};
  }
  double bound = 0;
  if (!parse_le(le->second, bound)) return {0, PromEntryTarget::kIgnore};
  Tags tags = without(key.labels, "le");
  uint32_t s = series_for(series_key('h', key.metric, tags), key.metric, tags, Op::Histogram);
  Series& series = series_[s];
  auto found = std::find(series.bounds.begin(), series.bounds.end(), bound);
  size_t id = static_cast<size_t>(found - series.bounds.begin());
  if (found == series.bounds.end()) {
    series.bounds.push_back(bound);
    series.counts.push_back(0);
    series.retired_counts.push_back(0);
  }
  return {s, static_cast<int32_t>(id)};
}

PromEntryTarget PromSeriesTable::target_for(const PromDbFileName& file, const PromDbKey& key) {
  if (file.type == "counter")
    return {series_for(series_key('c', key.sample, key.labels), key.sample, key.labels,
                       Op::Counter), PromEntryTarget::kValue};
  if (file.type == "histogram") return histogram_target(key);
  if (file.type == "summary") {
    const bool count = ends_with(key.sample, "_count"), sum = ends_with(key.sample, "_sum");
    if (count || sum) {
      uint32_t s = series_for(series_key('s', key.metric, key.labels), key.metric, key.labels,
                              Op::Summary);
      return {s, count ? PromEntryTarget::kCount : PromEntryTarget::kSum};
    }
  }
  if (file.type != "gauge")
    return {series_for(series_key('o', key.sample, key.labels), key.sample, key.labels,
                       Op::Other), PromEntryTarget::kValue};
  const std::string& m = file.mode;
  if (m == "all" || m == "liveall" || m.empty()) {
    Tags tags = without(key.labels, "pid");
    auto at = std::lower_bound(tags.begin(), tags.end(), std::string("pid"),
                               [](const auto& t, const std::string& k) { return t.first < k; });
    tags.insert(at, {"pid", file.pid});
    return {series_for(series_key('g', key.sample, tags), key.sample, tags, Op::GaugeSet),
            PromEntryTarget::kValue};
  }
  Op op = Op::GaugeMostRecent;
  if (m == "min" || m == "livemin") op = Op::GaugeMin;
  else if (m == "max" || m == "livemax") op = Op::GaugeMax;
  else if (m == "sum" || m == "livesum") op = Op::GaugeSum;
  Tags tags = without(key.labels, "pid");
  return {series_for(series_key('a', key.sample, tags), key.sample, tags, op),
          PromEntryTarget::kValue};
}

Result<PromEntryTarget> PromSeriesTable::resolve(const PromDbFileName& file,
                                                 std::string_view json) {
  scratch_.assign(file.type);
  scratch_.push_back('\0');
  scratch_.append(file.mode);
  scratch_.push_back('\0');
  const bool per_pid = file.type == "gauge" &&
                       (file.mode == "all" || file.mode == "liveall" || file.mode.empty());
  if (per_pid) scratch_.append(file.pid);
  scratch_.push_back('\0');
  scratch_.append(json);
  if (auto it = cache_.find(scratch_); it != cache_.end()) return it->second;
  auto key = parse_prom_db_key(json);
  if (!key) return key.error();
  PromEntryTarget t = target_for(file, *key);
  cache_.emplace(scratch_, t);
  return t;
}

void PromSeriesTable::begin_collection() {
  for (Series& s : series_) {
    s.seen = s.retired;
    s.value = s.retired_value;
    s.sum = s.retired_sum;
    s.count = s.retired_count;
    s.timestamp = 0;
    std::copy(s.retired_counts.begin(), s.retired_counts.end(), s.counts.begin());
  }
}

void PromSeriesTable::apply_value(Series& s, double v, double ts) {
  switch (s.op) {
    case Op::GaugeMin:
      if (!s.seen || v < s.value) s.value = v;
      break;
    case Op::GaugeMax:
      if (!s.seen || v > s.value) s.value = v;
      break;
    case Op::GaugeSet: s.value = v; break;
    case Op::GaugeMostRecent:
      if (ts > s.timestamp) {  // emit() skips the series while no timestamp was > 0
        s.value = v;
        s.timestamp = ts;
      }
      break;
    default: s.value += v; break;
  }
}

void PromSeriesTable::retire(const PromEntryTarget& t, double value) {
  if (t.part == PromEntryTarget::kIgnore) return;
  Series& s = series_[t.series];
  if (s.op != Op::Counter && s.op != Op::Other && s.op != Op::Histogram && s.op != Op::Summary)
    return;
  s.retired = true;
  if (t.part >= 0) s.retired_counts[static_cast<size_t>(t.part)] += value;
  else if (t.part == PromEntryTarget::kValue) s.retired_value += value;
  else if (t.part == PromEntryTarget::kSum) s.retired_sum += value;
  else if (t.part == PromEntryTarget::kCount) s.retired_count += value;
}

void PromSeriesTable::emit_histogram(const Series& s, int64_t now_ms,
                                     std::vector<Sample>& out) const {
  auto dist = std::make_shared<Distribution>();
  dist->form = Distribution::Form::Buckets;
  std::vector<size_t> order(s.bounds.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s.bounds[a] < s.bounds[b]; });
  dist->bucket_upper_bounds.reserve(order.size());
  dist->bucket_counts.reserve(order.size());
  for (size_t id : order) {
    dist->bucket_upper_bounds.push_back(s.bounds[id]);
    dist->bucket_counts.push_back(s.counts[id]);
    dist->count += s.counts[id];
  }
  dist->sum = s.sum;
  Sample& sample = out.emplace_back();
  sample.name = s.name;
  sample.tags = s.tags;
  sample.kind = Kind::Distribution;
  sample.timestamp_ms = now_ms;
  sample.dist = std::move(dist);
}

void PromSeriesTable::emit(int64_t now_ms, std::vector<Sample>& out) const {
  for (const Series& s : series_) {
    if (!s.seen) continue;
    if (s.op == Op::GaugeMostRecent && s.timestamp <= 0) continue;
    if (s.op == Op::Histogram) {
      emit_histogram(s, now_ms, out);
      continue;
    }
    Sample& sample = out.emplace_back();
    sample.name = s.name;
    sample.tags = s.tags;
    sample.timestamp_ms = now_ms;
    if (s.op == Op::Summary) {
      auto dist = std::make_shared<Distribution>();
      dist->form = Distribution::Form::Summary;
      dist->count = s.count;
      dist->sum = s.sum;
      sample.kind = Kind::Distribution;
      sample.dist = std::move(dist);
      continue;
    }
    sample.kind = s.op == Op::Counter ? Kind::Counter : Kind::Gauge;
    sample.value = s.value;
  }
}

}  // namespace statherd::agent
