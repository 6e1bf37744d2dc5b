// Capture-file writers and tcpdump-style rotation: files are read back with libpcap, the tests'
// pcapng reader (tests/common), and (when installed) tshark and capinfos.
#include <fcntl.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sinks/pcap_writer.h"
#include "sinks/pcapng_writer.h"
#include "pcapng_reader.h"
#include "sinks/rotating_sink.h"
#include "writev_hook.h"

namespace bpftap {
namespace {

namespace fs = std::filesystem;
namespace pcapng = test::pcapng;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---- helpers ----

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "bpftap-sinks-XXXXXX").string();
    path = mkdtemp(tmpl.data()) ? tmpl : std::string();
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string &name) const { return path + "/" + name; }
  std::set<std::string> list() const {
    std::set<std::string> names;
    for (const auto &e : fs::directory_iterator(path)) names.insert(e.path().filename().string());
    return names;
  }
};

struct TestPacket {
  uint64_t ts_ns;
  uint32_t iface;
  Direction dir;
  uint32_t wire_len;
  std::vector<uint8_t> bytes;
  Packet view() const { return Packet{ts_ns, iface, dir, wire_len, bytes}; }
};

std::vector<InterfaceInfo> two_ifaces() {
  return {{"tap-vm1", 7, 1, 262144}, {"tap-vm2", 9, 1, 65535}};
}

// Lengths cover every padding case; both interfaces and all directions appear.
std::vector<TestPacket> sample_packets() {
  const size_t sizes[] = {1, 2, 3, 4, 60, 1514};
  const Direction dirs[] = {Direction::In, Direction::Out, Direction::Unknown};
  std::vector<TestPacket> pkts;
  for (size_t i = 0; i < std::size(sizes); i++) {
    TestPacket p;
    p.ts_ns = 1'700'000'000'123'456'789ull + i * 1'000'000'007ull;
    p.iface = uint32_t(i % 2);
    p.dir = dirs[i % 3];
    p.wire_len = uint32_t(sizes[i] + (i == 4 ? 40 : 0)); // one packet cut short by a snaplen
    for (size_t j = 0; j < sizes[i]; j++) p.bytes.push_back(uint8_t(i * 31 + j * 7 + 1));
    pkts.push_back(std::move(p));
  }
  return pkts;
}

// Packets of `size` bytes, one per second from t0 (+0.5 s so seconds are unambiguous).
std::vector<TestPacket> packets_at(time_t t0, const std::vector<int> &offsets, size_t size = 100) {
  std::vector<TestPacket> pkts;
  for (int off : offsets) {
    TestPacket p{uint64_t(t0 + off) * 1'000'000'000ull + 500'000'000ull, 0, Direction::In,
                 uint32_t(size), std::vector<uint8_t>(size, uint8_t(off))};
    pkts.push_back(std::move(p));
  }
  return pkts;
}

struct ReadPacket {
  uint64_t ts_ns;
  uint32_t caplen, len;
  std::vector<uint8_t> bytes;
};

struct ReadFile {
  bool ok = false;
  std::string error;
  int linktype = -1;
  int snaplen = -1;
  std::vector<ReadPacket> pkts;
};

ReadFile read_with_libpcap(const std::string &path) {
  ReadFile f;
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t *p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (p == nullptr) {
    f.error = errbuf;
    return f;
  }
  f.linktype = pcap_datalink(p);
  f.snaplen = pcap_snapshot(p);
  pcap_pkthdr *h;
  const u_char *data;
  int rc;
  while ((rc = pcap_next_ex(p, &h, &data)) == 1)
    f.pkts.push_back({uint64_t(h->ts.tv_sec) * 1'000'000'000ull + uint64_t(h->ts.tv_usec), h->caplen,
                      h->len, std::vector<uint8_t>(data, data + h->caplen)});
  f.ok = rc == PCAP_ERROR_BREAK;
  if (!f.ok) f.error = pcap_geterr(p);
  pcap_close(p);
  return f;
}

void expect_same_packets(const ReadFile &f, const std::vector<TestPacket> &want) {
  ASSERT_TRUE(f.ok) << f.error;
  ASSERT_EQ(f.pkts.size(), want.size());
  for (size_t i = 0; i < want.size(); i++) {
    SCOPED_TRACE("packet " + std::to_string(i));
    EXPECT_EQ(f.pkts[i].ts_ns, want[i].ts_ns);
    EXPECT_EQ(f.pkts[i].caplen, want[i].bytes.size());
    EXPECT_EQ(f.pkts[i].len, want[i].wire_len);
    EXPECT_EQ(f.pkts[i].bytes, want[i].bytes);
  }
}

