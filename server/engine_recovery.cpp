// Recovery at start: load the snapshot, replay the WAL files it does not cover, and never let a
// bad record stop the server from starting:
// - a damaged range (bytes that do not verify) costs only that record: replay resynchronises
//   (server/wal_replay.cpp); each is logged with file and offset and counted;
// - a record that cannot be replayed (undecodable, or applying it throws, e.g. bad_alloc) is
//   quarantined: appended to <state_dir>/quarantine/records.log (WAL format 2), logged, counted;
// - a record that crashed the process during an earlier replay (kill by the OOM killer, abort)
//   is found through the replay marker <state_dir>/replaying ("wal-<n>.log <offset>", rewritten
//   before each record with pwrite, no fsync: it must survive a process crash, not a power cut)
//   and quarantined instead of applied, so a poison record is never retried forever;
// - after any damage or quarantine a snapshot is written at once, which retires the replayed
//   files; a file with damage is first hard-linked into quarantine/ so its bytes are kept;
// - a snapshot that does not verify (checksum, CBOR, content) is moved into quarantine/ and the
//   state is rebuilt from the WAL files still there: what only the snapshot held (batches of the
//   WAL files it retired) is lost, which the log and GET /readyz say;
// - with no snapshot, WAL files that do not start at wal-1.log mean records were lost (a
//   snapshot deleted after it retired them): a warning.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "common/log.h"
#include "server/engine_impl.h"
#include "server/state_dir_check.h"

namespace statherd::server {
namespace {

std::string base_name(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

class ReplayMarker {
 public:
  explicit ReplayMarker(std::string path) : path_(std::move(path)) {
    char buf[256] = {};
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ssize_t n = ::read(fd, buf, sizeof buf - 1);
      ::close(fd);
      unsigned long long off = 0;
      char name[200] = {};
      if (n > 0 && std::sscanf(buf, "%199s %llu", name, &off) == 2) {
        crashed_file_ = name;
        crashed_offset_ = off;
      }
    }
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  }
  ~ReplayMarker() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  ReplayMarker(const ReplayMarker&) = delete;
  ReplayMarker& operator=(const ReplayMarker&) = delete;

  // Fixed width, so a shorter rewrite never leaves stale digits behind.
  void set(const std::string& file, uint64_t offset) {
    if (fd_ < 0) return;
    char line[256];
    int n = std::snprintf(line, sizeof line, "%s %020llu\n", file.c_str(),
                          static_cast<unsigned long long>(offset));
    if (n > 0 && ::pwrite(fd_, line, static_cast<size_t>(n), 0) < 0) return;
  }
  bool crashed_on(const std::string& file, uint64_t offset) const {
    return file == crashed_file_ && offset == crashed_offset_;
  }

 private:
  std::string path_;
  std::string crashed_file_;
  uint64_t crashed_offset_ = UINT64_MAX;
  int fd_ = -1;
};

std::string quarantine_dir(const std::string& state_dir) { return state_dir + "/quarantine"; }

Status append_quarantine(const std::string& dir, std::string_view framed) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string path = dir + "/records.log";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return make_error("cannot open " + path + ": " + std::strerror(errno));
  struct stat st{};
  std::string out;
  if (::fstat(fd, &st) == 0 && st.st_size == 0) out.assign(kWalFileHeader, sizeof kWalFileHeader);
  out.append(framed);
  bool ok = ::write(fd, out.data(), out.size()) == static_cast<ssize_t>(out.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok) return make_error("cannot write " + path + ": " + std::strerror(errno));
  return Ok{};
}

}  // namespace

void Engine::Impl::quarantine_record(const WalRecord& rec, const std::string& file,
                                     const std::string& why) {
  ++st.wal_quarantined_records;
  const std::string dir = quarantine_dir(opt.state_dir);
  Status kept = append_quarantine(dir, frame_wal_record(rec.now_ms, rec.batch));
  log::error("write-ahead log " + file + ": record at offset " + std::to_string(rec.offset) +
             " quarantined (" + why + ")" +
             (kept ? "; kept in " + dir + "/records.log" : "; " + kept.error().message) +
             "\nhint: replay goes on without it; the record is kept for inspection");
}

void Engine::Impl::replay_record(const WalRecord& rec, const std::string& file,
                                 uint64_t& replayed) {
  Result<Batch> b = decode_batch(rec.batch, opt.wire_limits);
  if (!b) return quarantine_record(rec, file, "undecodable: " + b.error().message);
  auto agent = agents.find(b->agent_id);
  if (agent != agents.end() && b->seq <= agent->second.last_seq) return;
  try {
    apply_batch(*b, rec.now_ms);
    ++replayed;
  } catch (const std::exception& e) {
    quarantine_record(rec, file, std::string("replay failed: ") + e.what());
  }
}

