// PromMultiprocSource: reads every *.db file of each configured PROMETHEUS_MULTIPROC_DIR and
// reports the directory's aggregated view (format: prom_multiproc.h; rules:
// prom_multiproc_aggregate.h).
//
// Identity: one SourceSamples per directory: app = the configured name or the directory's base
// name, pid = -1 (the view merges many processes), path = the directory, start_time_ms = when
// this source first read the directory. That start time is the epoch of the cumulative totals
// below: an agent restart is a new source to the server, which baselines it (fresh = false)
// instead of reading the restarted totals' drop as a counter reset.
// fresh = the directory was missing or held no .db file at an earlier scrape of this source, so
// everything in it was counted since (the server counts the whole value on first sighting).
//
// Counters never go backwards while the agent runs:
// - A dead process' files stay (prometheus_client's mark_process_dead removes only live* gauge
//   files), so its counters, histograms and summaries keep contributing their last values.
// - A file that is deleted (a deploy wiping the directory, mark_process_dead, a janitor) or
//   replaced (new inode) has its last values read from our still-valid mapping and kept in the
//   directory's totals for the life of the source ("retired"); its gauges disappear, as they do
//   from MultiProcessCollector. Here we differ from MultiProcessCollector on purpose: its totals
//   drop when files go, which a server would read as a reset and count the whole remaining
//   total again. Only an agent restart forgets retired values, and that is a new identity.
// - A file whose used size shrinks was rewritten in place: it is dropped without retiring (its
//   old values are gone) and read afresh next scrape; the server then sees a reset.
// Hazards: a file truncated while mapped would make a page read SIGBUS. prometheus_client only
// grows files (and a deleted file's mapping stays valid), so a known file whose inode (from the
// directory entry) is unchanged is read without a stat() - that is what keeps a scrape of
// 3,000 files fast; it is stat()ed and remapped when its used size passes the mapped size. A
// third party truncating a live .db file in place is not supported (prometheus_client itself
// would raise on it), but must not kill the agent: every read of a mapping is a SIGBUS-guarded
// copy (agent/mapped_guard.h, prom_multiproc_copy.cpp; parsing and the series table only see
// the copies), and a file that faults, or that a stat() finds shorter than its header, is a
// SourceError, dropped without retiring (its values are gone) and read afresh next scrape.
// A truncation that keeps the page holding `used` and every value (a shrink within the last
// page) reads as zeros for a scrape - the price of not stat()ing every file every scrape.
// A file that fails to parse is a SourceError for that file only; its entries parsed at earlier
// scrapes keep contributing, so a corrupt tail never makes a total drop.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "agent/sources/prom_multiproc.h"
#include "agent/sources/prom_multiproc_aggregate.h"
#include "agent/sources/prom_multiproc_source_impl.h"
#include "common/log.h"