std::vector<uint8_t> slurp(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <class T> T get(const std::vector<uint8_t> &b, size_t off) {
  T v;
  std::memcpy(&v, &b[off], sizeof v);
  return v;
}

// pcapng files are read back strictly: what the writer emits and nothing else.
pcapng::File parse_pcapng(const std::string &path) { return pcapng::read_file(path, {.strict = true}); }

struct Run {
  int status = -1;
  std::string out, err;
};

// Runs a shell command; stderr without the line Wireshark tools print when run as root.
Run run(const std::string &cmd, const std::string &errfile) {
  Run r;
  FILE *p = popen((cmd + " 2>" + errfile).c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  auto bytes = slurp(errfile);
  std::istringstream err(std::string(bytes.begin(), bytes.end()));
  for (std::string line; std::getline(err, line);)
    if (line.find("Running as user") == std::string::npos) r.err += line + "\n";
  return r;
}

bool have_tool(const char *name) {
  return std::system((std::string("command -v ") + name + " >/dev/null 2>&1").c_str()) == 0;
}

template <class Sink> void write_all(Sink &sink, const std::vector<TestPacket> &pkts) {
  for (const auto &p : pkts) ASSERT_TRUE(sink.write(p.view())) << "ts " << p.ts_ns;
  ASSERT_TRUE(sink.flush());
}

std::string write_pcapng(const TempDir &dir, const std::vector<TestPacket> &pkts) {
  std::string path = dir.file("t.pcapng");
  auto w = PcapngWriter::open(path, two_ifaces());
  EXPECT_TRUE(w) << w.error().message();
  if (!w) return path;
  write_all(**w, pkts);
  EXPECT_TRUE((*w)->close());
  return path;
}

void set_timezone_utc_plus_2() {
  setenv("TZ", "XYZ-2", 1); // POSIX TZ: local time = UTC + 2 h; needs no tzdata
  tzset();
}

constexpr time_t kT0 = 1'700'000'000; // 2023-11-14 22:13:20 UTC = 2023-11-15 00:13:20 in UTC+2

// ---- pcapng ----

TEST(PcapngWriter, LibpcapReadsExactPackets) {
  TempDir dir;
  auto pkts = sample_packets();
  auto f = read_with_libpcap(write_pcapng(dir, pkts));
  EXPECT_EQ(f.linktype, DLT_EN10MB);
  expect_same_packets(f, pkts);
}

TEST(PcapngWriter, BlocksCarryOptionsInterfaceIdsAndFlags) {
  TempDir dir;
  auto pkts = sample_packets();
  std::string path = write_pcapng(dir, pkts);
  EXPECT_EQ(fs::file_size(path) % 4, 0u);

  auto f = parse_pcapng(path);
  ASSERT_EQ(f.error, "");
  ASSERT_EQ(f.sections.size(), 1u);
  EXPECT_FALSE(f.sections[0].swapped);  // host byte order
  EXPECT_EQ(f.sections[0].userappl, "bpftap 0.1.0");
  struct utsname u;
  ASSERT_EQ(uname(&u), 0);
  EXPECT_EQ(f.sections[0].os, std::string(u.sysname) + " " + u.release);

  ASSERT_EQ(f.interfaces.size(), 2u);
  EXPECT_EQ(f.interfaces[0].name, "tap-vm1");
  EXPECT_EQ(f.interfaces[1].name, "tap-vm2");
  for (const auto &idb : f.interfaces) {
    EXPECT_EQ(idb.linktype, 1);
    EXPECT_EQ(idb.tsresol, 9);
  }
  // One snaplen for all (the largest), or libpcap would refuse the file.
  EXPECT_EQ(f.interfaces[0].snaplen, 262144u);
  EXPECT_EQ(f.interfaces[1].snaplen, 262144u);

  ASSERT_EQ(f.packets.size(), pkts.size());
  for (size_t i = 0; i < pkts.size(); i++) {
    SCOPED_TRACE("packet " + std::to_string(i));
    EXPECT_EQ(f.packets[i].iface, pkts[i].iface);
    EXPECT_EQ(f.packets[i].ts_ns, pkts[i].ts_ns);
    EXPECT_EQ(f.packets[i].caplen, pkts[i].bytes.size());
    EXPECT_EQ(f.packets[i].len, pkts[i].wire_len);
    EXPECT_EQ(f.packets[i].bytes, pkts[i].bytes);
    if (pkts[i].dir == Direction::Unknown)
      EXPECT_FALSE(f.packets[i].flags.has_value());
    else
      EXPECT_EQ(f.packets[i].flags, pkts[i].dir == Direction::In ? 1u : 2u);
  }
}

TEST(PcapngWriter, TsharkSeesInterfaceNamesAndDirections) {
  if (!have_tool("tshark")) GTEST_SKIP() << "tshark not installed";
  TempDir dir;
  auto pkts = sample_packets();
  std::string path = write_pcapng(dir, pkts);
  auto r = run("tshark -r " + path + " -T fields -e frame.interface_name -e frame.packet_flags_direction",
               dir.file("err"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  std::string want;
  for (const auto &p : pkts) {
    want += p.iface == 0 ? "tap-vm1\t" : "tap-vm2\t";
    want += p.dir == Direction::In ? "0x00000001" : p.dir == Direction::Out ? "0x00000002" : "";
    want += "\n";
  }
  EXPECT_EQ(r.out, want);
}

TEST(PcapngWriter, CapinfosAcceptsFileWithoutWarnings) {
  if (!have_tool("capinfos")) GTEST_SKIP() << "capinfos not installed";
  TempDir dir;
  std::string path = write_pcapng(dir, sample_packets());
  auto r = run("capinfos " + path, dir.file("err"));
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.err, "");
  EXPECT_THAT(r.out, HasSubstr("Number of packets:   6"));
  EXPECT_THAT(r.out, HasSubstr("Number of interfaces in file: 2"));
}

// ---- pcap ----

// Interface statistics: one ISB per interface at the end, read back by our parser, libpcap
// (packets unchanged) and capinfos (which counts them as "stat entries").
TEST(PcapngWriter, InterfaceStatisticsBlocksEndTheFile) {
  TempDir dir;
  std::string path = dir.file("isb.pcapng");
  auto pkts = sample_packets();
  {
    auto w = PcapngWriter::open(path, two_ifaces());
    ASSERT_TRUE(w);
    write_all(**w, pkts);
    ASSERT_TRUE((*w)->write_stats({{0, 1000, 7, 1'700'000'000'000'000'000ull}, {1, 5, 0, 0}}, 1'700'000'001'000'000'000ull));
    ASSERT_TRUE((*w)->close());
  }
  auto f = parse_pcapng(path);
  ASSERT_EQ(f.error, "");
  ASSERT_EQ(f.stats.size(), 2u);
  EXPECT_EQ(f.stats[0].iface, 0u);
  EXPECT_EQ(f.stats[0].ts_ns, 1'700'000'001'000'000'000ull);
  EXPECT_EQ(f.stats[0].ifrecv, 1000u);
  EXPECT_EQ(f.stats[0].ifdrop, 7u);
  EXPECT_EQ(f.stats[1].iface, 1u);
  EXPECT_EQ(f.stats[1].ifrecv, 5u);
  EXPECT_EQ(f.stats[1].ifdrop, 0u);
  expect_same_packets(read_with_libpcap(path), pkts);
  if (have_tool("capinfos")) {
    auto r = run("capinfos " + path, dir.file("err"));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");
    size_t entries = 0;
    for (size_t at = 0; (at = r.out.find("Number of stat entries = 1", at)) != std::string::npos; at++) entries++;
    EXPECT_EQ(entries, 2u) << r.out;
  }
}

TEST(PcapWriter, HeaderAndExactPackets) {
  TempDir dir;
  auto pkts = sample_packets();
  std::string path = dir.file("t.pcap");
  {
    auto w = PcapWriter::open(path, two_ifaces());
    ASSERT_TRUE(w) << w.error().message();
    write_all(**w, pkts);
    ASSERT_TRUE((*w)->close());
  }
  auto b = slurp(path);
  ASSERT_GE(b.size(), 24u);
  EXPECT_EQ(get<uint32_t>(b, 0), 0xa1b23c4du);
  EXPECT_EQ(get<uint16_t>(b, 4), 2);
  EXPECT_EQ(get<uint16_t>(b, 6), 4);

  auto f = read_with_libpcap(path);
  EXPECT_EQ(f.linktype, DLT_EN10MB);
  EXPECT_EQ(f.snaplen, 262144); // the largest interface snaplen
  expect_same_packets(f, pkts);

  if (have_tool("capinfos")) {
    auto r = run("capinfos " + path, dir.file("err"));
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.err, "");
  }
}

TEST(PcapWriter, RejectsMixedLinkTypesWithoutCreatingFile) {
  TempDir dir;
  auto ifaces = two_ifaces();
  ifaces[1].linktype = 113; // LINUX_SLL
  auto w = PcapWriter::open(dir.file("x.pcap"), ifaces);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, EINVAL);
  EXPECT_THAT(w.error().message(), HasSubstr("pcapng"));
  EXPECT_FALSE(fs::exists(dir.file("x.pcap")));
}

// ---- behaviour shared by both writers ----

TEST(CaptureFileWriter, BuffersUntilFlush) {
  TempDir dir;
  std::string path = dir.file("live.pcapng");
  FILE *out = fopen(path.c_str(), "w");
  ASSERT_NE(out, nullptr);
  auto w = PcapngWriter::to_stream(out, two_ifaces(), path);
  ASSERT_TRUE(w);
  auto header = fs::file_size(path); // headers are pushed out at once
  EXPECT_GT(header, 0u);
  EXPECT_EQ((*w)->size(), header);

  auto pkts = sample_packets();
  ASSERT_TRUE((*w)->write(pkts[0].view()));
  EXPECT_EQ(fs::file_size(path), header);
  EXPECT_GT((*w)->size(), header); // counts buffered bytes, as -C needs
  ASSERT_TRUE((*w)->flush());
  EXPECT_EQ(fs::file_size(path), (*w)->size());
  expect_same_packets(read_with_libpcap(path), {pkts[0]});

  ASSERT_TRUE((*w)->close());
  fclose(out); // the stream stays the caller's
}

TEST(CaptureFileWriter, WritesToCallerFd) {
  TempDir dir;
  std::string path = dir.file("fd.pcap");
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  auto pkts = sample_packets();
  {
    auto w = PcapWriter::to_fd(fd, two_ifaces());
    ASSERT_TRUE(w);
    write_all(**w, pkts);
  } // destruction flushes but leaves the fd open
  EXPECT_EQ(::close(fd), 0);
  expect_same_packets(read_with_libpcap(path), pkts);
}

TEST(CaptureFileWriter, CutsPacketsToSnaplen) {
  TempDir dir;
  std::string path = dir.file("snap.pcapng");
  auto w = PcapngWriter::open(path, {{"eth0", 1, 1, 64}});
  ASSERT_TRUE(w);
  std::vector<uint8_t> big(1514, 0xab);
  ASSERT_TRUE((*w)->write(Packet{5, 0, Direction::Out, 1514, big}));
  ASSERT_TRUE((*w)->close());
  auto f = read_with_libpcap(path);
  ASSERT_TRUE(f.ok) << f.error;
  ASSERT_EQ(f.pkts.size(), 1u);
  EXPECT_EQ(f.pkts[0].caplen, 64u);
  EXPECT_EQ(f.pkts[0].len, 1514u);
}

TEST(CaptureFileWriter, ErrorsAreValuesWithErrno) {
  TempDir dir;
  auto missing = PcapngWriter::open(dir.file("no/such/dir.pcapng"), two_ifaces());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_THAT(missing.error().what, HasSubstr("open " + dir.file("no/such/dir.pcapng")));

  EXPECT_FALSE(PcapngWriter::open(dir.file("empty.pcapng"), {}));

  auto w = PcapWriter::open(dir.file("t.pcap"), two_ifaces());
  ASSERT_TRUE(w);
  auto bad = (*w)->write(Packet{1, 2, Direction::In, 1, {}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, EINVAL);
  ASSERT_TRUE((*w)->close());
  EXPECT_FALSE((*w)->write(sample_packets()[0].view()));

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ::close(fds[1]);
  auto broken = PcapngWriter::to_fd(fds[0], two_ifaces(), "pipe"); // read end: not writable
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code, EBADF);
  EXPECT_THAT(broken.error().what, HasSubstr("write pipe"));
  ::close(fds[0]);
}

// ---- packets referred to, not copied (CaptureFileWriter's writev path) ----
// Stable packets (Packet::stable) of 1024 bytes and more are written from the caller's memory
// at the next drain (a commit() once 1 MiB is pending, or flush()); smaller ones, and all
// packets not marked stable, are copied at write(). These tests write both kinds through both
// formats to files and pipes, with short and failed writes.

enum class Format { Pcapng, Pcap };

std::string format_name(Format f) { return f == Format::Pcapng ? "pcapng" : "pcap"; }

using WriterPtr = std::unique_ptr<CaptureFileWriter>;

template <class W> Result<WriterPtr> upcast(Result<std::unique_ptr<W>> w) {
  if (!w) return tl::unexpected(w.error());
  return WriterPtr(std::move(*w));
}

Result<WriterPtr> writer_to_fd(Format f, int fd, std::string name = "output") {
  if (f == Format::Pcapng) return upcast(PcapngWriter::to_fd(fd, two_ifaces(), std::move(name)));
  return upcast(PcapWriter::to_fd(fd, two_ifaces(), std::move(name)));
}

Result<WriterPtr> writer_to_path(Format f, const std::string &path) {
  if (f == Format::Pcapng) return upcast(PcapngWriter::open(path, two_ifaces()));
  return upcast(PcapWriter::open(path, two_ifaces()));
}

// Sizes on both sides of the 1024-byte threshold, up to beyond tap-vm2's 65535-byte snaplen;
// interfaces and directions alternate so every size appears on both interfaces.
std::vector<TestPacket> mixed_size_packets(size_t rounds) {
  const size_t sizes[] = {60, 1023, 1024, 5000, 65535, 70000};
  const Direction dirs[] = {Direction::In, Direction::Out, Direction::Unknown};
  std::vector<TestPacket> pkts;
  for (size_t k = 0; k < rounds * std::size(sizes); k++) {
    size_t n = sizes[k % std::size(sizes)];
    TestPacket p;
    p.ts_ns = 1'700'000'000'000'000'000ull + k * 1'000'003ull;
    p.iface = uint32_t((k + k / std::size(sizes)) % 2);
    p.dir = dirs[k % 3];
    p.wire_len = uint32_t(n);
    p.bytes.resize(n);
    for (size_t j = 0; j < n; j++) p.bytes[j] = uint8_t(k * 37 + j * 11 + (j >> 9));
    pkts.push_back(std::move(p));
  }
  return pkts;
}

// What a file of `pkts` holds: each packet cut to its interface's snaplen.
std::vector<TestPacket> as_captured(std::vector<TestPacket> pkts) {
  auto ifaces = two_ifaces();
  for (auto &p : pkts)
    if (uint32_t snap = ifaces[p.iface].snaplen; snap != 0 && p.bytes.size() > snap) p.bytes.resize(snap);
  return pkts;
}

// The pcap file of (captured) `pkts`, built without the writer.
std::vector<uint8_t> expected_pcap(const std::vector<TestPacket> &pkts) {
  std::vector<uint8_t> b;
  auto put32 = [&b](uint32_t v) { b.insert(b.end(), reinterpret_cast<uint8_t *>(&v), reinterpret_cast<uint8_t *>(&v) + 4); };
  put32(0xa1b23c4d);
  put32(2 | 4u << 16);  // version 2.4
  put32(0);             // thiszone
  put32(0);             // sigfigs
  put32(262144);        // the largest snaplen of two_ifaces()
  put32(1);             // LINKTYPE_ETHERNET
  for (const auto &p : pkts) {
    put32(uint32_t(p.ts_ns / 1'000'000'000));
    put32(uint32_t(p.ts_ns % 1'000'000'000));
    put32(uint32_t(p.bytes.size()));
    put32(std::max<uint32_t>(p.wire_len, uint32_t(p.bytes.size())));
    b.insert(b.end(), p.bytes.begin(), p.bytes.end());
  }
  return b;
}

// A file written from `pkts`: pcap compared byte for byte with expected_pcap(), pcapng block
// by block with the strict parser; both read back by libpcap.
void expect_file_holds(Format f, const std::string &path, const std::vector<TestPacket> &pkts) {
  auto want = as_captured(pkts);
  if (f == Format::Pcap) {
    auto got = slurp(path), exp = expected_pcap(want);
    EXPECT_EQ(got.size(), exp.size());
    auto diff = std::mismatch(got.begin(), got.end(), exp.begin(), exp.end());
    EXPECT_TRUE(got == exp) << "first difference at byte " << (diff.first - got.begin());
  } else {
    auto g = parse_pcapng(path);
    ASSERT_EQ(g.error, "");
    ASSERT_EQ(g.interfaces.size(), 2u);
    ASSERT_EQ(g.packets.size(), want.size());
    for (size_t i = 0; i < want.size(); i++) {
      SCOPED_TRACE("EPB " + std::to_string(i));
      EXPECT_EQ(g.packets[i].iface, want[i].iface);
      EXPECT_EQ(g.packets[i].ts_ns, want[i].ts_ns);
      EXPECT_EQ(g.packets[i].caplen, want[i].bytes.size());
      EXPECT_EQ(g.packets[i].len, want[i].wire_len);
      EXPECT_TRUE(g.packets[i].bytes == want[i].bytes) << "packet bytes differ";
      if (want[i].dir == Direction::Unknown)
        EXPECT_FALSE(g.packets[i].flags.has_value());
      else
        EXPECT_EQ(g.packets[i].flags, want[i].dir == Direction::In ? 1u : 2u);
    }
  }
  expect_same_packets(read_with_libpcap(path), want);
}

// A packet whose bytes stay put until the next flush (Packet::stable): the writer may refer to
// them, as it does to ring memory.
Packet stable_view(const TestPacket &p) {
  Packet v = p.view();
  v.stable = true;
  return v;
}

// Writes `pkts` (stable) and closes; "" or what failed (no ASSERT: callers may have threads
// running).
std::string write_and_close(CaptureFileWriter &w, const std::vector<TestPacket> &pkts) {
  for (size_t i = 0; i < pkts.size(); i++)
    if (auto r = w.write(stable_view(pkts[i])); !r) return "write #" + std::to_string(i) + ": " + r.error().message();
  if (auto r = w.close(); !r) return "close: " + r.error().message();
  return "";
}

// The same packets written to a plain file: what every other output must equal.
std::vector<uint8_t> reference_bytes(Format f, const TempDir &dir, const std::vector<TestPacket> &pkts) {
  std::string path = dir.file("reference." + format_name(f));
  auto w = writer_to_path(f, path);
  EXPECT_TRUE(w) << w.error().message();
  if (!w) return {};
  EXPECT_EQ(write_and_close(**w, pkts), "");
  return slurp(path);
}

void write_file(const std::string &path, const std::vector<uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
}

class ReferencedPackets : public ::testing::TestWithParam<Format> {};

INSTANTIATE_TEST_SUITE_P(BothFormats, ReferencedPackets, ::testing::Values(Format::Pcapng, Format::Pcap),
                         [](const auto &info) { return format_name(info.param); });

// ~1.4 MB without a flush: the writer drains mid-batch (commit) and at close.
TEST_P(ReferencedPackets, FileHoldsEveryByte) {
  TempDir dir;
  auto pkts = mixed_size_packets(10);
  std::string path = dir.file("t." + format_name(GetParam()));
  auto w = writer_to_path(GetParam(), path);
  ASSERT_TRUE(w) << w.error().message();
  ASSERT_EQ(write_and_close(**w, pkts), "");
  EXPECT_EQ((*w)->size(), fs::file_size(path));
  expect_file_holds(GetParam(), path, pkts);
}

// More referred-to packets in one batch than one writev(2) takes (IOV_MAX = 1024 pieces).
TEST_P(ReferencedPackets, ManyReferencedPacketsInOneBatch) {
  TempDir dir;
  std::vector<TestPacket> pkts;
  for (size_t k = 0; k < 3000; k++) {
    size_t n = 1024 + k % 77;
    TestPacket p{1'700'000'000'000'000'000ull + k, uint32_t(k % 2), Direction::In, uint32_t(n), {}};
    for (size_t j = 0; j < n; j++) p.bytes.push_back(uint8_t(k * 13 + j));
    pkts.push_back(std::move(p));
  }
  std::string path = dir.file("many." + format_name(GetParam()));
  auto w = writer_to_path(GetParam(), path);
  ASSERT_TRUE(w) << w.error().message();
  ASSERT_EQ(write_and_close(**w, pkts), "");
  expect_file_holds(GetParam(), path, pkts);
}

// A pipe of one page read slowly, and a thread signalling the writer: a blocking pipe write
// returns short (or EINTR) only when a signal arrives while it waits, so this is how real
// short writes happen. The bytes that come out are those of the same packets written to a file.
TEST_P(ReferencedPackets, PipeWithShortWritesHoldsEveryByte) {
  TempDir dir;
  auto pkts = mixed_size_packets(10);
  auto want = reference_bytes(GetParam(), dir, pkts);
  ASSERT_FALSE(want.empty());

  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  ASSERT_GE(fcntl(fds[1], F_SETPIPE_SZ, 4096), 0) << strerror(errno);
  std::vector<uint8_t> got;
  std::thread reader([&] {
    uint8_t buf[1500];
    for (;;) {
      ssize_t n = read(fds[0], buf, sizeof buf);
      if (n == 0 || (n < 0 && errno != EINTR)) break;
      if (n > 0) got.insert(got.end(), buf, buf + n);
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  });
  struct sigaction sa {}, old{};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  std::atomic<bool> done{false};
  pthread_t writer_thread = pthread_self();
  std::thread pester([&] {
    while (!done) {
      pthread_kill(writer_thread, SIGUSR1);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  });

  std::string err;
  test::WritevStats st;
  {
    test::WritevHook hook(fds[1]);  // counts only
    auto w = writer_to_fd(GetParam(), fds[1], "pipe");
    err = w ? write_and_close(**w, pkts) : w.error().message();
    st = hook.stats();
  }
  done = true;
  pester.join();  // its last signal was delivered when join's wait returned
  sigaction(SIGUSR1, &old, nullptr);
  ::close(fds[1]);
  reader.join();
  ::close(fds[0]);

  ASSERT_EQ(err, "");
  EXPECT_GT(st.short_writes + st.interrupted, 0u) << "no short write happened: nothing was tested";
  RecordProperty("short_writes", std::to_string(st.short_writes));
  RecordProperty("interrupted", std::to_string(st.interrupted));
  EXPECT_EQ(st.bytes, want.size());
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "pipe output differs from the file output";
  write_file(dir.file("from-pipe"), got);
  expect_file_holds(GetParam(), dir.file("from-pipe"), pkts);
}

// Short writes of odd sizes (injected), so they end inside headers, copied runs and referred
// packets alike.
TEST_P(ReferencedPackets, InjectedShortWritesHoldEveryByte) {
  TempDir dir;
  auto pkts = mixed_size_packets(10);
  auto want = reference_bytes(GetParam(), dir, pkts);
  for (size_t limit : {777u, 4099u, 65541u}) {
    SCOPED_TRACE("at most " + std::to_string(limit) + " bytes per writev");
    std::string path = dir.file("short-" + std::to_string(limit));
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    test::WritevStats st;
    {
      test::WritevHook hook(fd);
      hook.limit_each(limit);
      auto w = writer_to_fd(GetParam(), fd);
      ASSERT_TRUE(w) << w.error().message();
      ASSERT_EQ(write_and_close(**w, pkts), "");
      st = hook.stats();
    }
    ::close(fd);
    EXPECT_GE(st.short_writes, want.size() / limit / 2);
    EXPECT_TRUE(slurp(path) == want) << "differs from the output without short writes";
    expect_file_holds(GetParam(), path, pkts);
  }
}

// After flush() the writer holds no reference: the caller's one buffer, reused for every packet
// and scribbled over after each flush, does not show in the file.
TEST_P(ReferencedPackets, CallerMayReuseItsBufferAfterFlush) {
  TempDir dir;
  auto pkts = mixed_size_packets(3);
  std::string path = dir.file("reuse." + format_name(GetParam()));
  auto w = writer_to_path(GetParam(), path);
  ASSERT_TRUE(w) << w.error().message();
  std::vector<uint8_t> buf(70000);
  for (const auto &p : pkts) {
    std::copy(p.bytes.begin(), p.bytes.end(), buf.begin());
    ASSERT_TRUE((*w)->write(Packet{p.ts_ns, p.iface, p.dir, p.wire_len, {buf.data(), p.bytes.size()}, true}));
    ASSERT_TRUE((*w)->flush());
    std::fill(buf.begin(), buf.end(), 0xFF);
  }
  ASSERT_TRUE((*w)->close());
  expect_file_holds(GetParam(), path, pkts);
}

// What makes the test above meaningful: until flush(), a stable packet of 1024 bytes or more is
// read from the caller's memory (so a change shows in the file); a smaller one, or one not
// marked stable, was copied at write() (a change does not show).
TEST_P(ReferencedPackets, OnlyLargeStablePacketsAreReadFromCallerMemoryAtFlush) {
  TempDir dir;
  std::string path = dir.file("ref." + format_name(GetParam()));
  auto w = writer_to_path(GetParam(), path);
  ASSERT_TRUE(w) << w.error().message();
  std::vector<uint8_t> small(1023, 0x11), large(1024, 0x22), unstable(5000, 0x55);
  ASSERT_TRUE((*w)->write(Packet{1, 0, Direction::In, 1023, small, true}));
  ASSERT_TRUE((*w)->write(Packet{2, 0, Direction::In, 1024, large, true}));
  ASSERT_TRUE((*w)->write(Packet{3, 0, Direction::In, 5000, unstable, false}));
  std::fill(small.begin(), small.end(), 0x33);
  std::fill(large.begin(), large.end(), 0x44);
  std::fill(unstable.begin(), unstable.end(), 0x66);
  ASSERT_TRUE((*w)->close());
  auto f = read_with_libpcap(path);
  ASSERT_TRUE(f.ok) << f.error;
  ASSERT_EQ(f.pkts.size(), 3u);
  EXPECT_EQ(f.pkts[0].bytes, std::vector<uint8_t>(1023, 0x11)) << "a small packet is copied at write()";
  EXPECT_EQ(f.pkts[1].bytes, std::vector<uint8_t>(1024, 0x44)) << "a large stable packet is read at flush()";
  EXPECT_EQ(f.pkts[2].bytes, std::vector<uint8_t>(5000, 0x55)) << "a packet not marked stable is copied at write()";
}

// Packets not marked stable (the perf and libpcap paths reuse their memory at once): the caller
// overwrites each right after write(), before any flush, and the file is still right.
TEST_P(ReferencedPackets, UnstablePacketsMayBeOverwrittenRightAfterWrite) {
  TempDir dir;
  auto pkts = mixed_size_packets(3);
  std::string path = dir.file("unstable." + format_name(GetParam()));
  auto w = writer_to_path(GetParam(), path);
  ASSERT_TRUE(w) << w.error().message();
  std::vector<uint8_t> buf(70000);
  for (const auto &p : pkts) {
    std::copy(p.bytes.begin(), p.bytes.end(), buf.begin());
    ASSERT_TRUE((*w)->write(Packet{p.ts_ns, p.iface, p.dir, p.wire_len, {buf.data(), p.bytes.size()}, false}));
    std::fill(buf.begin(), buf.end(), 0xFF);
  }
  ASSERT_TRUE((*w)->close());
  expect_file_holds(GetParam(), path, pkts);
}

// A failed write, anywhere in the pending bytes: the error is returned, size() still counts
// every byte (written + kept), the caller's memory is no longer referred to (scribbled over
// here), and a retry completes the file with no byte twice.
TEST_P(ReferencedPackets, FailedWriteKeepsTheRestAndARetryCompletesTheFile) {
  TempDir dir;
  auto pkts = mixed_size_packets(1);  // 60, 1023, 1024, 5000, 65535, 70000: ~140 KB, one batch
  auto want = reference_bytes(GetParam(), dir, pkts);
  ASSERT_FALSE(want.empty());
  uint64_t header = GetParam() == Format::Pcap ? 24 : 0;
  if (GetParam() == Format::Pcapng) {  // SHB + 2 IDBs: up to the first EPB
    auto g = parse_pcapng(dir.file("reference.pcapng"));
    ASSERT_EQ(g.error, "");
    for (size_t off = 0; get<uint32_t>(want, off) != 6; off += get<uint32_t>(want, off + 4))
      header = off + get<uint32_t>(want, off + 4);
  }
  const uint64_t body = want.size() - header;
  // Fail after 1 byte, inside the copied run of the small packets, in the middle of the
  // referred 65535-byte packet, and one byte before the end.
  for (uint64_t at : {uint64_t{1}, uint64_t{100}, body / 2, body - 1}) {
    SCOPED_TRACE("fails after " + std::to_string(at) + " of " + std::to_string(body) + " bytes");
    std::string path = dir.file("fail-" + std::to_string(at));
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    {
      test::WritevHook hook(fd);
      auto w = writer_to_fd(GetParam(), fd, "disk");
      ASSERT_TRUE(w) << w.error().message();
      ASSERT_EQ((*w)->size(), header);
      std::vector<std::vector<uint8_t>> mem;  // the caller's copies of the packets
      for (const auto &p : pkts) mem.push_back(p.bytes);
      for (size_t i = 0; i < pkts.size(); i++)
        ASSERT_TRUE((*w)->write(Packet{pkts[i].ts_ns, pkts[i].iface, pkts[i].dir, pkts[i].wire_len, mem[i], true}));
      ASSERT_EQ((*w)->size(), want.size());

      hook.fail_after(at, ENOSPC);
      auto r = (*w)->flush();
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, ENOSPC);
      EXPECT_THAT(r.error().what, HasSubstr("write disk"));
      EXPECT_EQ((*w)->size(), want.size()) << "written + kept must still be every byte";
      EXPECT_EQ(fs::file_size(path), header + at);

      for (auto &m : mem) std::fill(m.begin(), m.end(), 0xEE);  // the caller moves on
      hook.fail_after(0, EIO);  // fails again at once
      r = (*w)->flush();
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, EIO);
      EXPECT_EQ((*w)->size(), want.size());
      EXPECT_EQ(fs::file_size(path), header + at);

      hook.clear_failure();
      auto ok = (*w)->close();
      ASSERT_TRUE(ok) << ok.error().message();
      EXPECT_EQ((*w)->size(), want.size());
    }
    ::close(fd);
    auto got = slurp(path);
    EXPECT_EQ(got.size(), want.size());
    EXPECT_TRUE(got == want) << "the retried file differs from one written without failure";
    expect_file_holds(GetParam(), path, pkts);
  }
}

// A failure in a drain inside write() (1 MiB pending): the error comes from write(); the sizes
// stay consistent and, once the output works again, the file is an exact prefix of the packets.
TEST_P(ReferencedPackets, FailureInsideWriteKeepsSizeConsistent) {
  TempDir dir;
  auto pkts = mixed_size_packets(10);
  std::string path = dir.file("midway");
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  size_t failed_at = SIZE_MAX;
  uint64_t size_after_failure = 0;
  {
    test::WritevHook hook(fd);
    auto w = writer_to_fd(GetParam(), fd, "disk");
    ASSERT_TRUE(w) << w.error().message();
    hook.fail_after(300000, ENOSPC);
    for (size_t i = 0; i < pkts.size() && failed_at == SIZE_MAX; i++) {
      uint64_t before = (*w)->size();
      auto r = (*w)->write(stable_view(pkts[i]));
      if (!r) {
        failed_at = i;
        EXPECT_EQ(r.error().code, ENOSPC);
        size_after_failure = (*w)->size();
        EXPECT_GT(size_after_failure, before);  // the record went into the writer, then the drain failed
      }
    }
    ASSERT_NE(failed_at, SIZE_MAX) << "no write drained (1 MiB pending) and failed";
    for (auto &p : pkts) std::fill(p.bytes.begin(), p.bytes.end(), 0xEE);  // caller memory reused
    hook.clear_failure();
    ASSERT_TRUE((*w)->close());
    EXPECT_EQ((*w)->size(), size_after_failure);
  }
  ::close(fd);
  EXPECT_EQ(fs::file_size(path), size_after_failure);
  // The file: every packet up to and including the one whose write() reported the failure.
  auto fresh = mixed_size_packets(10);
  fresh.resize(failed_at + 1);
  expect_file_holds(GetParam(), path, fresh);
}

// The reader of a pipe goes away (EPIPE; SIGPIPE ignored, as a capture to a pipe would).
TEST_P(ReferencedPackets, BrokenPipeIsAnErrorAndSizeStaysConsistent) {
  struct sigaction ign {}, old{};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGPIPE, &ign, &old), 0);
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  auto pkts = mixed_size_packets(1);
  {
    auto w = writer_to_fd(GetParam(), fds[1], "pipe");
    ASSERT_TRUE(w) << w.error().message();
    uint64_t header = (*w)->size();
    std::vector<uint8_t> buf(header + 1);
    EXPECT_EQ(read(fds[0], buf.data(), buf.size()), ssize_t(header));  // the headers went out at once
    ::close(fds[0]);

    for (const auto &p : pkts) ASSERT_TRUE((*w)->write(stable_view(p)));  // < 1 MiB: pending
    uint64_t pending = (*w)->size();
    EXPECT_GT(pending, header + 130000);
    for (int attempt = 0; attempt < 2; attempt++) {
      auto r = (*w)->flush();
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, EPIPE);
      EXPECT_THAT(r.error().what, HasSubstr("write pipe"));
      EXPECT_EQ((*w)->size(), pending);
    }
    for (auto &p : pkts) std::fill(p.bytes.begin(), p.bytes.end(), 0);
    auto r = (*w)->close();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EPIPE);
    EXPECT_EQ((*w)->size(), pending);
  }
  ::close(fds[1]);
  sigaction(SIGPIPE, &old, nullptr);
}

// A stream with a descriptor (a FILE* from fopen, as stdout) takes the writev path; one without
// (fmemopen) goes through stdio and copies every packet at write(), stable or not.
TEST(CaptureFileWriter, StreamsWithAndWithoutDescriptor) {
  TempDir dir;
  std::vector<uint8_t> large(5000, 0x22);
  {
    std::string path = dir.file("stream.pcap");
    FILE *out = fopen(path.c_str(), "w");
    ASSERT_NE(out, nullptr);
    auto w = PcapWriter::to_stream(out, two_ifaces(), path);
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->write(Packet{1, 0, Direction::In, 5000, large, true}));
    std::fill(large.begin(), large.end(), 0x44);
    ASSERT_TRUE((*w)->close());
    fclose(out);
    auto f = read_with_libpcap(path);
    ASSERT_TRUE(f.ok) << f.error;
    ASSERT_EQ(f.pkts.size(), 1u);
    EXPECT_EQ(f.pkts[0].bytes, std::vector<uint8_t>(5000, 0x44)) << "fopen'd stream: referred to until flush";
  }
  {
    std::vector<char> mem(1 << 16);
    FILE *out = fmemopen(mem.data(), mem.size(), "w");
    ASSERT_NE(out, nullptr);
    ASSERT_LT(fileno(out), 0);
    std::fill(large.begin(), large.end(), 0x22);
    auto w = PcapWriter::to_stream(out, two_ifaces(), "memory");
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->write(Packet{1, 0, Direction::In, 5000, large, true}));
    std::fill(large.begin(), large.end(), 0x44);
    ASSERT_TRUE((*w)->close());
    EXPECT_EQ((*w)->size(), 24u + 16 + 5000);
    long n = ftell(out);
    fclose(out);
    ASSERT_EQ(n, 24 + 16 + 5000);
    EXPECT_EQ(mem[24 + 16], 0x22) << "fmemopen stream: copied at write()";
    EXPECT_EQ(mem[24 + 16 + 4999], 0x22);
    EXPECT_EQ(get<uint32_t>(std::vector<uint8_t>(mem.begin(), mem.begin() + 48), 32), 5000u);
  }
}

