#include "server/sinks/remote_write_proto.h"

#include <snappy.h>

#include <algorithm>
#include <cstring>
#include <iterator>

namespace statherd::server {

namespace {

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

// Field key: (field_number << 3) | wire_type. Wire types: 0 varint, 1 fixed64, 2 length-delimited.
void put_key(std::string& out, uint32_t field, uint32_t wire_type) {
  put_varint(out, (uint64_t{field} << 3) | wire_type);
}

void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out.append(bytes.data(), bytes.size());
}

void put_double(std::string& out, uint32_t field, double value) {
  put_key(out, field, 1);
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  for (int i = 0; i < 8; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xff);  // little endian
}

std::string encode_series(const RwSeries& s) {
  std::string out, sub;
  for (const RwLabel& l : s.labels) {
    sub.clear();
    put_bytes(sub, 1, l.name);
    put_bytes(sub, 2, l.value);
    put_bytes(out, 1, sub);
  }
  for (const RwSample& smp : s.samples) {
    sub.clear();
    put_double(sub, 1, smp.value);
    put_key(sub, 2, 0);
    put_varint(sub, static_cast<uint64_t>(smp.timestamp_ms));  // int64: two's complement
    put_bytes(out, 2, sub);
  }
  return out;
}

}  // namespace

void sort_rw_labels(RwSeries& series) {
  std::sort(series.labels.begin(), series.labels.end(),
            [](const RwLabel& a, const RwLabel& b) { return a.name < b.name; });
}

std::string encode_write_request(const std::vector<RwSeries>& series) {
  std::string out;
  for (const RwSeries& s : series) put_bytes(out, 1, encode_series(s));
  return out;
}

std::string snappy_block_compress(std::string_view raw) {
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

RwRetry classify_remote_write_status(int status) {
  if (status >= 200 && status < 300) return RwRetry::Done;
  if (status == 0 || status == 429 || (status >= 500 && status < 600)) return RwRetry::Retry;
  return RwRetry::Drop;
}

RwReject classify_remote_write_rejection(std::string_view body) {
  auto has = [&](std::string_view text) { return body.find(text) != std::string_view::npos; };
  if (has("out of order")) return RwReject::OutOfOrder;
  if (has("duplicate sample")) return RwReject::Duplicate;
  if (has("out of bounds") || has("too old")) return RwReject::OutOfBounds;
  return RwReject::Other;
}

const char* rw_reject_name(RwReject reason) {
  switch (reason) {
    case RwReject::OutOfOrder: return "out_of_order";
    case RwReject::Duplicate: return "duplicate";
    case RwReject::OutOfBounds: return "out_of_bounds";
    case RwReject::Other: return "other";
  }
  return "other";
}

bool split_rw_batch(std::vector<RwSeries>& batch, std::vector<RwSeries>& second) {
  second.clear();
  if (batch.size() > 1) {
    const auto half = batch.begin() + static_cast<std::ptrdiff_t>(batch.size() / 2);
    second.assign(std::make_move_iterator(half), std::make_move_iterator(batch.end()));
    batch.erase(half, batch.end());
    return true;
  }
  if (batch.empty() || batch[0].samples.size() < 2) return false;
  RwSeries& one = batch[0];
  const auto half = one.samples.begin() + static_cast<std::ptrdiff_t>(one.samples.size() / 2);
  second.push_back({one.labels, std::vector<RwSample>(half, one.samples.end())});
  one.samples.erase(half, one.samples.end());
  return true;
}

}  // namespace statherd::server
