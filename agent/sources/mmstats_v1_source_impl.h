// Internal to the mmstats v1 source: MmstatsV1Source::Impl and the state it keeps per file.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "agent/sources/mmstats_v1.h"
#include "agent/sources/process_table.h"
#include "agent/sources/start_time_memory.h"
#include "agent/sources/stat_file_set.h"

namespace statherd::agent {

// One mmstats v1 file: the shared bookkeeping and mapping (stat_file_set.h) plus what the
// decoder keeps: the file name's identity, the parsed layout, sample names and kinds.
struct MmstatsMappedFile : TrackedStatFile {
  MmstatsFileName name;
  int64_t start_time_ms = 0;
  bool start_is_birth = false;  // start_time_ms is the file's birth time (see common/sample.h)
  bool layout_ok = false;
  MmstatsLayout layout;
  std::vector<std::string> sample_names;
  std::vector<Kind> kinds;
  std::span<const uint8_t> copied;  // --once: a pread() copy owned by the source (not mapped)

  bool mapped() const { return map.mapped(); }
  size_t size() const { return mapped() ? map.size() : copied.size(); }
  std::span<const uint8_t> bytes() const {
    return mapped() ? std::span<const uint8_t>(map.data(), map.size()) : copied;
  }
  void unmap() {
    map.unmap();
    copied = {};
    layout_ok = false;
  }
};

struct MmstatsV1Source::Impl {
  MmstatsV1Options options;
  LabelPatternSet counters;
  StatFileSet<MmstatsMappedFile> files;
  ProcessTable processes;
  StartTimeMemory start_times;  // across agent restarts: a dead writer keeps its identity
  std::string scratch_text;
  // --once (options.one_shot): one file object and two copy buffers, reused for every file.
  MmstatsMappedFile copied_file;
  std::vector<uint8_t> copy, check_copy;
  StatFileOpener opener;     // --once opens files relative to their directory
  // Mapped files are read through a private image (see snapshot_mapped), reused for every file.
  std::vector<uint8_t> image, field_copies;
  std::vector<uint8_t> torn_fields;  // per field of the last snapshot: 1 if it kept changing

  explicit Impl(MmstatsV1Options o)
      : options(std::move(o)),
        counters(options.counter_patterns.empty() ? default_mmstats_counter_patterns()
                                                  : options.counter_patterns),
        processes(options.proc_root, "mmstats_v1"),
        start_times(options.start_times_file) {
    if (options.globs.empty()) options.globs.push_back(default_mmstats_glob());
  }

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
  Status copy_consistent(MmstatsMappedFile& f, const StatFile& file);
};

}  // namespace statherd::agent
