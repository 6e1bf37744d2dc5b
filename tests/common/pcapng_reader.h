// The one pcapng reader of the tests (unit tests, pcapcmp): section headers, interface
// descriptions, enhanced and simple packets, interface statistics; other blocks are counted and
// skipped. Either byte order. Every length is checked against the block and the input, so a
// truncated or malformed file gives File::error (and what was read before it), never a crash.
//
//   auto f = pcapng::read_file(path);
//   if (!f.ok()) ... f.error ...;
//   for (const auto &p : f.packets) ... f.interfaces[p.iface].name, p.ts_ns, p.bytes ...;
//
// Header-only, standard library only: any test target or tool may include it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace bpftap::test::pcapng {

struct Section {
  bool swapped = false;                // written in the other byte order than this host's
  std::string hardware, os, userappl;  // shb_hardware, shb_os, shb_userappl
};

struct Interface {
  uint16_t linktype = 0;
  uint32_t snaplen = 0;
  std::string name;     // if_name ("" without one)
  uint8_t tsresol = 6;  // if_tsresol as written: 10^-n s, or 2^-n s with the top bit set
};

struct Packet {
  uint32_t iface = 0;  // index into File::interfaces (over all sections)
  uint64_t ts_ns = 0;  // since the epoch (0 in a simple packet block)
  uint32_t caplen = 0, len = 0;
  std::vector<uint8_t> bytes;
  std::optional<uint32_t> flags;  // epb_flags
  // epb_flags' direction: 1 inbound, 2 outbound, 0 unknown.
  uint32_t direction() const { return flags ? *flags & 3 : 0; }
};

struct Stats {  // an interface statistics block
  uint32_t iface = 0;
  uint64_t ts_ns = 0;
  std::optional<uint64_t> starttime_ns, endtime_ns;                          // isb_starttime, isb_endtime
  std::optional<uint64_t> ifrecv, ifdrop, filteraccept, osdrop, usrdeliv;  // isb_ifrecv ...
};

struct File {
  std::string error;  // "" if the whole input was read, else what was wrong and at which offset
  std::vector<Section> sections;
  std::vector<Interface> interfaces;
  std::vector<Packet> packets;
  std::vector<Stats> stats;
  size_t unknown_blocks = 0;  // skipped
  bool ok() const { return error.empty(); }
};

// strict: what our writer promises on top of the format: options end with opt_endofopt exactly
// at the end of the block, padding is zero, no block of another type than the five above.
struct ReadOptions {
  bool strict = false;
};

namespace detail {

class Parser {
public:
  Parser(std::span<const uint8_t> in, ReadOptions opt) : in_(in), opt_(opt) {}

  File run() {
    if (in_.empty()) f_.error = "empty input";
    for (size_t off = 0; off < in_.size() && f_.ok(); off += len_) {
      if (!block(off)) f_.error = "offset " + std::to_string(off) + ": " + f_.error;
    }
    return std::move(f_);
  }

private:
  static constexpr uint32_t kShb = 0x0A0D0D0A, kIdb = 1, kSpb = 3, kIsb = 5, kEpb = 6;
  static constexpr uint32_t kByteOrderMagic = 0x1A2B3C4D;

  static size_t pad4(size_t n) { return (n + 3) & ~size_t{3}; }

  template <class T> T get(std::span<const uint8_t> b, size_t off) const {
    uint8_t raw[sizeof(T)];
    std::memcpy(raw, b.data() + off, sizeof(T));
    if (swapped_) std::reverse(std::begin(raw), std::end(raw));
    T v;
    std::memcpy(&v, raw, sizeof(T));
    return v;
  }
  template <class T> T get(size_t off) const { return get<T>(in_, off); }

  bool fail(std::string why) {
    f_.error = std::move(why);
    return false;
  }

