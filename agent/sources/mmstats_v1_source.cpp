// MmstatsV1Source: discovers mmstats v1 files by glob, keeps them mapped between scrapes, and
// turns their fields into samples. Format and defaults: mmstats_v1.h.
//
// Hazards handled here:
// - A file replaced under the same name (new inode or size) is unmapped and mapped again.
// - A writer that truncates the file while it is mapped would make our page reads SIGBUS (the
//   original writer creates files with O_TRUNC + ftruncate; a restarted process reuses its file
//   name). The stat() of every scrape notices a size change and remaps first; a truncation
//   between that stat() and the read is caught by guarded_read (agent/mapped_guard.h): the file
//   is a SourceError for this scrape, unmapped, and mapped again next scrape.
// - A dead pid (no <proc_root>/<pid>) gets its file read one last time; after that the file is
//   unmapped and only reported again if its inode, size or mtime changes.
// - A pid reused within one scrape interval by a process that recreates the same file name is
//   not noticed as a new process (its counters restarting lower reads as a reset on the server).
// - One-shot mode (--once) maps nothing: each file is copied with pread() and a second copy must
//   match it over the fields (the torn-read rule), else that file is mapped and read as above.
//   Layout, names and kinds carry over from the previous file while its header bytes match.
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "agent/mapped_guard.h"
#include "agent/sources/mmstats_v1.h"
#include "agent/sources/mmstats_v1_files.h"
#include "common/log.h"

namespace statherd::agent {
struct MmstatsFileStat {
  uint64_t inode = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const MmstatsFileStat&) const = default;
};

namespace {

bool stat_path(const std::string& path, MmstatsFileStat& out) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  out.inode = st.st_ino;
  out.size = st.st_size;
  out.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return true;
}

// What read_mmstats_v1_value says of a field that never read the same twice.
Error torn_field_error(const MmstatsFieldLayout& field) {
  return make_error("mmstats v1: value kept changing over " +
                    std::to_string(kMmstatsMaxReadTries) + " reads (torn write) at offset " +
                    std::to_string(field.wb_offset));
}

// Largest file the --once path copies; a larger one is mapped instead.
constexpr size_t kMaxCopyBytes = 64u << 20;

}  // namespace

struct MmstatsMappedFile {
  std::string path;
  MmstatsFileStat stat;
  const uint8_t* data = nullptr;
  size_t size = 0;
  bool mapped = false;  // data is our mapping (else a copy owned by someone else, or null)
  MmstatsFileName name;
  int64_t start_time_ms = 0;
  bool layout_ok = false;
  MmstatsLayout layout;
  std::vector<std::string> sample_names;
  std::vector<Kind> kinds;
  bool final_read_done = false;  // pid dead and its last read reported
  uint64_t last_seen_scrape = 0;

  std::span<const uint8_t> bytes() const { return {data, size}; }
  void unmap() {
    if (data && mapped) ::munmap(const_cast<uint8_t*>(data), size);
    data = nullptr;
    size = 0;
    mapped = false;
    layout_ok = false;
  }
  ~MmstatsMappedFile() { unmap(); }
};

struct MmstatsV1Source::Impl {
  MmstatsV1Options options;
  LabelPatternSet counters;
  std::unordered_map<std::string, std::unique_ptr<MmstatsMappedFile>> files;
  std::unordered_map<int64_t, int64_t> start_ms_by_pid;  // pids known alive
  std::unordered_map<int64_t, bool> alive_this_scrape;
  int64_t boot_time_ms = -1;  // -1: not read yet; 0: unavailable
  uint64_t scrape_count = 0;
  std::string scratch_text;
  // --once (options.one_shot): one file object and two copy buffers, reused for every file.
  MmstatsMappedFile copied_file;
  std::vector<uint8_t> copy, check_copy;
  std::string open_dir;      // the directory open_dir_fd refers to, with its trailing '/'
  // Mapped files are read through a private image (see snapshot_mapped), reused for every file.
  std::vector<uint8_t> image, field_copies;
  std::vector<uint8_t> torn_fields;  // per field of the last snapshot: 1 if it kept changing
  int open_dir_fd = -1;      // files are opened relative to it: no path walk per file

  ~Impl() {
    if (open_dir_fd >= 0) ::close(open_dir_fd);
  }

  explicit Impl(MmstatsV1Options o)
      : options(std::move(o)),
        counters(options.counter_patterns.empty() ? default_mmstats_counter_patterns()
                                                  : options.counter_patterns) {
    if (options.globs.empty()) options.globs.push_back(default_mmstats_glob());
  }

