// The tests' pcapng reader (tests/common/pcapng_reader.h): a file from our writer read back,
// a hand-built file in the other byte order, and truncated or malformed input as an error.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "pcapng_reader.h"
#include "sinks/pcapng_writer.h"

namespace bpftap {
namespace {

namespace fs = std::filesystem;
namespace pcapng = test::pcapng;

constexpr uint64_t kT = 1'700'000'000'123'456'789ull;

std::vector<uint8_t> written_file() {
  std::string path = (fs::temp_directory_path() / ("bpftap-pcapng-reader-" + std::to_string(getpid()))).string();
  {
    auto w = PcapngWriter::open(path, {{"tap-a", 3, 1, 262144}, {"tap-b", 4, 1, 262144}});
    EXPECT_TRUE(w) << w.error().message();
    if (!w) return {};
    std::vector<uint8_t> bytes(61, 0xab);
    EXPECT_TRUE((*w)->write(Packet{kT, 0, Direction::In, 61, bytes}));
    EXPECT_TRUE((*w)->write(Packet{kT + 1, 1, Direction::Out, 1500, std::span(bytes).first(3)}));
    EXPECT_TRUE((*w)->write(Packet{kT + 2, 1, Direction::Unknown, 61, bytes}));
    EXPECT_TRUE((*w)->write_stats({{0, 3, 1, kT - 1000}, {1, 2, 0, 0}}, kT + 5));
    EXPECT_TRUE((*w)->close());
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> b{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  fs::remove(path);
  return b;
}

// Where each block of `b` ends (host byte order, lengths trusted).
std::vector<size_t> block_ends(const std::vector<uint8_t> &b) {
  std::vector<size_t> ends;
  for (size_t off = 0; off + 8 <= b.size();) {
    uint32_t len;
    std::memcpy(&len, &b[off + 4], 4);
    ends.push_back(off += len);
  }
  return ends;
}

TEST(PcapngReader, ReadsWhatOurWriterWrote) {
  auto b = written_file();
  ASSERT_FALSE(b.empty());
  auto f = pcapng::parse(b, {.strict = true});
  ASSERT_TRUE(f.ok()) << f.error;
  ASSERT_EQ(f.sections.size(), 1u);
  EXPECT_FALSE(f.sections[0].swapped);
  ASSERT_EQ(f.interfaces.size(), 2u);
  EXPECT_EQ(f.interfaces[0].name, "tap-a");
  EXPECT_EQ(f.interfaces[1].name, "tap-b");
  EXPECT_EQ(f.interfaces[1].linktype, 1);
  EXPECT_EQ(f.interfaces[1].snaplen, 262144u);
  EXPECT_EQ(f.interfaces[1].tsresol, 9);

  ASSERT_EQ(f.packets.size(), 3u);
  EXPECT_EQ(f.packets[0].iface, 0u);
  EXPECT_EQ(f.packets[0].ts_ns, kT);
  EXPECT_EQ(f.packets[0].caplen, 61u);
  EXPECT_EQ(f.packets[0].bytes, std::vector<uint8_t>(61, 0xab));
  EXPECT_EQ(f.packets[0].direction(), 1u);
  EXPECT_EQ(f.packets[1].iface, 1u);
  EXPECT_EQ(f.packets[1].ts_ns, kT + 1);
  EXPECT_EQ(f.packets[1].caplen, 3u);
  EXPECT_EQ(f.packets[1].len, 1500u);
  EXPECT_EQ(f.packets[1].direction(), 2u);
  EXPECT_FALSE(f.packets[2].flags.has_value());
  EXPECT_EQ(f.packets[2].direction(), 0u);

  ASSERT_EQ(f.stats.size(), 2u);
  EXPECT_EQ(f.stats[0].iface, 0u);
  EXPECT_EQ(f.stats[0].ts_ns, kT + 5);
  EXPECT_EQ(f.stats[0].ifrecv, 3u);
  EXPECT_EQ(f.stats[0].ifdrop, 1u);
  EXPECT_EQ(f.stats[0].starttime_ns, kT - 1000);
  EXPECT_EQ(f.stats[0].endtime_ns, kT + 5);
  EXPECT_EQ(f.stats[1].ifrecv, 2u);
  EXPECT_FALSE(f.stats[1].starttime_ns.has_value());  // no start known: neither time written
  EXPECT_FALSE(f.stats[1].osdrop.has_value());
}

// Cut anywhere: whole blocks read, an error unless the cut falls between two blocks.
TEST(PcapngReader, TruncatedFileIsAnError) {
  auto b = written_file();
  ASSERT_FALSE(b.empty());
  auto ends = block_ends(b);
  ASSERT_EQ(ends.back(), b.size());
  EXPECT_FALSE(pcapng::parse({}).ok());
  for (size_t n = 1; n < b.size(); n++) {
    SCOPED_TRACE("first " + std::to_string(n) + " bytes");
    auto f = pcapng::parse(std::span(b).first(n));
    bool boundary = std::find(ends.begin(), ends.end(), n) != ends.end();
    EXPECT_EQ(f.ok(), boundary) << f.error;
  }
  auto f = pcapng::parse(std::span(b).first(b.size() - 1));
  EXPECT_EQ(f.packets.size(), 3u);  // what came before the cut stays
  EXPECT_EQ(f.stats.size(), 1u);
  EXPECT_NE(f.error.find("offset " + std::to_string(ends[ends.size() - 2])), std::string::npos) << f.error;
}

TEST(PcapngReader, BadBlockLengthIsAnError) {
  auto b = written_file();
  ASSERT_FALSE(b.empty());
  size_t epb = block_ends(b)[2];  // SHB, two IDBs, then the first EPB
  auto with_length = [&](size_t at, uint32_t len) {
    auto c = b;
    std::memcpy(&c[at], &len, 4);
    return pcapng::parse(c);
  };
  uint32_t len;
  std::memcpy(&len, &b[epb + 4], 4);
  for (uint32_t bad : {0u, 8u, len + 1, len + 4, len - 4, 0xfffffff0u}) {
    SCOPED_TRACE("length " + std::to_string(bad));
    auto f = with_length(epb + 4, bad);
    EXPECT_FALSE(f.ok());
    EXPECT_NE(f.error.find("offset " + std::to_string(epb)), std::string::npos) << f.error;
  }
  EXPECT_FALSE(with_length(epb + len - 4, len + 4).ok());  // the trailing copy differs
  EXPECT_FALSE(with_length(epb + 20, 1u << 20).ok());       // captured length beyond the block
  EXPECT_FALSE(with_length(epb + 8, 7).ok());               // an interface never declared
}

// A big-endian file on this (little-endian) host, or the other way round: a section, an
// interface in microseconds, a block of an unknown type, an EPB, an SPB and an ISB.
struct Builder {
  bool swap;
  std::vector<uint8_t> out;
  std::vector<uint8_t> body;
  template <class T> void put(T v) {
    uint8_t raw[sizeof v];
    std::memcpy(raw, &v, sizeof v);
    if (swap) std::reverse(std::begin(raw), std::end(raw));
    body.insert(body.end(), std::begin(raw), std::end(raw));
  }
  void bytes(const std::string &s) {
    body.insert(body.end(), s.begin(), s.end());
    body.resize((body.size() + 3) & ~size_t{3});
  }
  void option(uint16_t code, const std::string &v) {
    put(code);
    put(uint16_t(v.size()));
    bytes(v);
  }
  void block(uint32_t type) {
    auto b = std::move(body);
    body.clear();
    put(type);
    put(uint32_t(b.size() + 12));
    body.insert(body.end(), b.begin(), b.end());
    put(uint32_t(b.size() + 12));
    out.insert(out.end(), body.begin(), body.end());
    body.clear();
  }
};

TEST(PcapngReader, OtherByteOrderUnknownBlocksAndSimplePackets) {
  Builder w{true, {}, {}};
  w.put(uint32_t{0x1A2B3C4D});
  w.put(uint16_t{1});
  w.put(uint16_t{0});
  w.put(uint64_t(-1));
  w.option(3, "elsewhere");
  w.block(0x0A0D0D0A);
  w.put(uint16_t{101});
  w.put(uint16_t{0});
  w.put(uint32_t{4});
  w.option(2, "eth9");
  w.option(9, std::string(1, '\x06'));
  w.block(1);
  w.bytes("xyz");
  w.block(0x0BAD);
  w.put(uint32_t{0});
  w.put(uint32_t{0});
  w.put(uint32_t{2'500'000});  // 2.5 s in microseconds
  w.put(uint32_t{5});
  w.put(uint32_t{9});
  w.bytes("hello");
  w.option(2, std::string("\x00\x00\x00\x02", 4));
  w.block(6);
  w.put(uint32_t{10});
  w.bytes("0123456789");  // beyond the snaplen of 4
  w.block(3);
  w.put(uint32_t{0});
  w.put(uint32_t{0});
  w.put(uint32_t{3'000'000});
  w.put(uint16_t{4});
  w.put(uint16_t{8});
  w.put(uint64_t{42});
  w.block(5);

  auto f = pcapng::parse(w.out);
  ASSERT_TRUE(f.ok()) << f.error;
  EXPECT_TRUE(f.sections[0].swapped);
  EXPECT_EQ(f.sections[0].os, "elsewhere");
  EXPECT_EQ(f.unknown_blocks, 1u);
  ASSERT_EQ(f.interfaces.size(), 1u);
  EXPECT_EQ(f.interfaces[0].linktype, 101);
  EXPECT_EQ(f.interfaces[0].name, "eth9");
  ASSERT_EQ(f.packets.size(), 2u);
  EXPECT_EQ(f.packets[0].ts_ns, 2'500'000'000ull);
  EXPECT_EQ(f.packets[0].len, 9u);
  EXPECT_EQ(f.packets[0].bytes, std::vector<uint8_t>({'h', 'e', 'l', 'l', 'o'}));
  EXPECT_EQ(f.packets[0].direction(), 2u);
  EXPECT_EQ(f.packets[1].len, 10u);
  EXPECT_EQ(f.packets[1].bytes, std::vector<uint8_t>({'0', '1', '2', '3'}));
  ASSERT_EQ(f.stats.size(), 1u);
  EXPECT_EQ(f.stats[0].ts_ns, 3'000'000'000ull);
  EXPECT_EQ(f.stats[0].ifrecv, 42u);
  EXPECT_FALSE(f.stats[0].ifdrop.has_value());

  EXPECT_FALSE(pcapng::parse(w.out, {.strict = true}).ok());  // the unknown block
  auto bad = w.out;
  bad[8] ^= 0xff;  // the byte-order magic
  EXPECT_FALSE(pcapng::parse(bad).ok());
}

} // namespace
} // namespace bpftap