// ---- tcpdump naming ----

TEST(RotatedName, SizeRotationAloneCountsFromOne) { // -C
  RotationOptions o{.path = "cap", .rotate_bytes = 1};
  EXPECT_EQ(rotated_name(o, 0, 0), "cap");
  EXPECT_EQ(rotated_name(o, 1, 0), "cap1");
  EXPECT_EQ(rotated_name(o, 12, 0), "cap12");
}

TEST(RotatedName, SizeRotationWithFileCountPadsToDigitsOfCountMinusOne) { // -C -W
  RotationOptions o{.path = "/tmp/cap.pcap", .rotate_bytes = 1};
  o.max_files = 1;
  EXPECT_EQ(rotated_name(o, 0, 0), "/tmp/cap.pcap"); // width 0: one file, overwritten
  o.max_files = 2;
  EXPECT_EQ(rotated_name(o, 0, 0), "/tmp/cap.pcap0");
  o.max_files = 10;
  EXPECT_EQ(rotated_name(o, 0, 0), "/tmp/cap.pcap0");
  EXPECT_EQ(rotated_name(o, 9, 0), "/tmp/cap.pcap9");
  o.max_files = 11;
  EXPECT_EQ(rotated_name(o, 0, 0), "/tmp/cap.pcap00");
  EXPECT_EQ(rotated_name(o, 10, 0), "/tmp/cap.pcap10");
  o.max_files = 100;
  EXPECT_EQ(rotated_name(o, 7, 0), "/tmp/cap.pcap07");
  o.max_files = 101;
  EXPECT_EQ(rotated_name(o, 7, 0), "/tmp/cap.pcap007");
}