  bool pid_alive(int64_t pid);
  int64_t start_time_of(int64_t pid);
  Status map_file(MmstatsMappedFile& f);
  Status refresh_layout(MmstatsMappedFile& f, std::span<const uint8_t> bytes);
  Status parse_layout(MmstatsMappedFile& f, std::span<const uint8_t> bytes);
  Status snapshot_mapped(MmstatsMappedFile& f);
  bool copy_values_consistently(const MmstatsMappedFile& f, std::string& fault);
  bool read_file(MmstatsMappedFile& f, bool fresh, int64_t now_ms, SourceSamples& ss,
                 std::vector<SourceError>& errors);
  bool visit(const std::string& path, int64_t now_ms, SourceSamples& ss,
             std::vector<SourceError>& errors);
  bool visit_one_shot(const std::string& path, int64_t now_ms, SourceSamples& ss,
                      std::vector<SourceError>& errors);
  Status copy_consistent(MmstatsMappedFile& f, int fd);
  int open_in_directory(const std::string& path);
};

bool MmstatsV1Source::Impl::pid_alive(int64_t pid) {
  auto [it, inserted] = alive_this_scrape.try_emplace(pid, false);
  if (inserted) {
    struct stat st;
    const std::string dir = options.proc_root + "/" + std::to_string(pid);
    it->second = ::stat(dir.c_str(), &st) == 0;
    if (!it->second) start_ms_by_pid.erase(pid);  // a later process with this pid is another one
  }
  return it->second;
}

int64_t MmstatsV1Source::Impl::start_time_of(int64_t pid) {
  if (auto it = start_ms_by_pid.find(pid); it != start_ms_by_pid.end()) return it->second;
  if (boot_time_ms < 0) {
    auto bt = read_boot_time_ms(options.proc_root);
    if (!bt) log::warn("mmstats_v1: process start times unknown: " + bt.error().to_string());
    boot_time_ms = bt ? *bt : 0;
  }
  if (boot_time_ms == 0) return 0;
  auto start = read_process_start_ms(options.proc_root, pid, boot_time_ms);
  if (!start) return 0;  // raced with the process exiting: unknown
  start_ms_by_pid[pid] = *start;
  return *start;
}

Status MmstatsV1Source::Impl::map_file(MmstatsMappedFile& f) {
  f.unmap();
  const int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(std::string("cannot open: ") + std::strerror(errno), "check the agent's permissions on the file");
  struct stat st;
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) {
    ::close(fd);
    return make_error("mmstats v1: empty file (0 bytes)", "the writer may be starting; read again next scrape");
  }
  void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  const int mmap_errno = errno;
  ::close(fd);
  if (p == MAP_FAILED) return make_error(std::string("cannot mmap: ") + std::strerror(mmap_errno));
  f.data = static_cast<const uint8_t*>(p);
  f.size = static_cast<size_t>(st.st_size);
  f.mapped = true;
  f.stat.inode = st.st_ino;
  f.stat.size = st.st_size;
  return Ok{};
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

// Why a private image of a mapped file: a read that SIGBUSes (file truncated under us) jumps
// out of guarded_read, which must then find no half-built string or vector. So the guarded part
// only copies bytes into `image` at their file offsets - the structure with one memcpy, each
// field's write_buffer + readable value by the torn-read rule - and the layout is parsed and the
// values decoded from the image, outside the guard. (Decoding straight from the mapping inside
// the guard would need a parser that never allocates.) The extra copy of the structure is
// ~4 KB per file; bench/agent_read_bench measured no noticeable difference.
Status MmstatsV1Source::Impl::snapshot_mapped(MmstatsMappedFile& f) {
  if (image.size() < f.size) image.resize(f.size);  // never shrinks: no zero-fill per file
  const std::span<const uint8_t> img(image.data(), f.size);
  std::string fault;
  // The structure up to the terminator (whole file until a layout is known), then the rest of
  // the file only if the structure changed.
  size_t head = f.layout_ok ? std::min<size_t>(f.size, size_t{f.layout.end} + 2) : f.size;
  bool ok = guarded_copy(f.data, f.size, 0, head, image.data(), fault);
  if (ok && f.layout_ok && !mmstats_v1_layout_still_valid(img, f.layout)) {
    f.layout_ok = false;
    ok = guarded_copy(f.data, f.size, head, f.size - head, image.data() + head, fault);
  }
  Status st = Ok{};
  if (ok && !f.layout_ok) st = parse_layout(f, img);
  if (ok && st) ok = copy_values_consistently(f, fault);
  if (!ok) {
    f.unmap();  // never touched again; the next scrape maps the file as it is then
    return make_error(fault);
  }
  return st;
}

