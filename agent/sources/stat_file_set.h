// StatFileSet: the files a per-process file source (mmstats v1, statherd v2) found by glob,
// each kept mapped between scrapes (mapped_stat_file.h), keyed by path, with the bookkeeping
// both share:
// - discovery: list_stat_files() expands the globs; every listed path is lstat()ed each scrape
//   and checked by check_stat_file (a file that became a link, a FIFO or grew past the cap is
//   an error and forgotten: unmapped, never read while it stays so);
// - fresh: a file not seen at the previous scrape (and this is not the source's first scrape)
//   appeared since, so everything in it was counted since (the source may also call a file
//   fresh because its process started after the agent's last scan: file_is_fresh());
// - liveness: a file whose process is dead is read one last time (final_read_done), then
//   unmapped; `changed` (inode, size or mtime differ from the last visit) says whether it
//   deserves another read;
// - a file not listed at a scrape is forgotten at end_scrape().
// Who is alive, and what identity a file carries, is the format's (a file name for mmstats v1,
// a header for statherd v2): the source decides, with process_table.h.
//
// prometheus_client .db files do not fit this shape and do not use it: one source per
// directory aggregates every file, a deleted file's values are retired into the totals, and a
// known file is read without a stat() (its directory entry's inode suffices). They share
// MappedStatFile only (prom_multiproc_source.cpp).
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/sources/mapped_stat_file.h"
#include "common/sample.h"

namespace statherd::agent {

// Paths of the regular files (or symlinks to them: listed so that opening them, which
// refuses every link (stat_file.h), reports it) matching any of `globs`, sorted, without
// duplicates, with glob(3) semantics (no flags: a leading '.' must be matched explicitly).
// A pattern whose wildcards are all in its last component is matched with one directory scan
// (readdir + fnmatch; the entry type comes from the directory, so no stat per file); any other
// pattern goes through glob(3) and a stat per match.
std::vector<std::string> list_stat_files(const std::vector<std::string>& globs);

// Opens listed paths (StatFile::open, lstat skipped: list_stat_files listed only regular files
// and links to them, which O_NOFOLLOW refuses) relative to their directory, which stays open for
// the next path: the listing is sorted, so a directory's files come together and no path is
// walked per file. The --once paths open every file this way.
class StatFileOpener {
 public:
  StatFileOpener() = default;
  ~StatFileOpener();
  StatFileOpener(const StatFileOpener&) = delete;
  StatFileOpener& operator=(const StatFileOpener&) = delete;
  StatFile open(const std::string& path, uint64_t max_bytes);

 private:
  std::string dir_;  // the directory dir_fd_ refers to, with its trailing '/'
  int dir_fd_ = -1;
};

// What a file source keeps per file; a source derives its per-file state from it.
struct TrackedStatFile {
  std::string path;
  FileIdentity seen;  // the lstat() of the last visit
  MappedStatFile map;
  bool final_read_done = false;  // its process is dead and its last read was reported
  uint64_t last_seen_scrape = 0;

  // After a read: a dead process's file was read for the last time, and is unmapped.
  void finish_read(bool alive) {
    final_read_done = !alive;
    if (!alive) map.unmap();
  }
};

// This scrape's lstat() of one file against the last one.
struct StatFileVisit {
  struct stat st {};
  FileIdentity now;
  FileIdentity before;  // zero when inserted
  bool inserted = false;
  bool fresh = false;    // not seen at the previous scrape, and not the first scrape
  bool changed = false;  // inserted, or inode, size or mtime differ
  bool replaced() const { return !inserted && before.inode != now.inode; }
  bool resized() const { return !inserted && before.size != now.size; }
  bool shrank() const { return !inserted && now.size < before.size; }
};

template <typename File>  // File derives from TrackedStatFile
class StatFileSet {
 public:
  void begin_scrape() { ++scrape_; }
  uint64_t scrape_count() const { return scrape_; }

  // lstat()s and checks `path`; null if it vanished (no error) or was refused (an error, and
  // the file is forgotten). Otherwise the file's entry (created on first sight) and `visit`.
  File* visit(const std::string& path, uint64_t max_bytes, StatFileVisit& visit,
              std::vector<SourceError>& errors) {
    if (::lstat(path.c_str(), &visit.st) != 0) return nullptr;  // gone since the listing
    if (auto ok = check_stat_file(visit.st, max_bytes); !ok) {
      errors.push_back({path, ok.error().to_string()});  // e.g. now a symlink, or over the cap
      files_.erase(path);
      return nullptr;
    }
    auto [it, inserted] = files_.try_emplace(path);
    if (inserted) {
      it->second = std::make_unique<File>();
      it->second->path = path;
    }
    File& f = *it->second;
    visit.inserted = inserted;
    visit.now = FileIdentity::of(visit.st);
    visit.before = inserted ? FileIdentity{} : f.seen;
    visit.changed = inserted || !(f.seen == visit.now);
    visit.fresh = !(!inserted && f.last_seen_scrape + 1 == scrape_) && scrape_ > 1;
    f.seen = visit.now;
    f.last_seen_scrape = scrape_;
    return &f;
  }

  // Forgets (and unmaps) every file not visited this scrape.
  void end_scrape() {
    std::erase_if(files_,
                  [this](const auto& kv) { return kv.second->last_seen_scrape != scrape_; });
  }

  size_t mapped_count() const {
    size_t n = 0;
    for (const auto& kv : files_) n += kv.second->map.mapped();
    return n;
  }

 private:
  std::unordered_map<std::string, std::unique_ptr<File>> files_;
  uint64_t scrape_ = 0;
};

}  // namespace statherd::agent
