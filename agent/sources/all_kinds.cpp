// Every source kind the agent knows, one line each, in scrape order (Telegraf's
// plugins/inputs/all). Each kind describes itself in agent/sources/<kind>_kind.cpp.
#include "agent/source_registry.h"

namespace statherd::agent {

extern const SourceKind kMmstatsV1Kind, kStatherdV2Kind, kPromMultiprocKind, kScalesKind,
    kPrometheusKind;

const std::vector<const SourceKind*>& source_kinds() {
  static const std::vector<const SourceKind*> kinds = {
      &kMmstatsV1Kind,
      &kStatherdV2Kind,
      &kPromMultiprocKind,
      &kScalesKind,
      &kPrometheusKind,
  };
  return kinds;
}

}  // namespace statherd::agent