// For every field, write_buffer + readable value copied from the mapping into the image until
// two consecutive copies agree (read_mmstats_v1_value's torn-read rule); torn_fields[i] = 1 if
// they never did. Runs inside guarded_read: only copies, into buffers sized beforehand.
bool MmstatsV1Source::Impl::copy_values_consistently(const MmstatsMappedFile& f,
                                                    std::string& fault) {
  size_t widest = 0;
  for (const auto& field : f.layout.fields) widest = std::max<size_t>(widest, field.value_size);
  if (field_copies.size() < 2 * (widest + 1)) field_copies.resize(2 * (widest + 1));
  torn_fields.assign(f.layout.fields.size(), 0);
  const uint8_t* map = f.data;
  auto copy_once = [map](const MmstatsFieldLayout& field, uint8_t* dst) {
    dst[0] = *reinterpret_cast<const volatile uint8_t*>(map + field.wb_offset);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // write_buffer before the value
    const size_t slot = field.buffered ? ((dst[0] & 1u) ^ 1u) : 0;
    std::memcpy(dst + 1, map + field.wb_offset + 1 + slot * field.value_size, field.value_size);
    std::atomic_signal_fence(std::memory_order_seq_cst);
  };
  auto copy_all = [&] {
    for (size_t i = 0; i < f.layout.fields.size(); ++i) {
      const MmstatsFieldLayout& field = f.layout.fields[i];
      uint8_t* a = field_copies.data();
      uint8_t* b = a + field.value_size + 1;
      copy_once(field, a);
      torn_fields[i] = 1;
      for (int attempt = 1; attempt < kMmstatsMaxReadTries && torn_fields[i]; ++attempt) {
        copy_once(field, b);
        if (std::memcmp(a, b, field.value_size + 1) == 0) {
          const size_t slot = field.buffered ? ((a[0] & 1u) ^ 1u) : 0;
          image[field.wb_offset] = a[0];
          std::memcpy(&image[field.wb_offset + 1 + slot * field.value_size], a + 1,
                      field.value_size);
          torn_fields[i] = 0;
        }
        std::swap(a, b);
      }
    }
  };
  return guarded_read(f.data, f.size, copy_all, fault);
}

// Fills ss (reusing its capacity) from f; false (and an error) if f has no readable layout.
bool MmstatsV1Source::Impl::read_file(MmstatsMappedFile& f, bool fresh, int64_t now_ms,
                                      SourceSamples& ss, std::vector<SourceError>& errors) {
  const bool mapped = f.mapped;
  if (auto st = mapped ? snapshot_mapped(f) : refresh_layout(f, f.bytes()); !st) {
    errors.push_back({f.path, st.error().to_string()});
    return false;
  }
  const std::span<const uint8_t> bytes = mapped ? std::span<const uint8_t>(image.data(), f.size)
                                                : f.bytes();
  ss.id.host = options.host;
  ss.id.app = f.name.app;
  ss.id.pid = f.name.pid;
  ss.id.start_time_ms = f.start_time_ms;
  ss.id.path = f.path;
  ss.fresh = fresh || (options.fresh_if_started_after_ms > 0 && f.start_time_ms > 0 &&
                       f.start_time_ms > options.fresh_if_started_after_ms);
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
  MmstatsFileStat now_stat;
  if (!stat_path(path, now_stat)) return false;  // vanished between glob and stat
  auto [it, inserted] = files.try_emplace(path);
  if (inserted) {
    it->second = std::make_unique<MmstatsMappedFile>();
    it->second->path = path;
    it->second->name = parse_mmstats_file_name(path);
  }
  MmstatsMappedFile& f = *it->second;
  const bool was_seen_last_scrape = !inserted && f.last_seen_scrape + 1 == scrape_count;
  f.last_seen_scrape = scrape_count;
  const bool changed = inserted || !(f.stat == now_stat);
  const bool replaced = !inserted && (f.stat.inode != now_stat.inode || f.stat.size != now_stat.size);
  if (replaced) {
    f.unmap();
    f.start_time_ms = 0;
    f.name = parse_mmstats_file_name(path);
  }
  f.stat = now_stat;
  const bool alive = f.name.pid < 0 || pid_alive(f.name.pid);
  if (!alive && f.final_read_done && !changed) return false;  // dead and already reported
  f.final_read_done = !alive;
  if (alive && f.start_time_ms == 0 && f.name.pid >= 0) f.start_time_ms = start_time_of(f.name.pid);
  if (!f.data) {
    if (auto st = map_file(f); !st) {
      errors.push_back({path, st.error().to_string()});
      return false;
    }
  }
  const bool fresh = !was_seen_last_scrape && scrape_count > 1;
  const bool read = read_file(f, fresh, now_ms, ss, errors);
  if (!alive) f.unmap();  // last read of a dead process's file
  return read;
}

