// Keeps a source's `fresh` flag until the server has acknowledged a batch carrying it.
//
// A source is fresh in the one scrape that first sees it (it started since the previous scan):
// the server then counts its counters' whole value instead of baselining them. If that batch
// never arrives (quarantined, dropped from a full spool, or not written), the next batch would
// carry the source as not fresh and the server would baseline it: the increments before it
// would be lost. So every batch built while a fresh identity waits for an ack carries it fresh
// again. Harmless when the server already knows the source (a known source's new series count
// whole anyway). Not kept across agent restarts: the spooled batches keep their flags on disk.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/sample.h"

namespace statherd::agent {

class FreshUntilAcked {
 public:
  // Called for each batch as it is built: sets `fresh` on the sources still waiting and
  // remembers which of them batch `seq` carries.
  void on_built(uint64_t seq, std::vector<SourceSamples>& sources);
  // The server acknowledged batch `seq`: its sources are known there now.
  void on_acked(uint64_t seq);
  // Batch `seq` left (or never entered) the spool without an ack.
  void on_gone(uint64_t seq);
  // on_gone() for every remembered batch that `spooled` says is no longer in the spool.
  void prune(const std::function<bool(uint64_t)>& spooled);
  size_t waiting() const { return waiting_.size(); }

 private:
  std::map<std::string, size_t> waiting_;                 // identity key -> batches carrying it
  std::map<uint64_t, std::vector<std::string>> carried_;  // seq -> waiting identities in it
};

}  // namespace statherd::agent
