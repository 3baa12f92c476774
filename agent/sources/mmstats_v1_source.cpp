// MmstatsV1Source: discovers mmstats v1 files by glob, keeps them mapped between scrapes, and
// turns their fields into samples. Format and defaults: mmstats_v1.h.
//
// Hazards handled here:
// - A file replaced under the same name (new inode or size) is unmapped and mapped again.
// - A writer that truncates the file while it is mapped would make our page reads SIGBUS; the
//   original writer only ever creates files with O_TRUNC + ftruncate before writing, and a size
//   change is noticed by the stat() done every scrape, so the window is one scrape at most.
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
#include <cerrno>
#include <cstring>
#include <unordered_map>

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
  Status refresh_layout(MmstatsMappedFile& f);
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
Status MmstatsV1Source::Impl::refresh_layout(MmstatsMappedFile& f) {
  // Also reuses the previous file's layout in --once (files of one app share theirs).
  if (f.layout_ok && mmstats_v1_layout_still_valid(f.bytes(), f.layout)) return Ok{};
  f.layout_ok = false;
  if (auto st = parse_mmstats_v1_layout_into(f.bytes(), f.layout); !st) return st;
  const size_t n = f.layout.fields.size();
  f.sample_names.resize(n);
  f.kinds.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& field = f.layout.fields[i];
    std::string& label = f.sample_names[i];
    label.clear();
    append_mmstats_v1_label(f.bytes(), field, label);
    f.kinds[i] = field.kind == MmstatsValueKind::Text ? Kind::Text
                 : field.kind == MmstatsValueKind::Number && counters.matches(label)
                     ? Kind::Counter
                     : Kind::Gauge;
    if (f.name.pid < 0 && label == "sys.pid") {  // a file not named {CMD}-{PID}-{TID}
      double pid = 0;
      if (read_mmstats_v1_value(f.bytes(), field, &pid, nullptr) && pid > 0)
        f.name.pid = static_cast<int64_t>(pid);
    }
  }
  f.layout_ok = true;
  return Ok{};
}

// Fills ss (reusing its capacity) from f; false (and an error) if f has no readable layout.
bool MmstatsV1Source::Impl::read_file(MmstatsMappedFile& f, bool fresh, int64_t now_ms,
                                      SourceSamples& ss, std::vector<SourceError>& errors) {
  if (auto st = refresh_layout(f); !st) {
    errors.push_back({f.path, st.error().to_string()});
    return false;
  }
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
    auto st = f.mapped ? read_mmstats_v1_value(f.bytes(), f.layout.fields[i], &number, text)
                       : read_mmstats_v1_value_from_copy(f.bytes(), f.layout.fields[i], &number, text);
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
  if (*n < kMaxCopyBytes && refresh_layout(f)) {
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
