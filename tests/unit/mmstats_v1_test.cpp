// mmstats v1 parser: real bytes from clients/python/mmstats_writer.py and hand-built bytes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "agent/sources/mmstats_v1.h"

namespace statherd::agent {
namespace {

namespace fs = std::filesystem;

// Builds mmstats v1 bytes field by field (native byte order, like the writer).
struct Bytes {
  std::vector<uint8_t> b{1};
  template <class T>
  void put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof v);
  }
  void header(const std::string& label, const std::string& type, uint8_t wb) {
    put<uint16_t>(static_cast<uint16_t>(label.size()));
    b.insert(b.end(), label.begin(), label.end());
    put<uint16_t>(static_cast<uint16_t>(type.size()));
    b.insert(b.end(), type.begin(), type.end());
    b.push_back(wb);
  }
  template <class T>
  void buffered(const std::string& label, const std::string& type, uint8_t wb, T w, T r) {
    header(label, type, wb);
    if (wb == 0) { put(w); put(r); } else { put(r); put(w); }
  }
  template <class T>
  void unbuffered(const std::string& label, const std::string& type, T v) {
    header(label, type, 255);
    put(v);
  }
  void string(const std::string& label, size_t n, const std::string& v) {
    header(label, std::to_string(n) + "s", 255);
    std::string padded = v;
    padded.resize(n, '\0');
    b.insert(b.end(), padded.begin(), padded.end());
  }
  std::span<const uint8_t> span() const { return b; }
};

const MmstatsField* find(const std::vector<MmstatsField>& fields, const std::string& label) {
  for (const auto& f : fields)
    if (f.label == label) return &f;
  return nullptr;
}

TEST(MmstatsV1Parse, ReadsEveryTypeBufferedAndUnbuffered) {
  Bytes b;
  b.buffered<uint64_t>("c.count", "Q", 0, 999, 42);  // readable = write_buffer ^ 1 = 1
  b.buffered<uint64_t>("d.count", "Q", 1, 999, 43);  // readable = 0
  b.buffered<double>("avg", "d", 0, -1.0, 2.5);
  b.buffered<float>("f", "f", 1, 0.0f, 1.5f);
  b.buffered<int32_t>("i", "i", 0, 0, -7);
  b.buffered<uint32_t>("I", "I", 0, 0, 4000000000u);
  b.buffered<int16_t>("h", "h", 0, 0, -300);
  b.buffered<uint16_t>("H", "H", 0, 0, 65000);
  b.unbuffered<int8_t>("b", "b", -5);
  b.unbuffered<uint8_t>("B", "B", 200);
  b.unbuffered<uint8_t>("yes", "?", 1);
  b.unbuffered<int64_t>("q", "q", -1234567890123LL);
  b.unbuffered<double>("static.d", "d", 3.25);
  b.string("name", 8, "héllo");
  b.put<uint16_t>(0);
  auto r = parse_mmstats_v1(b.span());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const auto& f = *r;
  ASSERT_EQ(f.size(), 14u);
  EXPECT_EQ(f[0].number, 42);
  EXPECT_TRUE(f[0].buffered);
  EXPECT_EQ(f[0].type, "Q");
  EXPECT_EQ(f[1].number, 43);
  EXPECT_EQ(find(f, "avg")->number, 2.5);
  EXPECT_EQ(find(f, "f")->number, 1.5);
  EXPECT_EQ(find(f, "i")->number, -7);
  EXPECT_EQ(find(f, "I")->number, 4000000000.0);
  EXPECT_EQ(find(f, "h")->number, -300);
  EXPECT_EQ(find(f, "H")->number, 65000);
  EXPECT_EQ(find(f, "b")->number, -5);
  EXPECT_FALSE(find(f, "b")->buffered);
  EXPECT_EQ(find(f, "B")->number, 200);
  EXPECT_EQ(find(f, "yes")->kind, MmstatsValueKind::Bool);
  EXPECT_EQ(find(f, "yes")->number, 1);
  EXPECT_EQ(find(f, "q")->number, -1234567890123.0);
  EXPECT_EQ(find(f, "static.d")->number, 3.25);
  EXPECT_EQ(find(f, "name")->kind, MmstatsValueKind::Text);
  EXPECT_EQ(find(f, "name")->text, "héllo");
  EXPECT_EQ(find(f, "name")->type, "8s");
}

TEST(MmstatsV1Parse, EndOfFileWithoutTerminatorIsTheEnd) {
  Bytes b;
  b.unbuffered<uint32_t>("x", "I", 7);
  auto r = parse_mmstats_v1(b.span());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].number, 7);
}

