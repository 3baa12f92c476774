// Internal to the prom_multiproc source: PromMultiprocSource::DirState and its mapped files.
#pragma once

#include <dirent.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/sources/prom_multiproc.h"
#include "agent/sources/mapped_stat_file.h"
#include "agent/sources/prom_multiproc_aggregate.h"

namespace statherd::agent {

// One .db file: its mapping (mapped_stat_file.h) and what the decoder keeps of it.
struct PromDbFile {
  PromDbFileName name;
  uint64_t inode = 0;  // from the lstat() (or directory entry) that found it
  MappedStatFile map;
  PromDbLayout layout;
  std::vector<PromEntryTarget> targets;  // parallel to layout.entries
  uint64_t seen_scan = 0;
};

struct PromMultiprocSource::DirState {
  PromMultiprocDir dir;
  std::string app;
  uint64_t max_file_bytes = kDefaultMaxFileBytes;
  int64_t first_read_ms = 0;
  bool saw_empty = false;
  bool fresh = false;
  bool warned_missing = false;
  uint64_t scan = 0;
  PromSeriesTable table;
  std::unordered_map<std::string, std::unique_ptr<PromDbFile>> files;
  std::vector<PromDbFile*> live;  // this scrape's files, in directory order
  std::vector<uint8_t> buffer;    // one-shot copies
  std::vector<uint8_t> image;     // guarded copy of the mapped bytes extend() parses
  std::vector<double> values;     // guarded copy of one mapped file's values (and timestamps)

  std::string file_path(const std::string& name) const { return dir.path + "/" + name; }
  Status extend(PromDbFile& f, std::span<const uint8_t> bytes);
  bool extend_mapped(PromDbFile& f, Status& extended, std::string& fault);
  bool copy_values(const PromDbFile& f, std::string& fault);
  void drop_faulted(const std::string& name, std::string fault, std::vector<SourceError>& errors);
  MapRules map_rules() const { return {max_file_bytes, kPromDbHeaderBytes, nullptr}; }
  void visit_mapped(int dir_fd, const dirent& entry, std::vector<SourceError>& errors);
  // is_regular: the directory entry said DT_REG (no lstat needed before the open).
  void visit_copied(int dir_fd, const char* name, bool is_regular,
                    std::vector<SourceError>& errors);
  bool retire(PromDbFile& f, std::string& fault);
  void apply(const PromDbFile& f, std::span<const uint8_t> bytes);
  bool apply_mapped(const PromDbFile& f, std::string& fault);
};

}  // namespace statherd::agent
