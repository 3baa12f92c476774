// StatherdV2Source: discovers statherd v2 files by glob, keeps them mapped between scrapes and
// turns their records into samples. Format: statherd_v2.h and docs/FORMAT.md. Discovery, the
// per-path table, mapping and the guarded copies are shared (stat_file_set.h,
// mapped_stat_file.h); this file holds the v2 decoding and liveness policy.
//
// Hazards handled here:
// - Records are immutable once below `used`, so their structure (name, tags, offsets) is parsed
//   once; when `used` grows only the new records are parsed. The file is remapped when the
//   scrape's lstat() shows it grew, or when `used` passes the end of the mapping.
// - The file is the process of the header's pid and start time. Each scrape reads
//   <proc_root>/<pid>/stat: if the pid is gone, or its start time differs from the header's by
//   more than kStartTimeToleranceMs (a reused pid), the file is read one last time, unmapped,
//   and read again only if its inode, size or mtime changes.
// - A file replaced under the same name (new inode, or a header with another pid or start time)
//   is parsed from scratch; a file that grew is remapped, keeping the records parsed so far.
//   A file truncated below the mapping while mapped would make a read SIGBUS; the writer never
//   shrinks a live file, and a smaller size seen by the stat() of each scrape is remapped
//   before any read. A truncation after that stat() (a third party, or a
//   restarted writer rewriting the name in place) is caught by guarded_read
//   (agent/mapped_guard.h): a SourceError for the file, which is unmapped and remapped next
//   scrape. Everything read from the mapping is first copied into `image` inside the guard.
// - One-shot mode (--once) maps each file, reads it and unmaps it; /proc is not read.
// - What is opened at all (regular files with one link, no symlink, no FIFO or device, at most
//   max_file_bytes) is decided by stat_file.h, both at the lstat() of every scrape and at open.
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "agent/sources/process_table.h"
#include "agent/sources/stat_file_set.h"
#include "agent/sources/statherd_v2.h"
#include "common/log.h"

namespace statherd::agent {
namespace {

// The writer's start time and ours come from the same /proc fields (rounding may differ).
constexpr int64_t kStartTimeToleranceMs = 1000;

Error short_v2_file_error() {
  return make_error("statherd v2: file shorter than its 256-byte header",
                    "the writer may be starting; it is read again next scrape");
}

// One statherd v2 file: the shared bookkeeping and mapping (stat_file_set.h) plus what the
// decoder keeps: the header, the records parsed so far and the liveness it last established.
struct MappedV2File : TrackedStatFile {
  StatherdV2Header header;
  std::vector<StatherdV2Record> records;
  uint64_t parsed_until = 0;  // records in [256, parsed_until) are in `records`
  // The header (pid, start) last found alive, and that pid's start since boot then: while
  // they stay the same, the writer is alive whatever the wall clock did since.
  int64_t alive_pid = 0, alive_header_start_ms = 0, alive_since_boot_ms = 0;

  void forget_records() {
    records.clear();
    parsed_until = 0;
  }
};

}  // namespace

std::string default_statherd_v2_glob(const char* statherd_dir, const char* tmpdir) {
  std::string dir;
  if (statherd_dir && *statherd_dir) {
    dir = statherd_dir;
  } else {
    dir = tmpdir && *tmpdir ? tmpdir : "/tmp";
    if (dir.back() != '/') dir += '/';
    dir += "statherd";
  }
  if (dir.back() != '/') dir += '/';
  return dir + "*.statherd";
}

std::string default_statherd_v2_glob() {
  return default_statherd_v2_glob(std::getenv("STATHERD_DIR"), std::getenv("TMPDIR"));
}

struct StatherdV2Source::Impl {
  StatherdV2Options options;
  StatFileSet<MappedV2File> files;
  ProcessTable processes;
  StatherdV2Value value;  // reused
  // A private copy of the mapped file being read, at the file's offsets (see refresh).
  std::vector<uint8_t> image;

  explicit Impl(StatherdV2Options o)
      : options(std::move(o)), processes(options.proc_root, "statherd_v2") {
    if (options.globs.empty()) options.globs.push_back(default_statherd_v2_glob());
  }