TEST(MmstatsV1Parse, VersionOnlyAndZeroPageHaveNoFields) {
  std::vector<uint8_t> page(4096, 0);
  page[0] = 1;
  auto r = parse_mmstats_v1(page);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST(MmstatsV1Parse, ZeroLengthAndWrongVersionAreErrors) {
  auto empty = parse_mmstats_v1({});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("offset 0"), std::string::npos);
  std::vector<uint8_t> v2{2, 0, 0};
  auto bad = parse_mmstats_v1(v2);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("version"), std::string::npos);
}

TEST(MmstatsV1Parse, EveryTruncationIsAnErrorNamingAnOffset) {
  Bytes b;
  b.buffered<uint64_t>("requests.count", "Q", 0, 1, 2);
  b.string("status", 16, "ok");
  const size_t full = b.b.size();
  for (size_t n = 2; n < full; ++n) {
    std::vector<uint8_t> cut(b.b.begin(), b.b.begin() + static_cast<long>(n));
    auto r = parse_mmstats_v1(cut);
    // A cut exactly between two fields is a complete (shorter) file.
    const bool boundary = n == 1 + 2 + 14 + 2 + 1 + 1 + 16;
    if (boundary) {
      EXPECT_TRUE(r.ok()) << n;
      continue;
    }
    ASSERT_FALSE(r.ok()) << "cut at " << n;
    EXPECT_NE(r.error().message.find("at offset "), std::string::npos) << r.error().message;
  }
}

TEST(MmstatsV1Parse, HugeLabelAndBadTypesAreErrors) {
  Bytes huge;
  huge.put<uint16_t>(65535);
  huge.b.resize(100, 'x');
  EXPECT_FALSE(parse_mmstats_v1(huge.span()).ok());
  Bytes type;
  type.header("x", "Z", 255);
  type.put<uint64_t>(0);
  auto r = parse_mmstats_v1(type.span());
  ASSERT_FALSE(r.ok());
  // The type code is a byte of the file: named by its offset, never quoted (issue 9 item 11).
  EXPECT_NE(r.error().message.find("unsupported type code at offset"), std::string::npos);
  EXPECT_EQ(r.error().message.find('Z'), std::string::npos) << r.error().message;
  Bytes wb;
  wb.header("x", "Q", 7);
  wb.put<uint64_t>(0);
  wb.put<uint64_t>(0);
  EXPECT_FALSE(parse_mmstats_v1(wb.span()).ok());
  Bytes zero_string;
  zero_string.header("x", "0s", 255);
  EXPECT_FALSE(parse_mmstats_v1(zero_string.span()).ok());
}

TEST(MmstatsV1Parse, GarbageNeverCrashes) {
  uint32_t seed = 12345;
  for (int round = 0; round < 2000; ++round) {
    std::vector<uint8_t> junk(static_cast<size_t>(round % 300));
    for (auto& c : junk) {
      seed = seed * 1103515245u + 12345u;
      c = static_cast<uint8_t>(seed >> 16);
    }
    if (!junk.empty() && round % 2) junk[0] = 1;
    auto r = parse_mmstats_v1(junk);  // must not crash or read out of bounds (ASan build)
    (void)r;
  }
}

TEST(MmstatsV1Parse, LayoutCacheNoticesChangedHeaders) {
  Bytes b;
  b.buffered<uint64_t>("a.count", "Q", 0, 0, 5);
  b.put<uint16_t>(0);
  auto layout = parse_mmstats_v1_layout(b.span());
  ASSERT_TRUE(layout.ok());
  EXPECT_TRUE(mmstats_v1_layout_still_valid(b.span(), *layout));
  b.b[10] = 'X';  // inside the label
  EXPECT_FALSE(mmstats_v1_layout_still_valid(b.span(), *layout));
}

TEST(MmstatsV1Parse, ConcurrentWriterNeverYieldsMixedBytes) {
  // The writer follows the original's protocol: write values[write_buffer], then flip it. Each
  // value has 4 equal bytes, so a torn read would show mixed bytes.
  Bytes b;
  b.buffered<uint32_t>("c.count", "I", 0, 0, 0);
  auto layout = parse_mmstats_v1_layout(b.span());
  ASSERT_TRUE(layout.ok());
  const auto& field = layout->fields[0];
  volatile uint8_t* wb = b.b.data() + field.wb_offset;
  volatile uint8_t* values = wb + 1;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint8_t i = 1; !stop.load(std::memory_order_relaxed); ++i) {
      const uint8_t w = *wb;
      for (int k = 0; k < 4; ++k) values[w * 4 + k] = i;
      *wb = static_cast<uint8_t>(w ^ 1);
    }
  });
  int ok = 0;
  for (int i = 0; i < 200000; ++i) {
    double v = -1;
    if (read_mmstats_v1_value(b.span(), field, &v, nullptr).ok()) {
      ++ok;
      const auto u = static_cast<uint64_t>(v);
      ASSERT_EQ(u, (u & 0xFF) * 0x01010101ULL) << std::hex << u;
    }
  }
  stop = true;
  writer.join();
  EXPECT_GT(ok, 0);
}