TEST(RotatedName, AnExtensionKeepsTheCounterBeforeIt) { // the agent's NAME-IFACE-N.pcapng
  RotationOptions o{.path = "/d/s-tap0", .rotate_bytes = 1, .max_files = 12, .extension = ".pcapng"};
  EXPECT_EQ(rotated_name(o, 0, 0), "/d/s-tap0-00.pcapng");
  EXPECT_EQ(rotated_name(o, 11, 0), "/d/s-tap0-11.pcapng");
  o.max_files = 0;
  EXPECT_EQ(rotated_name(o, 0, 0), "/d/s-tap0.pcapng");
  EXPECT_EQ(rotated_name(o, 3, 0), "/d/s-tap0-3.pcapng");
  o.rotate_bytes = 0;  // no rotation: one file
  EXPECT_EQ(rotated_name(o, 0, 0), "/d/s-tap0.pcapng");
}

TEST(RotatedName, TimeRotationExpandsStrftimeInLocalTime) { // -G
  set_timezone_utc_plus_2();
  RotationOptions o{.path = "cap-%Y%m%d-%H%M%S-%%.pcapng", .rotate_seconds = 60};
  EXPECT_EQ(rotated_name(o, 0, kT0), "cap-20231115-001320-%.pcapng");
  o.max_files = 10; // -W without -C changes no name
  EXPECT_EQ(rotated_name(o, 0, kT0), "cap-20231115-001320-%.pcapng");
  o.rotate_seconds = 0; // without -G, % is literal
  EXPECT_EQ(rotated_name(o, 0, kT0), "cap-%Y%m%d-%H%M%S-%%.pcapng");
}

