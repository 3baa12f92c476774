// The engine's pipelined ingest (engine.h): admit() on the ingest thread, apply_admitted() and
// the checkpoint on the pipeline thread, and the stats other threads read without the lock.
#include <algorithm>
#include <new>

#include "common/log.h"
#include "server/engine.h"
#include "server/engine_impl.h"

namespace statherd::server {

void Engine::Impl::publish() {
  std::lock_guard<std::mutex> g(stats_mu);
  published = st;
  published.wal_bytes = wal.bytes();
}

void Engine::Impl::mirror_seq(const std::string& agent, uint64_t seq) {
  std::lock_guard<std::mutex> g(stats_mu);
  SeqMirror& m = seqs[agent];
  m.applied = seq;
  m.durable = std::max(m.durable, seq);
  m.admitted = std::max(m.admitted, seq);
}

// After recovery, or when agents expired: only what the engine knows. A batch still being
// logged then may be logged twice; apply_admitted() skips the second copy.
void Engine::Impl::rebuild_seq_mirror() {
  std::lock_guard<std::mutex> g(stats_mu);
  seqs.clear();
  for (const auto& [id, a] : agents) seqs.emplace(id, SeqMirror{a.last_seq, a.last_seq, a.last_seq});
}

Admission Engine::admit(std::string_view body, int64_t now_ms) {
  Impl& m = *impl_;
  Admission a;
  std::optional<Batch> batch = decode_for_ingest(body, m.opt.wire_limits, a.outcome);
  if (!batch) {
    ++m.front_rejected;
    return a;
  }
  {
    std::lock_guard<std::mutex> g(m.stats_mu);
    Impl::SeqMirror& seq = m.seqs[batch->agent_id];
    if (batch->seq <= seq.durable) {
      ++m.front_duplicates;
      a.outcome.duplicate = true;
      a.outcome.message = "duplicate batch (seq " + std::to_string(batch->seq) + " <= " +
                          std::to_string(seq.durable) + "), already logged";
      return a;
    }
    if (batch->seq <= seq.admitted) {
      a.outcome.http_status = 503;
      a.outcome.message = "batch seq " + std::to_string(batch->seq) +
                          " is being logged (a resend of a batch not answered yet); retry later";
      return a;
    }
    seq.admitted = batch->seq;
  }
  a.outcome.samples = batch->sample_count();
  a.outcome.message = "ok";
  if (!m.opt.state_dir.empty()) a.record = frame_wal_record(now_ms, body);
  a.batch = std::make_shared<const Batch>(std::move(*batch));
  return a;
}

void Engine::logged(const Batch& batch, bool ok) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> g(m.stats_mu);
  auto it = m.seqs.find(batch.agent_id);
  if (it == m.seqs.end()) return;  // forgotten meanwhile (agents expired): nothing to undo
  Impl::SeqMirror& seq = it->second;
  if (ok) seq.durable = std::max(seq.durable, batch.seq);
  else if (seq.admitted == batch.seq) seq.admitted = std::max(seq.applied, seq.durable);
}

void Engine::apply_admitted(const Batch& batch, int64_t now_ms) {
  Impl& m = *impl_;
  Locked lock(m);
  auto agent = m.agents.find(batch.agent_id);
  if (agent != m.agents.end() && batch.seq <= agent->second.last_seq) {
    ++m.st.duplicates;  // logged twice (a retry that overtook the first one's apply)
    agent->second.last_seen_ms = now_ms;
    return;
  }
  try {
    m.apply_batch(batch, now_ms);
  } catch (const std::exception& e) {  // in the WAL: a restart replays (or quarantines) it
    log::error(std::string("batch logged but not fully applied: ") + e.what() +
               "\nhint: lower limits.max_samples_per_batch or limits.max_series_*");
  }
}

uint64_t Engine::take_wal() {
  Impl& m = *impl_;
  Locked lock(m);
  m.wal_external = true;
  m.front_wal_bytes = m.wal.bytes();
  const uint64_t number = m.wal.number();
  m.wal.close();
  return number;
}

bool Engine::snapshot_due(int64_t now_ms, uint64_t wal_bytes) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  return !m.opt.state_dir.empty() &&
         (now_ms - m.last_snapshot_ms >= m.opt.snapshot_every.count() || wal_bytes >= m.opt.snapshot_wal_bytes);
}

Status Engine::snapshot_at(uint64_t next_wal, int64_t now_ms) {
  Impl& m = *impl_;
  Locked lock(m);
  m.last_snapshot_ms = now_ms;  // a failure is retried at the next due time, not every flush
  return m.write_snapshot_to(now_ms, next_wal, false);
}

void Engine::postpone_snapshot(int64_t now_ms) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  m.last_snapshot_ms = now_ms;
}

void Engine::note_wal(bool ok, uint64_t bytes) {
  Impl& m = *impl_;
  m.front_wal_ok = ok;
  m.front_wal_bytes = bytes;
  if (!ok) ++m.front_wal_failures;
}

}  // namespace statherd::server