namespace statherd::agent {
namespace {

constexpr size_t kFirstReadBytes = 4096;

bool is_db_name(const char* name) {
  size_t n = std::strlen(name);
  return n > 3 && std::strcmp(name + n - 3, ".db") == 0 && name[0] != '.';
}

std::string base_name(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

// Parses what the writer appended since the last scrape and resolves the new entries' keys.
Status PromMultiprocSource::DirState::extend(PromDbFile& f, std::span<const uint8_t> bytes) {
  auto used = read_prom_db_used(bytes);
  if (!used) return used.error();
  if (*used < f.layout.parsed_to)
    return make_error("used size shrank at offset 0",
                      "the file was rewritten in place; it is read afresh next scrape");
  if (*used == f.layout.parsed_to) return Ok{};
  const size_t first_new = f.layout.entries.size();
  Status st = extend_prom_db_layout(bytes, *used, f.layout);
  for (size_t i = first_new; i < f.layout.entries.size(); ++i) {
    const PromDbEntryLayout& e = f.layout.entries[i];
    std::string_view json(reinterpret_cast<const char*>(bytes.data() + e.key_offset), e.key_len);
    auto target = table.resolve(f.name, json);
    if (!target) {  // keep the entries before the bad one; re-parse the rest next time
      f.layout.entries.resize(i);
      f.layout.parsed_to = e.key_offset - 4;
      return make_error(target.error().message + " (entry at offset " +
                            std::to_string(e.key_offset - 4) + ")",
                        target.error().hint);
    }
    f.targets.push_back(*target);
  }
  return st;
}

void PromMultiprocSource::DirState::apply(const PromDbFile& f, std::span<const uint8_t> bytes) {
  const bool timestamps = f.layout.value_bytes == 16;
  const uint8_t* data = bytes.data();
  for (size_t i = 0; i < f.targets.size(); ++i) {
    const uint32_t at = f.layout.entries[i].value_offset;
    table.apply(f.targets[i], load_prom_db_double(data, at),
                timestamps ? load_prom_db_double(data, at + 8) : 0.0);
  }
}

// A mapped file that faulted: reported, and forgotten without retiring; read afresh next scrape.
void PromMultiprocSource::DirState::drop_faulted(const std::string& name, std::string fault,
                                                 std::vector<SourceError>& errors) {
  errors.push_back({file_path(name), std::move(fault)});
  files.erase(name);
}

void PromMultiprocSource::DirState::visit_mapped(int dir_fd, const dirent& entry,
                                                 std::vector<SourceError>& errors) {
  const char* name = entry.d_name;
  if (entry.d_type == DT_REG) {  // fast path: a known, unchanged file is read without a stat
    auto known = files.find(name);
    if (known != files.end() && known->second->inode == entry.d_ino &&
        known->second->map.mapped()) {
      PromDbFile& f = *known->second;
      uint32_t used = 0;
      if (std::string fault; !f.map.copy(0, 4, &used, fault)) {
        drop_faulted(name, std::move(fault), errors);
        return;
      }
      if (used == f.layout.parsed_to) {
        f.seen_scan = scan;
        live.push_back(&f);
        return;
      }
    }
  }
  struct stat st;
  if (::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return;  // deleted since the scan
  if (!S_ISREG(st.st_mode) || st.st_nlink > 1) {
    // A link or special file is never opened; a file it replaced counts as deleted (retired).
    errors.push_back({file_path(name), check_stat_file(st, max_file_bytes).error().to_string()});
    return;
  }
  auto it = files.find(name);
  if (it != files.end() && it->second->inode != st.st_ino) {
    // Replaced under the same name: the old file's values stay in the totals.
    if (std::string fault; !retire(*it->second, fault))
      errors.push_back({file_path(name), fault + " (the replaced file's last values are lost)"});
    files.erase(it);
    it = files.end();
  }
  if (it == files.end()) {
    auto parsed = parse_prom_db_file_name(name);
    if (!parsed) {
      errors.push_back({file_path(name), parsed.error().to_string()});
      return;
    }
    auto f = std::make_unique<PromDbFile>();
    f->name = std::move(*parsed);
    f->inode = st.st_ino;
    it = files.emplace(name, std::move(f)).first;
  }
  PromDbFile& f = *it->second;
  f.seen_scan = scan;
  const size_t size = static_cast<size_t>(st.st_size);
  if (size > max_file_bytes) {
    errors.push_back({file_path(name), over_file_cap_error(size, max_file_bytes).to_string()});
    f.map.unmap();
    f.targets.clear();
    f.layout = {};
    return;
  }
  // Checked before mapping: a file dropped after a fault and still empty must not be read
  // through a null mapping; one being created is read next scrape.
  if (size < kPromDbHeaderBytes) {  // being created (read next scrape), or truncated
    if (f.map.mapped())
      drop_faulted(name, "file shrank to " + std::to_string(size) + " bytes\nhint: it was "
                   "truncated or rewritten in place; it is read afresh next scrape", errors);
    return;
  }
  // Grown (or new): mapped as it is now. visit_mapped has just lstat()ed and checked it.
  if (auto mapped = f.map.ensure_mapped(dir_fd, name, st, map_rules()); !mapped) {
    errors.push_back({file_path(name), mapped.error().to_string()});
    return;
  }
  Status extended = Ok{};
  if (std::string fault; !extend_mapped(f, extended, fault)) {
    drop_faulted(name, std::move(fault), errors);
    return;
  }
  if (!extended) {
    errors.push_back({file_path(name), extended.error().to_string()});
    if (extended.error().message.rfind("used size shrank", 0) == 0) {
      files.erase(name);
      return;
    }
  }
  live.push_back(&f);
}

// --once: one pread() copy per file into a reused buffer; its values are folded in at once.
void PromMultiprocSource::DirState::visit_copied(int dir_fd, const char* name, bool is_regular,
                                                 std::vector<SourceError>& errors) {
  auto parsed = parse_prom_db_file_name(name);
  if (!parsed) {
    errors.push_back({file_path(name), parsed.error().to_string()});
    return;
  }
  const StatFile file = StatFile::open(dir_fd, name, max_file_bytes, is_regular);
  if (!file.ok()) {
    if (!file.vanished()) errors.push_back({file_path(name), file.error().to_string()});
    return;  // vanished: deleted since the directory scan (mark_process_dead), as the collector
  }
  // The first page, then up to `used` (never past the cap): not the writer's preallocated zeros.
  auto n = copy_whole_file(file.fd(), buffer, kFirstReadBytes);
  if (n && *n >= 8) {
    uint32_t used;
    std::memcpy(&used, buffer.data(), 4);
    if (used > *n && used <= max_file_bytes) n = copy_whole_file(file.fd(), buffer, used);
  }
  if (!n) {
    errors.push_back({file_path(name), n.error().to_string()});
    return;
  }
  PromDbFile f;
  f.name = std::move(*parsed);
  std::span<const uint8_t> bytes(buffer.data(), *n);
  if (auto extended = extend(f, bytes); !extended)
    errors.push_back({file_path(name), extended.error().to_string()});
  apply(f, bytes);
}

namespace {

void scrape_dir(PromMultiprocSource::DirState& d, const PromMultiprocOptions& options,
                int64_t now_ms, ScrapeReport& out) {
  ++d.scan;
  d.live.clear();
  int dir_fd = ::open(d.dir.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* dir = dir_fd >= 0 ? ::fdopendir(dir_fd) : nullptr;
  if (!dir) {
    if (dir_fd >= 0) ::close(dir_fd);
    if (errno == ENOENT) {
      if (!d.warned_missing)
        log::warn("prom_multiproc: directory " + d.dir.path + " does not exist (yet); "
                  "hint: it appears when the first process starts; check the path otherwise");
      d.warned_missing = true;
      d.saw_empty = true;
    } else {
      out.errors.push_back({d.dir.path, "cannot open directory: " + errno_text() +
                                            "\nhint: the agent user needs read and execute "
                                            "permission on it"});
    }
    return;
  }
  if (options.one_shot) d.table.begin_collection();
  while (dirent* e = ::readdir(dir)) {
    if (!is_db_name(e->d_name)) continue;
    // A symlink goes on to be refused with an error; FIFOs, sockets, devices are skipped.
    if (e->d_type != DT_REG && e->d_type != DT_LNK && e->d_type != DT_UNKNOWN) continue;
    if (options.one_shot) d.visit_copied(dir_fd, e->d_name, e->d_type == DT_REG, out.errors);
    else d.visit_mapped(dir_fd, *e, out.errors);
  }
  ::closedir(dir);
  if (!options.one_shot) {
    for (auto it = d.files.begin(); it != d.files.end();) {
      if (it->second->seen_scan == d.scan) {
        ++it;
        continue;
      }
      // Deleted: its cumulative values stay in the totals.
      if (std::string fault; !d.retire(*it->second, fault))
        out.errors.push_back({d.file_path(it->first), fault + " (its last values are lost)"});
      it = d.files.erase(it);
    }
    d.table.begin_collection();
    std::vector<std::pair<const PromDbFile*, std::string>> faulted;  // rare: a truncation
    for (const PromDbFile* f : d.live)
      if (std::string fault; !d.apply_mapped(*f, fault)) faulted.emplace_back(f, std::move(fault));
    for (auto& [f, fault] : faulted) {
      std::string name;
      for (const auto& [file_name, file] : d.files)
        if (file.get() == f) name = file_name;
      d.drop_faulted(name, std::move(fault), out.errors);
    }
  }
  SourceSamples ss;
  d.table.emit(now_ms, ss.samples);
  if (ss.samples.empty()) {
    d.saw_empty = true;
    return;
  }
  if (d.first_read_ms == 0) {
    d.first_read_ms = now_ms;
    d.fresh = d.saw_empty;
  }
  ss.id = {options.host, d.app, -1, options.one_shot ? 0 : d.first_read_ms, d.dir.path};
  ss.fresh = d.fresh;
  out.sources.push_back(std::move(ss));
}

}  // namespace

void PromMultiprocSource::scrape(int64_t now_ms, ScrapeReport& out) {
  for (auto& d : dirs_) {
    if (options_.one_shot) {  // nothing is kept between one-shot scrapes
      auto fresh_state = std::make_unique<DirState>();
      fresh_state->dir = d->dir;
      fresh_state->app = d->app;
      fresh_state->max_file_bytes = d->max_file_bytes;
      d = std::move(fresh_state);
    }
    scrape_dir(*d, options_, now_ms, out);
  }
}

PromMultiprocSource::PromMultiprocSource(PromMultiprocOptions options)
    : options_(std::move(options)) {
  for (const auto& d : options_.dirs) {
    auto state = std::make_unique<DirState>();
    state->dir = d;
    state->app = d.app.empty() ? base_name(d.path) : d.app;
    state->max_file_bytes = options_.max_file_bytes;
    dirs_.push_back(std::move(state));
  }
}

PromMultiprocSource::~PromMultiprocSource() = default;

std::string PromMultiprocSource::describe() const {
  std::string text = "prom_multiproc";
  for (const auto& d : options_.dirs) text += " " + d.path;
  return text;
}

size_t PromMultiprocSource::mapped_file_count() const {
  size_t n = 0;
  for (const auto& d : dirs_)
    for (const auto& [name, f] : d->files) n += f->map.mapped();
  return n;
}

}  // namespace statherd::agent
