// Which source a batch's samples belong to, beyond the identity the agent sent: the rules by
// which the server itself decides that a process counts whole, or continues a known one
// (declared in engine_impl.h).
#include "server/engine_impl.h"

namespace statherd::server {

// A process source (pid > 0, start time from the process) that the server has not seen and
// that started after the agent read its previous applied batch: every increment it has was
// made since, so none can have been counted. The agent marks such a source `fresh`, but the
// batch with that mark can be lost (held in memory while the spool's disk is full, then the
// agent stopped); this rule needs nothing from the agent's disk. A directory or endpoint view
// (pid -1) has the agent's first read as its start time, not a process start: never whole.
bool Engine::Impl::started_after(const SourceIdentity& id, int64_t read_ms) {
  return read_ms > 0 && id.pid > 0 && id.start_time_ms > read_ms;
}

// An mmstats v1 file read after its process died has no start time (/proc has none); when the
// agent that knew it was stopped meanwhile and could not keep it (a full disk), it arrives with
// start 0, or with the file's birth time in its place (`birth`, SourceSamples::
// start_is_file_birth). The live source of the same agent, host, app, pid and path is that
// process (one that started by the file's birth: a process creates its file): continue it,
// rather than baseline a new identity and lose its last increments. Unknown to the server, a
// birth-time identity is then judged by started_after like a process start. Linear in the
// sources, for the rare such source the server does not know.
const SourceIdentity* Engine::Impl::known_process_of(const SourceIdentity& id,
                                                      const std::string& agent,
                                                      bool birth) const {
  if (id.pid <= 0 || (id.start_time_ms != 0 && !birth) || source_index.count(id.key()))
    return nullptr;
  const SourceIdentity* found = nullptr;
  for (const SourceState& s : sources) {
    if (!s.alive || s.agent_id != agent || s.id.pid != id.pid || s.id.start_time_ms == 0 ||
        s.id.path != id.path || s.id.app != id.app || s.id.host != id.host)
      continue;
    if (birth && s.id.start_time_ms > id.start_time_ms) continue;  // started after the file
    if (!found || s.id.start_time_ms > found->start_time_ms) found = &s.id;  // the latest
  }
  return found;
}

}  // namespace statherd::server
