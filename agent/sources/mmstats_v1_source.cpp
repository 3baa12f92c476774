// MmstatsV1Source: discovers mmstats v1 files by glob, keeps them mapped between scrapes, and
// turns their fields into samples. Format and defaults: mmstats_v1.h. Discovery, the per-path
// table (fresh, changed, last read of a dead process), mapping and the guarded copies are the
// shared ones of stat_file_set.h and mapped_stat_file.h; this file holds the mmstats policy.
//
// Hazards handled here:
// - A file replaced under the same name (new inode or size) is unmapped and mapped again.
// - A writer that truncates the file while it is mapped would make our page reads SIGBUS (the
//   original writer creates files with O_TRUNC + ftruncate; a restarted process reuses its file
//   name). The stat() of every scrape notices a size change and remaps first; a truncation
//   between that stat() and the read is caught by guarded_read (agent/mapped_guard.h; the
//   guarded copies are in mmstats_v1_copy.cpp): the file is a SourceError for this scrape,
//   unmapped, and mapped again next scrape.
// - A dead pid (no <proc_root>/<pid>) gets its file read one last time; after that the file is
//   unmapped and only reported again if its inode, size or mtime changes. If the pid died
//   before this agent first saw it alive, the start time comes from the start times a previous
//   agent kept (options.start_times_file, start_time_memory.h), so the identity is unchanged.
// - A pid reused within one scrape interval by a process that recreates the same file name is
//   not noticed as a new process (its counters restarting lower reads as a reset on the server).
// - One-shot mode (--once) maps nothing: each file is copied with pread() and a second copy must
//   match it over the fields (the torn-read rule), else that file is mapped and read as above.
//   Layout, names and kinds carry over from the previous file while its header bytes match.
// - What is opened at all (regular files with one link, no symlink, no FIFO or device, at most
//   max_file_bytes) is decided by stat_file.h, both at the lstat() of every scrape and at open.
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "agent/sources/mmstats_v1.h"
#include "agent/sources/mmstats_v1_source_impl.h"
#include "common/log.h"

namespace statherd::agent {
namespace {

// What read_mmstats_v1_value says of a field that never read the same twice.
Error torn_field_error(const MmstatsFieldLayout& field) {
  return make_error("mmstats v1: value kept changing over " +
                    std::to_string(kMmstatsMaxReadTries) + " reads (torn write) at offset " +
                    std::to_string(field.wb_offset));
}

Error empty_mmstats_file_error() {
  return make_error("mmstats v1: empty file (0 bytes)",
                    "the writer may be starting; read again next scrape");
}

}  // namespace

// visit() has just lstat()ed and checked it; copy_consistent's fallback has just opened it.
Status MmstatsV1Source::Impl::map_file(MmstatsMappedFile& f) {
  f.unmap();
  return f.map.map(AT_FDCWD, f.path.c_str(), {options.max_file_bytes, 1, empty_mmstats_file_error});
}

// Layout, sample names and kinds, reusing f's capacity (the --once path reuses one f).
Status MmstatsV1Source::Impl::refresh_layout(MmstatsMappedFile& f, std::span<const uint8_t> bytes) {
  // Also reuses the previous file's layout in --once (files of one app share theirs).
  if (f.layout_ok && mmstats_v1_layout_still_valid(bytes, f.layout)) return Ok{};
  return parse_layout(f, bytes);
}

Status MmstatsV1Source::Impl::parse_layout(MmstatsMappedFile& f, std::span<const uint8_t> bytes) {
  f.layout_ok = false;
  if (auto st = parse_mmstats_v1_layout_into(bytes, f.layout); !st) return st;
  const size_t n = f.layout.fields.size();
  f.sample_names.resize(n);
  f.kinds.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& field = f.layout.fields[i];
    std::string& label = f.sample_names[i];
    label.clear();
    append_mmstats_v1_label(bytes, field, label);
    f.kinds[i] = field.kind == MmstatsValueKind::Text ? Kind::Text
                 : field.kind == MmstatsValueKind::Number && counters.matches(label)
                     ? Kind::Counter
                     : Kind::Gauge;
    if (f.name.pid < 0 && label == "sys.pid") {  // a file not named {CMD}-{PID}-{TID}
      double pid = 0;
      if (read_mmstats_v1_value(bytes, field, &pid, nullptr) && pid > 0)
        f.name.pid = static_cast<int64_t>(pid);
    }
  }
  f.layout_ok = true;
  return Ok{};
}