  // One block at `off`: its lengths checked, then its body [off + 8, end).
  bool block(size_t off) {
    if (in_.size() - off < 12) return fail("truncated block header");
    uint32_t type = get<uint32_t>(off);
    if (type == kShb) {  // the byte order is the section's: read it before the length
      uint32_t magic;
      std::memcpy(&magic, in_.data() + off + 8, 4);
      if (magic != kByteOrderMagic && magic != swap32(kByteOrderMagic)) return fail("bad byte-order magic");
      swapped_ = magic != kByteOrderMagic;
    } else if (f_.sections.empty()) {
      return fail("no section header block first");
    }
    len_ = get<uint32_t>(off + 4);
    if (len_ < 12 || len_ % 4 != 0 || len_ > in_.size() - off)
      return fail("bad block length " + std::to_string(len_) + " (" + std::to_string(in_.size() - off) + " bytes left)");
    if (get<uint32_t>(off + len_ - 4) != len_) return fail("trailing block length differs");
    std::span<const uint8_t> body = in_.subspan(off + 8, len_ - 12);
    switch (type) {
    case kShb: return shb(body);
    case kIdb: return idb(body);
    case kSpb: return spb(body);
    case kIsb: return isb(body);
    case kEpb: return epb(body);
    default:
      if (opt_.strict) return fail("unexpected block type " + std::to_string(type));
      f_.unknown_blocks++;
      return true;
    }
  }

  static uint32_t swap32(uint32_t v) {
    return (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
  }

  // Calls fn(code, value) for each option of b from `off`; false if they overrun the block.
  template <class Fn> bool options(std::span<const uint8_t> b, size_t off, Fn fn) {
    while (off + 4 <= b.size()) {
      auto code = get<uint16_t>(b, off), len = get<uint16_t>(b, off + 2);
      if (code == 0) return !opt_.strict || (len == 0 && off + 4 == b.size()) || fail("opt_endofopt not at the end");
      if (len > b.size() - off - 4) return fail("option " + std::to_string(code) + " overruns its block");
      fn(code, b.subspan(off + 4, len));
      off += 4 + pad4(len);
    }
    return !opt_.strict || off == b.size() || fail("options do not end with the block");
  }

  static std::string str(std::span<const uint8_t> v) { return {v.begin(), v.end()}; }

  // A 64-bit timestamp (high word first) of `iface` in ns; if_tsresol was checked by idb().
  uint64_t ts_ns(uint32_t iface, uint32_t high, uint32_t low) const {
    uint64_t ticks = uint64_t{high} << 32 | low;
    uint8_t r = f_.interfaces[iface].tsresol;
    if (r & 0x80) {  // 2^-n s, n <= 32
      unsigned n = r & 0x7f;
      return (ticks >> n) * 1'000'000'000ull + (((ticks & ((uint64_t{1} << n) - 1)) * 1'000'000'000ull) >> n);
    }
    uint64_t scale = 1;
    for (unsigned i = 9; i < r; i++) scale *= 10;  // finer than ns: divide
    if (r > 9) return ticks / scale;
    for (unsigned i = r; i < 9; i++) scale *= 10;
    return ticks * scale;
  }

  // The file-wide index of the section's interface `local`.
  bool iface(uint32_t local, uint32_t &out) {
    if (local >= f_.interfaces.size() - section_base_) return fail("undeclared interface " + std::to_string(local));
    out = uint32_t(section_base_ + local);
    return true;
  }

  bool shb(std::span<const uint8_t> b) {
    if (b.size() < 16) return fail("short section header block");
    if (get<uint16_t>(b, 4) != 1) return fail("unsupported pcapng version " + std::to_string(get<uint16_t>(b, 4)));
    Section s{swapped_, {}, {}, {}};
    section_base_ = f_.interfaces.size();
    bool ok = options(b, 16, [&s](uint16_t code, std::span<const uint8_t> v) {
      if (code == 2) s.hardware = str(v);
      if (code == 3) s.os = str(v);
      if (code == 4) s.userappl = str(v);
    });
    f_.sections.push_back(std::move(s));
    return ok;
  }