TEST(RotatedName, TimeAndSizeRotationAppendsCounter) { // -G -C [-W]
  set_timezone_utc_plus_2();
  RotationOptions o{.path = "c-%H%M.pcap", .rotate_bytes = 1, .rotate_seconds = 60};
  EXPECT_EQ(rotated_name(o, 0, kT0), "c-0013.pcap");
  EXPECT_EQ(rotated_name(o, 3, kT0), "c-0013.pcap3");
  o.max_files = 10;
  EXPECT_EQ(rotated_name(o, 0, kT0), "c-0013.pcap0");
}

// ---- rotation ----

std::vector<size_t> packets_per_file(const TempDir &dir, const std::vector<std::string> &names) {
  std::vector<size_t> counts;
  for (const auto &n : names) {
    auto f = read_with_libpcap(dir.file(n));
    EXPECT_TRUE(f.ok) << n << ": " << f.error;
    counts.push_back(f.pkts.size());
  }
  return counts;
}

// pcap header 24 bytes, each 100-byte packet 116: sizes 24, 140, 256, 372...
TEST(RotatingFileSink, SizeRotationHappensWhenFileAlreadyExceedsLimit) {
  TempDir dir;
  auto pkts = packets_at(kT0, {0, 1, 2, 3, 4, 5, 6});
  {
    auto s = RotatingFileSink::open({.path = dir.file("cap"), .format = FileFormat::Pcap,
                                     .rotate_bytes = 200},
                                    two_ifaces());
    ASSERT_TRUE(s) << s.error().message();
    write_all(**s, pkts);
    EXPECT_EQ((*s)->current_path(), dir.file("cap3"));
    ASSERT_TRUE((*s)->close());
  }
  EXPECT_EQ(dir.list(), (std::set<std::string>{"cap", "cap1", "cap2", "cap3"}));
  EXPECT_THAT(packets_per_file(dir, {"cap", "cap1", "cap2", "cap3"}), ElementsAre(2, 2, 2, 1));
  expect_same_packets(read_with_libpcap(dir.file("cap2")), {pkts[4], pkts[5]});
}