// Copies f.path (open as fd) into `copy` and points f at it, if a second copy agrees with the
// first over every field (the torn-read rule of read_mmstats_v1_value, applied to whole copies).
// Otherwise (a writer is busy, or the file is huge) f is mapped and read the usual way.
Status MmstatsV1Source::Impl::copy_consistent(MmstatsMappedFile& f, int fd) {
  auto n = copy_whole_file(fd, copy, kMaxCopyBytes);
  if (!n) return n.error();
  if (*n == 0) return make_error("mmstats v1: empty file (0 bytes)", "the writer may be starting; read again next scrape");
  f.data = copy.data();
  f.size = *n;
  if (*n < kMaxCopyBytes && refresh_layout(f, f.bytes())) {
    const size_t used = f.layout.end;
    if (check_copy.size() < used) check_copy.resize(used);
    const ssize_t again = ::pread(fd, check_copy.data(), used, 0);
    if (again == static_cast<ssize_t>(used) && std::memcmp(copy.data(), check_copy.data(), used) == 0)
      return Ok{};
  } else if (*n < kMaxCopyBytes) {
    return Ok{};  // unparseable: read_file reports why
  }
  f.data = nullptr;
  return map_file(f);
}

// open(path) for reading, as openat() relative to the path's directory, which stays open for
// the next file (the paths come sorted, so a directory's files come together).
int MmstatsV1Source::Impl::open_in_directory(const std::string& path) {
  constexpr int kFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;  // NONBLOCK: a FIFO must not hang us
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return ::open(path.c_str(), kFlags);
  const std::string_view dir(path.data(), slash + 1);
  if (open_dir_fd < 0 || dir != open_dir) {
    if (open_dir_fd >= 0) ::close(open_dir_fd);
    open_dir.assign(dir);
    open_dir_fd = ::open(open_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (open_dir_fd < 0) return ::open(path.c_str(), kFlags);
  }
  return ::openat(open_dir_fd, path.c_str() + slash + 1, kFlags);
}

bool MmstatsV1Source::Impl::visit_one_shot(const std::string& path, int64_t now_ms,
                                           SourceSamples& ss, std::vector<SourceError>& errors) {
  MmstatsMappedFile& f = copied_file;  // keeps the previous file's layout, names and kinds
  f.path = path;
  f.name = parse_mmstats_file_name(path);
  if (f.name.pid < 0) f.layout_ok = false;  // refresh_layout takes the pid from sys.pid
  const int fd = open_in_directory(path);
  if (fd < 0) {
    if (errno != ENOENT)  // ENOENT: vanished between the directory scan and now
      errors.push_back({path, make_error(std::string("cannot open: ") + std::strerror(errno),
                                         "check the agent's permissions on the file")
                                  .to_string()});
    return false;
  }
  const Status copied = copy_consistent(f, fd);
  ::close(fd);
  if (!copied) {
    errors.push_back({path, copied.error().to_string()});
    return false;
  }
  const bool read = read_file(f, false, now_ms, ss, errors);
  if (f.mapped) {
    f.unmap();
  } else {
    f.data = nullptr;  // the layout stays: the next file probably has the same one
    f.size = 0;
  }
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
  ++s.scrape_count;
  s.alive_this_scrape.clear();
  SourceSamples ss;
  for (const auto& path : list_mmstats_files(s.options.globs)) {
    const bool read = s.options.one_shot ? s.visit_one_shot(path, now_ms, ss, errors)
                                         : s.visit(path, now_ms, ss, errors);
    if (read && !on_source(ss)) break;
  }
  if (!s.options.one_shot)
    std::erase_if(s.files, [&](const auto& kv) { return kv.second->last_seen_scrape != s.scrape_count; });
}

void MmstatsV1Source::set_fresh_if_started_after_ms(int64_t ms) {
  impl_->options.fresh_if_started_after_ms = ms;
}

size_t MmstatsV1Source::mapped_file_count() const {
  size_t n = 0;
  for (const auto& kv : impl_->files) n += kv.second->data != nullptr;
  return n;
}

}  // namespace statherd::agent