  bool idb(std::span<const uint8_t> b) {
    if (b.size() < 8) return fail("short interface description block");
    Interface i{get<uint16_t>(b, 0), get<uint32_t>(b, 4), {}, 6};
    if (!options(b, 8, [&i](uint16_t code, std::span<const uint8_t> v) {
          if (code == 2) i.name = str(v);
          if (code == 9 && v.size() == 1) i.tsresol = v[0];
        }))
      return false;
    if ((i.tsresol & 0x80) ? (i.tsresol & 0x7f) > 32 : i.tsresol > 19)
      return fail("unsupported if_tsresol " + std::to_string(i.tsresol));
    f_.interfaces.push_back(std::move(i));
    return true;
  }

  // Packet bytes at `off`, padded to 4 bytes within the block.
  bool data(std::span<const uint8_t> b, size_t off, Packet &p) {
    if (pad4(p.caplen) > b.size() - off) return fail("packet data overruns its block");
    p.bytes.assign(b.begin() + ptrdiff_t(off), b.begin() + ptrdiff_t(off + p.caplen));
    if (opt_.strict && std::any_of(b.begin() + ptrdiff_t(off + p.caplen), b.begin() + ptrdiff_t(off + pad4(p.caplen)),
                                   [](uint8_t c) { return c != 0; }))
      return fail("non-zero padding");
    return true;
  }

  bool epb(std::span<const uint8_t> b) {
    Packet p;
    if (b.size() < 20) return fail("short enhanced packet block");
    if (!iface(get<uint32_t>(b, 0), p.iface)) return false;
    p.ts_ns = ts_ns(p.iface, get<uint32_t>(b, 4), get<uint32_t>(b, 8));
    p.caplen = get<uint32_t>(b, 12);
    p.len = get<uint32_t>(b, 16);
    if (!data(b, 20, p)) return false;
    if (!options(b, 20 + pad4(p.caplen), [&](uint16_t code, std::span<const uint8_t> v) {
          if (code == 2 && v.size() == 4) p.flags = get<uint32_t>(v, 0);
        }))
      return false;
    f_.packets.push_back(std::move(p));
    return true;
  }

  bool spb(std::span<const uint8_t> b) {  // interface 0; as many bytes as the snaplen and the block hold
    Packet p;
    if (b.size() < 4) return fail("short simple packet block");
    if (!iface(0, p.iface)) return false;
    p.len = get<uint32_t>(b, 0);
    uint32_t snaplen = f_.interfaces[p.iface].snaplen;
    p.caplen = std::min<uint32_t>(p.len, uint32_t(b.size() - 4));
    if (snaplen != 0) p.caplen = std::min(p.caplen, snaplen);
    if (!data(b, 4, p)) return false;
    f_.packets.push_back(std::move(p));
    return true;
  }

  bool isb(std::span<const uint8_t> b) {
    Stats s;
    if (b.size() < 12) return fail("short interface statistics block");
    if (!iface(get<uint32_t>(b, 0), s.iface)) return false;
    s.ts_ns = ts_ns(s.iface, get<uint32_t>(b, 4), get<uint32_t>(b, 8));
    std::optional<uint64_t> *counters[] = {&s.ifrecv, &s.ifdrop, &s.filteraccept, &s.osdrop, &s.usrdeliv};
    if (!options(b, 12, [&](uint16_t code, std::span<const uint8_t> v) {
          if (v.size() != 8) return;
          if (code == 2 || code == 3)
            (code == 2 ? s.starttime_ns : s.endtime_ns) = ts_ns(s.iface, get<uint32_t>(v, 0), get<uint32_t>(v, 4));
          if (code >= 4 && code <= 8) *counters[code - 4] = get<uint64_t>(v, 0);
        }))
      return false;
    f_.stats.push_back(s);
    return true;
  }

  std::span<const uint8_t> in_;
  ReadOptions opt_;
  File f_;
  bool swapped_ = false;
  size_t section_base_ = 0;  // index in f_.interfaces of the section's first interface
  uint32_t len_ = 0;         // of the current block
};

} // namespace detail

inline File parse(std::span<const uint8_t> in, ReadOptions opt = {}) { return detail::Parser(in, opt).run(); }

inline File read_file(const std::string &path, ReadOptions opt = {}) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return File{.error = "cannot open " + path};
  std::vector<uint8_t> b{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  return parse(b, opt);
}

} // namespace bpftap::test::pcapng
