#include "server/retention.h"

#include "common/yaml_util.h"

namespace statherd::server {

namespace {

constexpr size_t kMaxTiers = 8;
constexpr const char* kSyntaxHint =
    "use Graphite's retention syntax, PRECISION:RETENTION finest first, e.g. 10s:6h,5m:7d "
    "(units s, m, h, d; a duration like 10s), or one duration such as 1h for one tier at the "
    "interval";

std::string seconds_text(int64_t s) {
  if (s % 86400 == 0) return std::to_string(s / 86400) + "d";
  if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

Result<int64_t> whole_seconds(std::string_view text, std::string_view whole) {
  auto d = parse_duration(text);
  if (!d || d->count() % 1000 != 0)
    return make_error("memory retention '" + std::string(whole) + "': '" + std::string(text) +
                          "' is not a duration of whole seconds",
                      kSyntaxHint);
  return d->count() / 1000;
}

std::string tier_text(const RetentionTier& t) {
  return seconds_text(t.precision_s) + ":" + seconds_text(t.retention_s);
}

// The problem with tier i of `tiers` at interval_s (precisions resolved), or empty.
std::string tier_problem(const std::vector<RetentionTier>& tiers, size_t i, int64_t interval_s) {
  const RetentionTier& t = tiers[i];
  const std::string name = "tier " + tier_text(t) + ": ";
  if (t.precision_s % interval_s != 0)
    return name + "precision is not a multiple of the interval " + seconds_text(interval_s);
  if (t.retention_s < t.precision_s) return name + "retention is shorter than its precision";
  if (t.retention_s / t.precision_s > kMaxPointsPerTier)
    return name + "holds " + std::to_string(t.retention_s / t.precision_s) +
           " points, over the limit of " + std::to_string(kMaxPointsPerTier) +
           " points per path in one tier";
  if (i == 0) return {};
  const RetentionTier& prev = tiers[i - 1];
  if (t.precision_s <= prev.precision_s || t.precision_s % prev.precision_s != 0)
    return name + "precision is not a multiple of the previous tier's (" +
           seconds_text(prev.precision_s) + ")";
  if (t.retention_s <= prev.retention_s)
    return name + "retention is not longer than the previous tier's (" +
           seconds_text(prev.retention_s) + ")";
  if (prev.retention_s < t.precision_s)
    return name + "the previous tier keeps less than one of its points (" +
           seconds_text(prev.retention_s) + ")";
  return {};
}

}  // namespace

Result<std::vector<RetentionTier>> parse_retention(std::string_view text) {
  std::vector<RetentionTier> tiers;
  if (text.empty()) return tiers;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view part =
        text.substr(start, comma == std::string_view::npos ? text.size() - start : comma - start);
    size_t colon = part.find(':');
    RetentionTier tier;
    if (colon == std::string_view::npos) {
      if (text.find(',') != std::string_view::npos)
        return make_error("memory retention '" + std::string(text) + "': tier '" +
                              std::string(part) + "' has no PRECISION:",
                          kSyntaxHint);
      auto r = whole_seconds(part, text);
      if (!r) return r.error();
      tier.retention_s = *r;
    } else {
      auto p = whole_seconds(part.substr(0, colon), text);
      if (!p) return p.error();
      auto r = whole_seconds(part.substr(colon + 1), text);
      if (!r) return r.error();
      tier = {*p, *r};
    }
    tiers.push_back(tier);
    if (tiers.size() > kMaxTiers)
      return make_error("memory retention '" + std::string(text) + "' has more than " +
                            std::to_string(kMaxTiers) + " tiers",
                        kSyntaxHint);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return tiers;
}

Result<std::vector<RetentionTier>> resolve_retention(std::string_view text, int64_t interval_s) {
  interval_s = std::max<int64_t>(1, interval_s);
  auto parsed = parse_retention(text);
  if (!parsed) return parsed.error();
  std::vector<RetentionTier> tiers = std::move(*parsed);
  if (tiers.empty()) return default_retention(interval_s);
  for (RetentionTier& t : tiers)
    if (t.precision_s == 0) t.precision_s = interval_s;
  for (size_t i = 0; i < tiers.size(); ++i) {
    if (std::string problem = tier_problem(tiers, i, interval_s); !problem.empty())
      return make_error(
          "memory retention '" + std::string(text) + "': " + problem,
          "at interval " + seconds_text(interval_s) + " each precision is a multiple of " +
              seconds_text(interval_s) + " and of the tier before, each retention longer than "
              "the one before and at most " + std::to_string(kMaxPointsPerTier) +
              " points a tier, e.g. " + retention_text(default_retention(interval_s)));
  }
  return tiers;
}

std::vector<RetentionTier> default_retention(int64_t interval_s) {
  const int64_t i = std::max<int64_t>(1, interval_s);
  constexpr int64_t kHour = 3600, kDay = 86400;
  if (i < 10 && 10 % i == 0) return {{i, kHour}, {10, 6 * kHour}, {300, 7 * kDay}};
  const int64_t coarse = (300 + i - 1) / i * i;
  if (coarse == i) return {{i, 7 * kDay}};
  return {{i, 6 * kHour}, {coarse, 7 * kDay}};
}

std::string retention_text(const std::vector<RetentionTier>& tiers) {
  std::string out;
  for (const RetentionTier& t : tiers) out += (out.empty() ? "" : ",") + tier_text(t);
  return out;
}

}  // namespace statherd::server