TEST(RotatingFileSink, SizeEqualToLimitDoesNotRotate) {
  TempDir dir;
  auto s = RotatingFileSink::open({.path = dir.file("cap"), .format = FileFormat::Pcap,
                                   .rotate_bytes = 256},
                                  two_ifaces());
  ASSERT_TRUE(s);
  write_all(**s, packets_at(kT0, {0, 1, 2, 3, 4, 5, 6}));
  ASSERT_TRUE((*s)->close());
  EXPECT_THAT(packets_per_file(dir, {"cap", "cap1", "cap2"}), ElementsAre(3, 3, 1));
}

TEST(RotatingFileSink, FileCountMakesARingOverwritingTheOldest) { // -C -W 3
  TempDir dir;
  auto pkts = packets_at(kT0, {0, 1, 2, 3, 4, 5, 6});
  auto s = RotatingFileSink::open({.path = dir.file("cap"), .format = FileFormat::Pcap,
                                   .rotate_bytes = 200, .max_files = 3},
                                  two_ifaces());
  ASSERT_TRUE(s);
  write_all(**s, pkts);
  ASSERT_TRUE((*s)->close());
  EXPECT_FALSE((*s)->finished()); // -W with -C never stops the capture
  EXPECT_EQ(dir.list(), (std::set<std::string>{"cap0", "cap1", "cap2"}));
  EXPECT_THAT(packets_per_file(dir, {"cap0", "cap1", "cap2"}), ElementsAre(1, 2, 2));
  expect_same_packets(read_with_libpcap(dir.file("cap0")), {pkts[6]});
}