  bool alive(MappedV2File& f);
  Status refresh(MappedV2File& f);
  bool copy_values_to_image(const MappedV2File& f, std::string& fault);
  std::span<const uint8_t> image_of(const MappedV2File& f) const {
    return {image.data(), f.map.size()};
  }
  MapRules map_rules() const {
    return {options.max_file_bytes, kStatherdV2HeaderSize, short_v2_file_error};
  }
  void read_file(const MappedV2File& f, bool fresh, int64_t now_ms, ScrapeReport& out);
  void visit(const std::string& path, int64_t now_ms, ScrapeReport& out);
  void visit_one_shot(const std::string& path, int64_t now_ms, ScrapeReport& out);
};

// The header's start time and ours rest on btime at different moments, which the wall clock
// moves: compared once (with btime read this scrape), then the pid's start since boot decides.
bool StatherdV2Source::Impl::alive(MappedV2File& f) {
  const StatherdV2Header& h = f.header;
  const auto pid = static_cast<int64_t>(h.pid);
  const auto header_start = static_cast<int64_t>(h.start_time_ms);
  const int64_t since_boot = processes.since_boot_ms(pid);
  if (since_boot < 0) return false;
  if (since_boot == 0 || header_start == 0) return true;  // unknown: trust the pid
  if (f.alive_since_boot_ms != 0 && f.alive_pid == pid && f.alive_header_start_ms == header_start)
    return since_boot == f.alive_since_boot_ms;  // else a reused pid
  const int64_t start = processes.start_ms(pid);
  if (start > 0 && std::llabs(start - header_start) > kStartTimeToleranceMs) return false;
  f.alive_pid = pid;
  f.alive_header_start_ms = header_start;
  f.alive_since_boot_ms = since_boot;
  return true;
}

// Every known record's seq + value area, copied from the mapping into the image under the seq
// rule of read_statherd_v2_value (which then decodes the image copy; a value that never read
// consistently gets an odd seq in the image - the last one seen, rounded up - so that decode
// reports it as "kept changing"). Runs inside guarded_read: only loads and copies.
bool StatherdV2Source::Impl::copy_values_to_image(const MappedV2File& f, std::string& fault) {
  auto load_seq = [](const uint8_t* p) {
    uint64_t seq;
    if (reinterpret_cast<uintptr_t>(p) % alignof(uint64_t) != 0) {  // never in a real mapping
      std::memcpy(&seq, p, 8);
      return seq;
    }
    return __atomic_load_n(reinterpret_cast<const uint64_t*>(p), __ATOMIC_ACQUIRE);
  };
  const uint8_t* data = f.map.data();
  const size_t size = f.map.size();
  auto copy_all = [&] {
    for (const StatherdV2Record& r : f.records) {
      const uint64_t end = r.seq_offset + 8 + uint64_t{r.value_size};
      if (r.seq_offset < kStatherdV2HeaderSize || end > size) continue;  // decode reports it
      const uint8_t* seq_at = data + r.seq_offset;
      uint64_t seq = 1;
      for (int attempt = 0; attempt < kStatherdV2MaxReadTries; ++attempt) {
        const uint64_t before = load_seq(seq_at);
        seq = before | 1;
        if (before % 2 != 0) continue;  // the writer is inside its update
        std::memcpy(image.data() + r.seq_offset + 8, seq_at + 8, r.value_size);
        std::atomic_thread_fence(std::memory_order_acquire);  // the copy before the re-read
        const uint64_t after = load_seq(seq_at);
        seq = after | 1;
        if (before == after) {
          seq = before;
          break;
        }
      }
      std::memcpy(image.data() + r.seq_offset, &seq, 8);
    }
  };
  return f.map.read(copy_all, fault);
}

// Header, new records and a consistent copy of every value of a mapped file, read from a
// private image: the mapping itself is only read by guarded copies, so a file truncated under
// us (SIGBUS) leaves no half-built record behind; it is then unmapped and forgotten. (Parsing
// straight from the mapping inside the guard would need parsers that never allocate.) Remaps
// when `used` passed the mapping.
Status StatherdV2Source::Impl::refresh(MappedV2File& f) {
  std::string fault;
  auto shrank = [&f, &fault] {
    f.map.unmap();
    f.forget_records();
    return make_error(fault);
  };
  const size_t header_bytes = std::min(f.map.size(), kStatherdV2HeaderSize);
  if (!f.map.copy_to_image(image, 0, header_bytes, fault)) return shrank();
  auto header = parse_statherd_v2_header(image_of(f));
  if (!header && f.map.size() >= kStatherdV2HeaderSize) {
    // Most likely `used` grew past the mapping: map the whole file as it is now and retry.
    if (auto st = f.map.map(AT_FDCWD, f.path.c_str(), map_rules()); !st) return st;
    if (!f.map.copy_to_image(image, 0, kStatherdV2HeaderSize, fault)) return shrank();
    header = parse_statherd_v2_header(image_of(f));
  }
  if (!header) return header.error();
  if (header->pid != f.header.pid || header->start_time_ms != f.header.start_time_ms ||
      header->used < f.parsed_until)
    f.forget_records();  // another process's file under this name
  f.header = std::move(*header);
  const uint64_t from = f.parsed_until == 0 ? kStatherdV2HeaderSize : f.parsed_until;
  // `used` <= f.size was checked by the header parse.
  if (f.header.used > from && !f.map.copy_to_image(image, from, f.header.used - from, fault))
    return shrank();
  if (auto st = parse_statherd_v2_records(image_of(f), from, f.header.used, f.records); !st) {
    f.forget_records();
    return st;
  }
  f.parsed_until = f.header.used;
  if (!copy_values_to_image(f, fault)) return shrank();
  return Ok{};
}

void StatherdV2Source::Impl::read_file(const MappedV2File& f, bool fresh, int64_t now_ms,
                                       ScrapeReport& out) {
  SourceSamples& ss = out.sources.emplace_back();
  ss.id.host = options.host;
  ss.id.app = f.header.app;
  ss.id.pid = f.header.pid;
  ss.id.start_time_ms = f.header.start_time_ms;
  ss.id.path = f.path;
  ss.fresh = file_is_fresh(fresh, f.header.start_time_ms, options.fresh_if_started_after_ms);
  ss.samples.reserve(f.records.size());
  size_t skipped = 0;
  std::string first_skipped;
  for (const auto& record : f.records) {
    Sample sample;
    Status st = read_statherd_v2_value(image_of(f), record, value);
    if (st) st = statherd_v2_sample(record, value, sample);
    if (!st) {
      if (skipped++ == 0) first_skipped = st.error().to_string();
      continue;
    }
    sample.timestamp_ms = now_ms;
    ss.samples.push_back(std::move(sample));
  }
  if (skipped > 0)
    out.errors.push_back({f.path, std::to_string(skipped) + " field(s) skipped this scrape, first: " + first_skipped});
}

void StatherdV2Source::Impl::visit(const std::string& path, int64_t now_ms, ScrapeReport& out) {
  StatFileVisit v;
  MappedV2File* file = files.visit(path, options.max_file_bytes, v, out.errors);
  if (!file) return;  // vanished since the listing, or refused (reported): nothing stays mapped
  MappedV2File& f = *file;
  if (v.replaced() || v.shrank()) {
    f.map.unmap();  // replaced or shrunk: never read the old mapping again
    f.forget_records();
  }
  if (f.final_read_done && !v.changed) return;  // dead and already reported
  // Grown: remapped, the records parsed so far stay (they are immutable below `used`).
  if (auto st = f.map.ensure_mapped(AT_FDCWD, path.c_str(), v.st, map_rules()); !st) {
    out.errors.push_back({path, st.error().to_string()});
    return;
  }
  // The writer read at the previous scrape (header pid and start time); 0: none.
  const bool read_before = !v.inserted && f.header.pid != 0;
  const auto before_pid = f.header.pid;
  const auto before_start = f.header.start_time_ms;
  if (auto st = refresh(f); !st) {
    out.errors.push_back({path, st.error().to_string()});
    f.map.unmap();
    return;
  }
  // Another process took the path over since the previous scrape (a restarted worker with the
  // same pid and file name, in a container): all it holds was counted since, whatever the
  // start times (whole-second btime) say about the agent's previous read.
  const bool new_writer = read_before && !v.fresh &&
                          (f.header.pid != before_pid || f.header.start_time_ms != before_start);
  const bool is_alive = alive(f);
  read_file(f, v.fresh || new_writer, now_ms, out);
  f.finish_read(is_alive);  // a dead process's file: its last read, then unmapped
}

// --once: each file is mapped, read and unmapped; nothing is kept and /proc is not read.
void StatherdV2Source::Impl::visit_one_shot(const std::string& path, int64_t now_ms, ScrapeReport& out) {
  MappedV2File f;
  f.path = path;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;  // vanished since the listing
  if (auto ok = check_stat_file(st, options.max_file_bytes); !ok) {
    out.errors.push_back({path, ok.error().to_string()});
    return;
  }
  Status mapped = f.map.map(AT_FDCWD, path.c_str(), map_rules());
  if (mapped) mapped = refresh(f);
  if (!mapped) {
    out.errors.push_back({path, mapped.error().to_string()});
    return;
  }
  read_file(f, false, now_ms, out);
}

StatherdV2Source::StatherdV2Source(StatherdV2Options options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

StatherdV2Source::~StatherdV2Source() = default;

std::string StatherdV2Source::describe() const {
  std::string d = "statherd_v2";
  for (const auto& g : impl_->options.globs) d += " " + g;
  return d;
}

void StatherdV2Source::scrape(int64_t now_ms, ScrapeReport& out) {
  Impl& s = *impl_;
  s.files.begin_scrape();
  s.processes.begin_scrape();
  for (const auto& path : list_stat_files(s.options.globs)) {
    if (s.options.one_shot) s.visit_one_shot(path, now_ms, out);
    else s.visit(path, now_ms, out);
  }
  if (!s.options.one_shot) s.files.end_scrape();
}

void StatherdV2Source::set_fresh_if_started_after_ms(int64_t ms) {
  impl_->options.fresh_if_started_after_ms = ms;
}

size_t StatherdV2Source::mapped_file_count() const { return impl_->files.mapped_count(); }

}  // namespace statherd::agent