// Fills ss (reusing its capacity) from f; false (and an error) if f has no readable layout.
bool MmstatsV1Source::Impl::read_file(MmstatsMappedFile& f, bool fresh, int64_t now_ms,
                                      SourceSamples& ss, std::vector<SourceError>& errors) {
  const bool mapped = f.mapped();
  if (auto st = mapped ? snapshot_mapped(f) : refresh_layout(f, f.bytes()); !st) {
    errors.push_back({f.path, st.error().to_string()});
    return false;
  }
  const std::span<const uint8_t> bytes = mapped ? std::span<const uint8_t>(image.data(), f.size())
                                                : f.bytes();
  ss.id.host = options.host;
  ss.id.app = f.name.app;
  ss.id.pid = f.name.pid;
  ss.id.start_time_ms = f.start_time_ms;
  ss.id.path = f.path;
  ss.fresh = file_is_fresh(fresh, f.start_time_ms, options.fresh_if_started_after_ms);
  ss.samples.reserve(f.layout.fields.size());
  size_t torn = 0, kept = 0;
  std::string first_torn;
  for (size_t i = 0; i < f.layout.fields.size(); ++i) {
    double number = 0;
    const bool is_text = f.kinds[i] == Kind::Text;
    std::string* text = is_text ? &scratch_text : nullptr;
    Status st = mapped && torn_fields[i]
                    ? Status(torn_field_error(f.layout.fields[i]))
                    : read_mmstats_v1_value_from_copy(bytes, f.layout.fields[i], &number, text);
    if (!st) {
      if (torn++ == 0) first_torn = f.sample_names[i] + ": " + st.error().message;
      continue;
    }
    Sample& s = kept < ss.samples.size() ? ss.samples[kept] : ss.samples.emplace_back();
    ++kept;
    s.name = f.sample_names[i];  // assignment keeps a reused Sample's capacity
    s.tags.clear();
    s.kind = f.kinds[i];
    s.timestamp_ms = now_ms;
    s.value = is_text ? 0 : number;
    if (is_text) s.text = scratch_text;
    else s.text.clear();
    s.dist.reset();
  }
  ss.samples.resize(kept);
  if (torn > 0)
    errors.push_back({f.path, std::to_string(torn) + " field(s) skipped this scrape, first " +
                                  first_torn});
  return true;
}

