#include "common/sample.h"

namespace statherd {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Counter: return "counter";
    case Kind::Gauge: return "gauge";
    case Kind::Distribution: return "distribution";
    case Kind::Text: return "text";
  }
  return "unknown";
}

std::string SourceIdentity::key() const {
  std::string k;
  k.reserve(host.size() + app.size() + path.size() + 48);
  k.append(host).push_back('\0');
  k.append(app).push_back('\0');
  k.append(std::to_string(pid)).push_back('\0');
  k.append(std::to_string(start_time_ms)).push_back('\0');
  k.append(path);
  return k;
}

bool Sample::operator==(const Sample& o) const {
  if (name != o.name || tags != o.tags || kind != o.kind || timestamp_ms != o.timestamp_ms ||
      text != o.text)
    return false;
  if (!(value == o.value || (value != value && o.value != o.value))) return false;
  if (previous != o.previous) return false;
  if (!dist || !o.dist) return !dist && !o.dist;
  return *dist == *o.dist;
}

}  // namespace statherd