Status Engine::Impl::replay_wal(uint64_t& next_file, uint64_t& replayed) {
  ReplayMarker marker(opt.state_dir + "/replaying");
  std::vector<uint64_t> files;
  for (uint64_t n : list_wal_files(opt.state_dir))
    if (n >= wal_start) files.push_back(n);
  std::set<uint64_t> damaged_files;
  for (uint64_t n : files) {
    next_file = std::max(next_file, n + 1);
    const std::string path = wal_path(opt.state_dir, n), name = base_name(path);
    WalReplayReport report;
    Status s = replay_wal_file(path, n == files.back(), [&](const WalRecord& rec) {
      if (marker.crashed_on(name, rec.offset))
        return quarantine_record(rec, path, "the previous replay crashed on it");
      marker.set(name, rec.offset);
      replay_record(rec, path, replayed);
    }, report);
    if (!s) return s;
    for (const WalDamage& d : report.damaged) {
      ++st.wal_damaged_records;
      st.wal_last_damage = name + " offset " + std::to_string(d.offset) + " (" +
                           std::to_string(d.bytes) + " bytes)";
      damaged_files.insert(n);
    }
  }
  for (uint64_t n : damaged_files) {
    std::string dir = quarantine_dir(opt.state_dir);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::string from = wal_path(opt.state_dir, n), to = dir + "/" + base_name(from);
    if (::link(from.c_str(), to.c_str()) != 0 && errno != EEXIST)
      log::warn("cannot keep damaged " + from + " in " + dir + ": " + std::strerror(errno));
  }
  return Ok{};
}

// Moves the snapshot that did not verify into quarantine/ (its bytes kept for inspection).
void Engine::Impl::quarantine_snapshot(const std::string& why) {
  const std::string from = opt.state_dir + "/snapshot", dir = quarantine_dir(opt.state_dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string to = dir + "/snapshot-" + std::to_string(last_snapshot_ms) + ".bad";
  bool moved = ::rename(from.c_str(), to.c_str()) == 0;
  if (!moved) {
    to = from + ".bad";  // at least out of the way of the next start
    moved = ::rename(from.c_str(), to.c_str()) == 0;
  }
  st.snapshot_quarantined = moved ? to : from + " (could not be moved: " +
                                             std::string(std::strerror(errno)) + ")";
  log::error(why + "; moved to " + st.snapshot_quarantined +
             ". Recovering from the WAL files still in " + opt.state_dir +
             ": the state the snapshot held (batches of the WAL files it retired) is LOST; "
             "counters restart from the replayed batches"
             "\nhint: GET /readyz shows this under wal_recovery.snapshot_quarantined");
}

// No snapshot, yet the WAL does not start at its first file: a snapshot retired the files
// before it and is gone now, so their batches are lost.
static void warn_if_wal_head_missing(const std::string& state_dir) {
  std::vector<uint64_t> files = list_wal_files(state_dir);
  if (files.empty() || files.front() == 0) return;  // a fresh state_dir starts at wal-0
  log::warn("state_dir " + state_dir + " has no snapshot, but its WAL starts at " +
            base_name(wal_path(state_dir, files.front())) +
            ": the batches before it (held by a snapshot that is gone) are lost"
            "\nhint: keep state_dir private to the server's user; restore the snapshot from a "
            "backup to get them back");
}

// One server per state_dir: a second one would interleave its WAL records and snapshots with
// the first's. flock(2) on <state_dir>/lock, held until the engine goes (or the process dies).
Status Engine::Impl::lock_state_dir() {
  const std::string path = opt.state_dir + "/lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return make_error("cannot open " + path + ": " + std::strerror(errno),
                      "point --state-dir at a directory of the server's own");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    return make_error("state_dir " + opt.state_dir + " is in use by another statherd-server (" +
                          (err == EWOULDBLOCK ? std::string("its lock is held")
                                              : std::string(std::strerror(err))) + ")",
                      "give each server its own --state-dir");
  }
  state_lock_fd = fd;
  return Ok{};
}

Status Engine::open(int64_t now_ms) {
  Impl& m = *impl_;
  Locked lock(m);
  m.last_snapshot_ms = now_ms;
  if (m.opt.state_dir.empty()) return Ok{};
  if (Status owner = check_state_dir_owner(m.opt.state_dir, ::geteuid()); !owner) return owner;
  std::error_code ec;
  if (!std::filesystem::exists(m.opt.state_dir, ec)) {
    std::filesystem::create_directories(m.opt.state_dir, ec);
    if (ec || ::chmod(m.opt.state_dir.c_str(), 0700) != 0)
      return make_error("cannot create state directory " + m.opt.state_dir + ": " + ec.message(),
                        "create it or point --state-dir at a writable directory");
  }
  if (Status held = m.lock_state_dir(); !held) return held;
  bool found = false, damaged = false;
  Status loaded = m.load_snapshot(found, damaged);
  if (!loaded && !damaged) return loaded;
  if (damaged) {
    m.quarantine_snapshot(loaded.error().message);
    found = false;
  } else if (!found) {
    warn_if_wal_head_missing(m.opt.state_dir);
  }
  uint64_t next_file = m.wal_start, replayed = 0;
  m.recovering = true;
  Status replay = m.replay_wal(next_file, replayed);
  m.recovering = false;
  if (!replay) return replay;
  if (found || replayed > 0)
    log::info("recovered state from " + m.opt.state_dir + ": snapshot " +
              (found ? "loaded" : "absent") + ", " + std::to_string(replayed) +
              " WAL batches replayed, " + std::to_string(m.st.wal_damaged_records) +
              " damaged WAL records skipped, " + std::to_string(m.st.wal_quarantined_records) +
              " quarantined");
  m.rebuild_seq_mirror();
  Status opened = m.wal.open(m.opt.state_dir, next_file, m.opt.fsync);
  if (!opened) return opened;
  if (m.st.wal_damaged_records + m.st.wal_quarantined_records == 0 && !damaged) return Ok{};
  // Retire the damaged files now (their bytes are in quarantine/), so the next start does not
  // report the same damage again.
  Status snap = m.write_snapshot(now_ms);
  if (!snap) log::warn("snapshot after recovery failed: " + snap.error().to_string());
  return Ok{};
}

}  // namespace statherd::server