TEST(MmstatsV1Parse, ValueThatNeverSettlesIsAnError) {
  // Stable bytes read fine; the retry bound is kMmstatsMaxReadTries (documented in the header).
  Bytes b;
  b.string("s", 300, "steady");
  auto layout = parse_mmstats_v1_layout(b.span());
  ASSERT_TRUE(layout.ok());
  std::string text;
  ASSERT_TRUE(read_mmstats_v1_value(b.span(), layout->fields[0], nullptr, &text).ok());
  EXPECT_EQ(text, "steady");
  auto short_span = std::span<const uint8_t>(b.b).first(b.b.size() - 1);
  EXPECT_FALSE(read_mmstats_v1_value(short_span, layout->fields[0], nullptr, &text).ok());
}

// Runs the Python writer with a script that sets every field type; returns the file's bytes.
std::vector<uint8_t> write_with_python(const fs::path& dir) {
  const std::string script = R"(
import sys
sys.path.insert(0, sys.argv[1] + '/clients/python')
import mmstats_writer as mw
class S(mw.MmStats):
    reqs = mw.CounterField(label='requests.count')
    avg = mw.AverageField(label='avg')
    mavg = mw.MovingAverageField(label='mavg', size=2)
    timer = mw.TimerField(label='timer', timer=lambda: 5.0)
    u64 = mw.UInt64Field(label='u64')
    u32 = mw.UIntField(label='u32')
    i32 = mw.IntField(label='i32')
    i16 = mw.ShortField(label='i16')
    u16 = mw.UShortField(label='u16')
    i8 = mw.ByteField(label='i8')
    f = mw.FloatField(label='f')
    d = mw.DoubleField(label='d')
    flag = mw.BoolField(label='flag')
    s = mw.StringField(label='s', size=10)
    sf = mw.StaticFloatField(label='sf', value=0.5)
s = S(path=sys.argv[2], cmd='fixture.py')
s.reqs.incr(); s.reqs.incr(41)
s.avg.add(1); s.avg.add(2)
s.mavg.add(1); s.mavg.add(2); s.mavg.add(4)
with s.timer: pass
s.u64 = 2**40; s.u32 = 7; s.i32 = -9; s.i16 = -2; s.u16 = 65535; s.i8 = -128
s.f = 0.25; s.d = -1.5; s.flag = True; s.s = 'x' * 20
print(s.filename)
)";
  const fs::path py = dir / "fixture_script.py";
  std::ofstream(py) << script;
  const fs::path out = dir / "out.txt";
  const std::string cmd = "/usr/bin/python3 " + py.string() + " " STATHERD_SOURCE_DIR " " +
                          dir.string() + " > " + out.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::string path;
  std::getline(std::ifstream(out), path);
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

TEST(MmstatsV1Parse, ReadsEveryFieldThePythonWriterWrites) {
  const fs::path dir = fs::temp_directory_path() / ("mmstats_v1_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const auto bytes = write_with_python(dir);
  ASSERT_EQ(bytes.size() % 4096, 0u);
  auto r = parse_mmstats_v1(bytes);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const auto& f = *r;
  EXPECT_EQ(find(f, "requests.count")->number, 42);
  EXPECT_EQ(find(f, "requests.count")->type, "Q");
  EXPECT_EQ(find(f, "avg")->number, 1.5);
  EXPECT_EQ(find(f, "mavg")->number, 3.0);  // window of 2: (2 + 4) / 2
  EXPECT_EQ(find(f, "timer")->number, 0.0);
  EXPECT_EQ(find(f, "u64")->number, 1099511627776.0);
  EXPECT_EQ(find(f, "u32")->number, 7);
  EXPECT_EQ(find(f, "i32")->number, -9);
  EXPECT_EQ(find(f, "i16")->number, -2);
  EXPECT_EQ(find(f, "u16")->number, 65535);
  EXPECT_EQ(find(f, "i8")->number, -128);
  EXPECT_FALSE(find(f, "i8")->buffered);
  EXPECT_EQ(find(f, "f")->number, 0.25);
  EXPECT_EQ(find(f, "d")->number, -1.5);
  EXPECT_EQ(find(f, "flag")->number, 1);
  EXPECT_EQ(find(f, "s")->text, "xxxxxxxxxx");
  EXPECT_EQ(find(f, "s")->type, "10s");
  EXPECT_EQ(find(f, "sf")->number, 0.5);
  EXPECT_EQ(find(f, "sys.pid")->type, "I");
  EXPECT_GT(find(f, "sys.pid")->number, 0);
  EXPECT_EQ(find(f, "sys.tid")->type, "q");
  EXPECT_EQ(find(f, "org.python.version")->type, "256s");
  EXPECT_EQ(find(f, "org.python.version")->text.substr(0, 2), "3.");
  EXPECT_GT(find(f, "sys.created")->number, 1.6e9);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace statherd::agent
