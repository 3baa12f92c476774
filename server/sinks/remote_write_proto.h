// Prometheus remote-write 1.0 payload: a prometheus.WriteRequest protobuf, snappy block-compressed.
//
// Why hand-encoded instead of protoc: the writer needs four tiny messages (WriteRequest,
// TimeSeries, Label, Sample) and only encodes them; the encoder is ~40 lines of varint /
// length-delimited / fixed64 writing, keeps protoc and libprotobuf out of the build, and the
// unit test decodes the bytes back with an independent decoder. Field numbers (remote-write 1.0,
// prompb/types.proto + remote.proto):
//   WriteRequest { repeated TimeSeries timeseries = 1; }
//   TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//   Label        { string name = 1; string value = 2; }
//   Sample       { double value = 1; int64 timestamp = 2; }   // timestamp: unix ms
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace statherd::server {

struct RwLabel {
  std::string name, value;
  bool operator==(const RwLabel&) const = default;
};
struct RwSample {
  double value = 0;
  int64_t timestamp_ms = 0;
  bool operator==(const RwSample&) const = default;
};
struct RwSeries {
  std::vector<RwLabel> labels;    // includes __name__
  std::vector<RwSample> samples;  // time order
};

// Sorts labels by name (byte order, as the spec asks; "__name__" is one of them).
void sort_rw_labels(RwSeries& series);
// The WriteRequest bytes (uncompressed).
std::string encode_write_request(const std::vector<RwSeries>& series);
// Snappy block format (not the framing format), as remote write requires.
std::string snappy_block_compress(std::string_view raw);

// What to do with a batch after an HTTP status (or a transport error: status 0).
enum class RwRetry : uint8_t { Done, Retry, Drop };
// 2xx: Done; 5xx, 429 and 0 (connection error / timeout): Retry; any other status: Drop.
RwRetry classify_remote_write_status(int status);

// Why a receiver refused a request with a 4xx, from its answer's body. Prometheus refuses a
// whole request (it rolls back every sample) when one sample is out of order, a duplicate with
// another value, or outside its time window; the other samples would be accepted on their own.
enum class RwReject : uint8_t { OutOfOrder, Duplicate, OutOfBounds, Other };
RwReject classify_remote_write_rejection(std::string_view body);
// "out_of_order", "duplicate", "out_of_bounds", "other": the self-metrics' reason label.
const char* rw_reject_name(RwReject reason);
// Splits a batch in two halves (by series; a single series by its samples, earlier ones first)
// to resend the valid part of a refused request. False for a batch of one sample.
bool split_rw_batch(std::vector<RwSeries>& batch, std::vector<RwSeries>& second);

}  // namespace statherd::server