bool MmstatsV1Source::Impl::visit(const std::string& path, int64_t now_ms, SourceSamples& ss,
                                  std::vector<SourceError>& errors) {
  StatFileVisit v;
  MmstatsMappedFile* file = files.visit(path, options.max_file_bytes, v, errors);
  if (!file) return false;  // vanished since the listing, or refused (reported)
  MmstatsMappedFile& f = *file;
  if (v.inserted || v.replaced() || v.resized()) {  // a new file, or one rewritten: start over
    f.unmap();
    f.start_time_ms = 0;
    f.start_is_birth = false;
    f.name = parse_mmstats_file_name(path);
  }
  const bool alive = f.name.pid < 0 || processes.alive(f.name.pid);
  if (!alive && f.final_read_done && !v.changed) return false;  // dead and already reported
  if (alive && f.start_time_ms == 0 && f.name.pid >= 0) {
    f.start_time_ms = std::max<int64_t>(0, processes.start_ms(f.name.pid));  // -1: just exited
    start_times.remember(path, f.name.pid, v.now.inode, f.start_time_ms);
  }
  // Dead before we ever saw it alive: the identity an earlier agent sent, if any.
  if (!alive && f.start_time_ms == 0 && f.name.pid >= 0)
    f.start_time_ms = start_times.recall(path, f.name.pid, v.now.inode);
  start_times.keep(path);
  if (!f.mapped()) {
    if (auto st = map_file(f); !st) {
      f.final_read_done = !alive;
      errors.push_back({path, st.error().to_string()});
      return false;
    }
  }
  // Dead, and no start time known (not even remembered: an earlier agent could not save it on
  // a full disk): the file's birth time stands in, marked so, and the server decides from what
  // it applied (common/sample.h, start_is_file_birth).
  if (!alive && f.start_time_ms == 0 && f.name.pid >= 0) {
    f.start_time_ms = file_birth_ms(path);
    f.start_is_birth = f.start_time_ms > 0;
  }
  const bool read = read_file(f, v.fresh, now_ms, ss, errors);
  if (f.start_is_birth) {
    ss.start_is_file_birth = true;
    ss.fresh = v.fresh;  // not from the birth time: the server decides (engine_identity.cpp)
  }
  f.finish_read(alive);  // a dead process's file: its last read, then unmapped
  return read;
}

bool MmstatsV1Source::Impl::visit_one_shot(const std::string& path, int64_t now_ms,
                                           SourceSamples& ss, std::vector<SourceError>& errors) {
  MmstatsMappedFile& f = copied_file;  // keeps the previous file's layout, names and kinds
  f.path = path;
  f.name = parse_mmstats_file_name(path);
  if (f.name.pid < 0) f.layout_ok = false;  // refresh_layout takes the pid from sys.pid
  const StatFile file = opener.open(path, options.max_file_bytes);
  if (!file.ok()) {
    // vanished: deleted between the directory scan and now
    if (!file.vanished()) errors.push_back({path, file.error().to_string()});
    return false;
  }
  const Status copied = copy_consistent(f, file);
  if (!copied) {
    errors.push_back({path, copied.error().to_string()});
    return false;
  }
  const bool read = read_file(f, false, now_ms, ss, errors);
  if (f.mapped()) f.unmap();
  else f.copied = {};  // the layout stays: the next file probably has the same one
  return read;
}

MmstatsV1Source::MmstatsV1Source(MmstatsV1Options options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

MmstatsV1Source::~MmstatsV1Source() = default;

std::string MmstatsV1Source::describe() const {
  std::string d = "mmstats_v1";
  for (const auto& g : impl_->options.globs) d += " " + g;
  return d;
}

void MmstatsV1Source::scrape(int64_t now_ms, ScrapeReport& out) {
  scrape_each(
      now_ms,
      [&out](SourceSamples& ss) {
        out.sources.push_back(std::move(ss));
        return true;
      },
      out.errors);
}

void MmstatsV1Source::scrape_each(int64_t now_ms, const SourceSamplesVisitor& on_source,
                                  std::vector<SourceError>& errors) {
  Impl& s = *impl_;
  s.files.begin_scrape();
  s.processes.begin_scrape();
  SourceSamples ss;
  for (const auto& path : list_stat_files(s.options.globs)) {
    const bool read = s.options.one_shot ? s.visit_one_shot(path, now_ms, ss, errors)
                                         : s.visit(path, now_ms, ss, errors);
    if (read && !on_source(ss)) break;
  }
  if (!s.options.one_shot) {
    s.files.end_scrape();
    s.start_times.save();
  }
}

void MmstatsV1Source::set_fresh_if_started_after_ms(int64_t ms) {
  impl_->options.fresh_if_started_after_ms = ms;
}

size_t MmstatsV1Source::mapped_file_count() const { return impl_->files.mapped_count(); }

}  // namespace statherd::agent