TEST(RotatingFileSink, TimeRotationNamesFilesByRotationTime) { // -G 10
  set_timezone_utc_plus_2();
  TempDir dir;
  auto pkts = packets_at(kT0, {1, 9, 10, 15, 25});
  auto s = RotatingFileSink::open({.path = dir.file("g-%H%M%S.pcap"), .format = FileFormat::Pcap,
                                   .rotate_seconds = 10, .start_time = kT0},
                                  two_ifaces());
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)->current_path(), dir.file("g-001320.pcap")); // start time names the first file
  write_all(**s, pkts);
  ASSERT_TRUE((*s)->close());
  // Rotations at the packets of +10 s and +25 s (15 s after the previous rotation).
  EXPECT_EQ(dir.list(), (std::set<std::string>{"g-001320.pcap", "g-001330.pcap", "g-001345.pcap"}));
  EXPECT_THAT(packets_per_file(dir, {"g-001320.pcap", "g-001330.pcap", "g-001345.pcap"}),
              ElementsAre(2, 2, 1));
}

TEST(RotatingFileSink, TimeRotationWithFileCountFinishes) { // -G 10 -W 2
  set_timezone_utc_plus_2();
  TempDir dir;
  auto pkts = packets_at(kT0, {1, 10, 11, 20, 30});
  auto s = RotatingFileSink::open({.path = dir.file("g-%H%M%S.pcap"), .format = FileFormat::Pcap,
                                   .rotate_seconds = 10, .max_files = 2, .start_time = kT0},
                                  two_ifaces());
  ASSERT_TRUE(s);
  for (size_t i = 0; i < 3; i++) ASSERT_TRUE((*s)->write(pkts[i].view()));
  EXPECT_FALSE((*s)->finished());
  ASSERT_TRUE((*s)->write(pkts[3].view())); // would start a third file: tcpdump exits here
  EXPECT_TRUE((*s)->finished());
  EXPECT_EQ((*s)->current_path(), "");
  ASSERT_TRUE((*s)->write(pkts[4].view())); // dropped
  ASSERT_TRUE((*s)->flush());
  ASSERT_TRUE((*s)->close());
  EXPECT_EQ(dir.list(), (std::set<std::string>{"g-001320.pcap", "g-001330.pcap"}));
  EXPECT_THAT(packets_per_file(dir, {"g-001320.pcap", "g-001330.pcap"}), ElementsAre(1, 2));
}

TEST(RotatingFileSink, TimeRotationResetsSizeCounter) { // -G 60 -C
  set_timezone_utc_plus_2();
  TempDir dir;
  auto s = RotatingFileSink::open({.path = dir.file("c-%H%M.pcap"), .format = FileFormat::Pcap,
                                   .rotate_bytes = 200, .rotate_seconds = 60, .start_time = kT0},
                                  two_ifaces());
  ASSERT_TRUE(s);
  write_all(**s, packets_at(kT0, {1, 2, 3, 60}));
  ASSERT_TRUE((*s)->close());
  EXPECT_THAT(packets_per_file(dir, {"c-0013.pcap", "c-0013.pcap1", "c-0014.pcap"}),
              ElementsAre(2, 1, 1));
  EXPECT_EQ(dir.list().size(), 3u);
}

TEST(RotatingFileSink, EveryPcapngFileIsSelfContained) {
  TempDir dir;
  auto pkts = sample_packets();
  for (uint64_t i = 1; i <= 2; i++) { // 18 packets over both interfaces
    auto more = sample_packets();
    for (auto &p : more) p.ts_ns += i * 10'000'000'000ull;
    pkts.insert(pkts.end(), more.begin(), more.end());
  }
  auto s = RotatingFileSink::open({.path = dir.file("r.pcapng"), .rotate_bytes = 1000}, two_ifaces());
  ASSERT_TRUE(s);
  write_all(**s, pkts);
  ASSERT_TRUE((*s)->close());

  auto names = dir.list();
  ASSERT_GT(names.size(), 2u);
  size_t total = 0;
  for (const auto &n : names) {
    SCOPED_TRACE(n);
    auto f = parse_pcapng(dir.file(n));
    ASSERT_EQ(f.error, "");
    ASSERT_EQ(f.interfaces.size(), 2u);
    EXPECT_EQ(f.interfaces[1].name, "tap-vm2");
    auto r = read_with_libpcap(dir.file(n));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.pkts.size(), f.packets.size());
    total += r.pkts.size();
  }
  EXPECT_EQ(total, pkts.size());
}

// Each file of a rotation ends with the counters as they were when it was closed.
TEST(RotatingFileSink, EveryFileEndsWithInterfaceStatistics) {
  TempDir dir;
  auto pkts = sample_packets();
  auto more = sample_packets();
  for (auto &p : more) p.ts_ns += 10'000'000'000ull;
  pkts.insert(pkts.end(), more.begin(), more.end());
  auto s = RotatingFileSink::open({.path = dir.file("s.pcapng"), .rotate_bytes = 1000}, two_ifaces());
  ASSERT_TRUE(s);
  uint64_t asked = 0;
  (*s)->set_statistics([&asked] {
    ++asked;
    return std::vector<InterfaceTotals>{{0, asked * 10, asked, 0}, {1, asked * 20, 0, 0}};
  });
  write_all(**s, pkts);
  ASSERT_TRUE((*s)->close());
  auto names = dir.list();
  ASSERT_GT(names.size(), 1u);
  EXPECT_EQ(asked, names.size());
  std::set<uint64_t> seen;
  for (const auto &n : names) {
    SCOPED_TRACE(n);
    auto f = parse_pcapng(dir.file(n));
    ASSERT_EQ(f.error, "");
    ASSERT_EQ(f.stats.size(), 2u);
    EXPECT_EQ(*f.stats[1].ifrecv, *f.stats[0].ifrecv * 2);
    seen.insert(*f.stats[0].ifdrop);
  }
  EXPECT_EQ(seen.size(), names.size());  // a fresh reading per file
}

TEST(RotatingFileSink, StdoutRefusesRotation) {
  for (auto opt : {RotationOptions{.path = "-", .rotate_bytes = 1000000},
                   RotationOptions{.path = "-", .rotate_seconds = 60}}) {
    auto s = RotatingFileSink::open(opt, two_ifaces());
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, EINVAL);
  }
}

