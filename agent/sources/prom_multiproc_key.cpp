// The JSON key of a prometheus_client .db entry: [metric, sample, {label: value}, help], as
// json.dumps(..., sort_keys=True) writes it (ASCII with \uXXXX escapes by default; raw UTF-8
// is accepted too). A small strict reader for exactly that shape: no library, no allocation
// beyond the strings it returns, never past the view.
#include <algorithm>

#include "agent/sources/prom_multiproc.h"

namespace statherd::agent {
namespace {

class KeyReader {
 public:
  explicit KeyReader(std::string_view text) : s_(text) {}

  Status fail(const std::string& what) {
    return make_error("bad entry key: " + what + " at key byte " + std::to_string(pos_),
                      "the file is corrupt or was not written by prometheus_client");
  }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' ||
                                s_[pos_] == '\r'))
      ++pos_;
  }
  bool take(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool at_end() {
    skip_space();
    return pos_ == s_.size();
  }
  Status string(std::string& out);

 private:
  Status hex4(uint32_t& out);
  static void append_utf8(std::string& out, uint32_t cp);

  std::string_view s_;
  size_t pos_ = 0;
};

Status KeyReader::hex4(uint32_t& out) {
  if (s_.size() - pos_ < 4) return fail("\\u escape cut off");
  out = 0;
  for (int i = 0; i < 4; ++i) {
    char c = s_[pos_++];
    uint32_t d;
    if (c >= '0' && c <= '9') d = static_cast<uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<uint32_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = static_cast<uint32_t>(c - 'A' + 10);
    else return fail("bad hex digit in \\u escape");
    out = out * 16 + d;
  }
  return Ok{};
}

void KeyReader::append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

Status KeyReader::string(std::string& out) {
  out.clear();
  if (!take('"')) return fail("expected a string");
  for (;;) {
    if (pos_ >= s_.size()) return fail("string not closed");
    char c = s_[pos_++];
    if (c == '"') return Ok{};
    if (static_cast<unsigned char>(c) < 0x20) return fail("control byte in string");
    if (c != '\\') {
      out += c;
      continue;
    }
    if (pos_ >= s_.size()) return fail("escape cut off");
    char e = s_[pos_++];
    switch (e) {
      case '"': case '\\': case '/': out += e; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        uint32_t cp;
        if (auto st = hex4(cp); !st) return st;
        if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(pos_, 2) == "\\u") {
          size_t save = pos_;
          pos_ += 2;
          uint32_t low;
          if (auto st = hex4(low); !st) return st;
          if (low >= 0xDC00 && low < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          else pos_ = save;  // a lone high surrogate; the next escape stands alone
        }
        if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;  // lone surrogate: not encodable in UTF-8
        append_utf8(out, cp);
        break;
      }
      default: return fail("unknown escape");
    }
  }
}

}  // namespace

Result<PromDbKey> parse_prom_db_key(std::string_view json) {
  KeyReader r(json);
  PromDbKey key;
  if (!r.take('[')) return r.fail("expected '['").error();
  if (auto st = r.string(key.metric); !st) return st.error();
  if (!r.take(',')) return r.fail("expected ',' after the metric name").error();
  if (auto st = r.string(key.sample); !st) return st.error();
  if (!r.take(',') || !r.take('{')) return r.fail("expected the labels object").error();
  if (!r.take('}')) {
    do {
      std::pair<std::string, std::string> label;
      if (auto st = r.string(label.first); !st) return st.error();
      if (!r.take(':')) return r.fail("expected ':' after a label name").error();
      if (auto st = r.string(label.second); !st) return st.error();
      key.labels.push_back(std::move(label));
    } while (r.take(','));
    if (!r.take('}')) return r.fail("expected '}' after the labels").error();
  }
  if (!r.take(',')) return r.fail("expected ',' before the help text").error();
  if (auto st = r.string(key.help); !st) return st.error();
  if (!r.take(']') || !r.at_end()) return r.fail("expected ']' ending the key").error();
  // Sorted by name; a repeated name keeps its last value, as json.loads does.
  std::stable_sort(key.labels.begin(), key.labels.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  Tags unique;
  for (auto& l : key.labels) {
    if (!unique.empty() && unique.back().first == l.first) unique.back() = std::move(l);
    else unique.push_back(std::move(l));
  }
  key.labels = std::move(unique);
  return key;
}

}  // namespace statherd::agent