TEST(RotatingFileSink, DashWritesToStdout) {
  TempDir dir;
  std::string path = dir.file("stdout.pcap");
  int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(file, 0);
  fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  ASSERT_GE(saved, 0);
  dup2(file, STDOUT_FILENO);
  auto pkts = packets_at(kT0, {0, 1});
  Result<> closed;
  {
    auto s = RotatingFileSink::open({.path = "-", .format = FileFormat::Pcap}, two_ifaces());
    if (s) {
      for (const auto &p : pkts) (void)(*s)->write(p.view());
      closed = (*s)->close();
    } else {
      closed = tl::unexpected(s.error());
    }
  }
  fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  ::close(saved);
  ::close(file);
  ASSERT_TRUE(closed) << closed.error().message();
  expect_same_packets(read_with_libpcap(path), pkts);
}


// ---- after a failed write (a full disk; here RLIMIT_FSIZE: EFBIG) ----

// Writes past `bytes` into any file fail (EFBIG) while it lives.
class FileSizeLimit {
public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &old_);
    signal(SIGXFSZ, SIG_IGN);
    rlimit r = old_;
    r.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &r);
  }
  ~FileSizeLimit() { setrlimit(RLIMIT_FSIZE, &old_); }

private:
  rlimit old_{};
};

// A file the writer opened is cut back to where the failed write began: it always ends with a
// whole record (a reader sees every packet before, and no damaged one), and a retry completes it.
TEST_P(ReferencedPackets, OwnFileEndsWithAWholeRecordAfterAFailedWrite) {
  TempDir dir;
  auto pkts = mixed_size_packets(1);
  std::string path = dir.file("own");
  auto w = writer_to_path(GetParam(), path);
  ASSERT_TRUE(w) << w.error().message();
  const uint64_t header = fs::file_size(path);
  for (size_t i = 0; i < 2; i++) ASSERT_TRUE((*w)->write(stable_view(pkts[i])));
  ASSERT_TRUE((*w)->flush());
  const uint64_t two = fs::file_size(path);
  ASSERT_GT(two, header);
  for (size_t i = 2; i < pkts.size(); i++) ASSERT_TRUE((*w)->write(stable_view(pkts[i])));
  EXPECT_EQ((*w)->pending_records(), pkts.size() - 2);
  {
    FileSizeLimit limit(two + 3000);  // inside the third record
    auto r = (*w)->flush();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EFBIG);
  }
  EXPECT_EQ(fs::file_size(path), two) << "not cut back to the last whole record";
  EXPECT_EQ((*w)->pending_records(), pkts.size() - 2);
  auto first_two = std::vector<TestPacket>(pkts.begin(), pkts.begin() + 2);
  expect_same_packets(read_with_libpcap(path), as_captured(first_two));
  for (auto &p : pkts) std::fill(p.bytes.begin(), p.bytes.end(), 0xEE);  // the caller's memory is reused
  ASSERT_TRUE((*w)->close());
  EXPECT_EQ((*w)->pending_records(), 0u);
  expect_file_holds(GetParam(), path, mixed_size_packets(1));
}

TEST(RotatingFileSink, RecoverStartsAnewWhenTheFileWasDeleted) {
  TempDir dir;
  auto pkts = packets_at(kT0, {0, 1, 2, 3});
  auto s = RotatingFileSink::open({.path = dir.file("cap"), .format = FileFormat::Pcap}, two_ifaces());
  ASSERT_TRUE(s) << s.error().message();
  ASSERT_TRUE((*s)->write(pkts[0].view()));
  ASSERT_TRUE((*s)->flush());
  ASSERT_TRUE((*s)->write(pkts[1].view()));
  {
    FileSizeLimit limit(fs::file_size(dir.file("cap")) + 10);
    ASSERT_FALSE((*s)->flush());
    ASSERT_FALSE((*s)->recover());  // still full
  }
  EXPECT_EQ((*s)->lost(), 0u) << "kept for a retry, not lost yet";
  fs::remove(dir.file("cap"));  // someone makes room
  ASSERT_TRUE((*s)->recover());
  EXPECT_EQ((*s)->lost(), 1u) << "the packet kept for the deleted file";
  ASSERT_TRUE((*s)->write(pkts[2].view()));
  ASSERT_TRUE((*s)->close());
  expect_same_packets(read_with_libpcap(dir.file("cap")), {pkts[2]});
}

TEST(RotatingFileSink, RecoverWritesWhatWasKeptOnceThereIsRoom) {
  TempDir dir;
  auto pkts = packets_at(kT0, {0, 1, 2});
  auto s = RotatingFileSink::open({.path = dir.file("cap"), .format = FileFormat::Pcap}, two_ifaces());
  ASSERT_TRUE(s) << s.error().message();
  ASSERT_TRUE((*s)->write(pkts[0].view()));
  ASSERT_TRUE((*s)->write(pkts[1].view()));
  {
    FileSizeLimit limit(fs::file_size(dir.file("cap")) + 10);
    ASSERT_FALSE((*s)->flush());
  }
  ASSERT_TRUE((*s)->recover());
  ASSERT_TRUE((*s)->write(pkts[2].view()));
  ASSERT_TRUE((*s)->close());
  EXPECT_EQ((*s)->lost(), 0u);
  expect_same_packets(read_with_libpcap(dir.file("cap")), pkts);
}

TEST(RotatingFileSink, ReopenIfMovedStartsANewFileUnderTheName) {  // logrotate, then SIGHUP
  TempDir dir;
  auto pkts = packets_at(kT0, {0, 1, 2});
  auto s = RotatingFileSink::open({.path = dir.file("cap"), .format = FileFormat::Pcap}, two_ifaces());
  ASSERT_TRUE(s) << s.error().message();
  ASSERT_TRUE((*s)->write(pkts[0].view()));
  auto same = (*s)->reopen_if_moved();
  ASSERT_TRUE(same);
  EXPECT_FALSE(*same) << "not moved: nothing to do";
  ASSERT_TRUE((*s)->write(pkts[1].view()));
  fs::rename(dir.file("cap"), dir.file("cap.1"));
  auto moved = (*s)->reopen_if_moved();
  ASSERT_TRUE(moved) << moved.error().message();
  EXPECT_TRUE(*moved);
  ASSERT_TRUE((*s)->write(pkts[2].view()));
  ASSERT_TRUE((*s)->close());
  expect_same_packets(read_with_libpcap(dir.file("cap.1")), {pkts[0], pkts[1]});
  expect_same_packets(read_with_libpcap(dir.file("cap")), {pkts[2]});
}

TEST(RotatingFileSink, ARotationThatFailsToCloseStillOpensTheNextFile) {
  TempDir dir;
  auto pkts = packets_at(kT0, {0, 1, 2, 3, 4, 5});
  auto s = RotatingFileSink::open({.path = dir.file("cap"), .format = FileFormat::Pcap, .rotate_bytes = 200, .max_files = 3},
                                  two_ifaces());
  ASSERT_TRUE(s) << s.error().message();
  ASSERT_TRUE((*s)->write(pkts[0].view()));
  ASSERT_TRUE((*s)->write(pkts[1].view()));  // cap0 holds 2 (> 200 bytes pending)
  Result<> r;
  {
    FileSizeLimit limit(30);  // room for the next file's header only
    r = (*s)->write(pkts[2].view());
  }
  ASSERT_FALSE(r) << "closing cap0 failed";
  EXPECT_EQ((*s)->lost(), 2u) << "cap0's packets";
  EXPECT_EQ((*s)->current_path(), dir.file("cap1"));
  ASSERT_TRUE((*s)->close());
  expect_same_packets(read_with_libpcap(dir.file("cap1")), {pkts[2]});
}

TEST(RotatingFileSink, UnwritablePathFailsAtOpen) {
  TempDir dir;
  auto s = RotatingFileSink::open({.path = dir.file("missing/cap")}, two_ifaces());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ENOENT);
}

} // namespace
} // namespace bpftap
