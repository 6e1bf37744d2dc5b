// pcapcmp: compares, packet for packet, what bpftap captured on one interface (from its
// multi-interface pcapng) with what tcpdump captured on that interface (pcap or pcapng).
//
//   pcapcmp BPFTAP.pcapng IFNAME TCPDUMP.pcap [--max-dts-us N]
//   pcapcmp A.pcap - B.pcap --no-ts       (any two captures, all packets, timestamps ignored)
//   --no-dir: do not require epb_flags directions in BPFTAP.pcapng (the libpcap backend)
//   --after NS: compare only packets stamped at or after NS (ns since the epoch): captures started
//               one after the other differ in the stray packets (ARP) seen before the last one ran
//
// Bytes, captured length and original length must be identical and in the same order; the
// timestamps must agree within N microseconds (default 1000). Exit 0 if identical, 1 if not,
// 2 on unreadable input.
#include <pcap/pcap.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

struct Pkt {
  uint64_t ts_ns;
  uint32_t len;
  uint32_t dir;  // epb_flags direction bits (0 when unknown)
  std::vector<uint8_t> bytes;
};

template <class T> T get(const std::vector<uint8_t> &b, size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof(v));
  return v;
}

[[noreturn]] void die(const std::string &msg) {
  std::fprintf(stderr, "pcapcmp: %s\n", msg.c_str());
  std::exit(2);
}

// Minimal pcapng reader for files written in host byte order (as bpftap writes them).
std::vector<Pkt> read_pcapng_iface(const std::string &path, const std::string &ifname) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die("cannot open " + path);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> names;  // per interface id, reset at each section
  std::vector<Pkt> out;
  size_t off = 0;
  while (off + 12 <= b.size()) {
    uint32_t type = get<uint32_t>(b, off), len = get<uint32_t>(b, off + 4);
    if (len < 12 || off + len > b.size()) die(path + ": truncated block");
    if (type == 0x0A0D0D0A) {
      if (get<uint32_t>(b, off + 8) != 0x1A2B3C4D) die(path + ": not host byte order");
      names.clear();
    } else if (type == 1) {  // IDB: options start at +16
      std::string name;
      for (size_t o = off + 16; o + 4 <= off + len - 4;) {
        uint16_t code = get<uint16_t>(b, o), olen = get<uint16_t>(b, o + 2);
        if (code == 0) break;
        if (code == 2) name.assign(reinterpret_cast<const char *>(&b[o + 4]), olen);
        o += 4 + ((olen + 3u) & ~3u);
      }
      names.push_back(name);
    } else if (type == 6) {  // EPB
      uint32_t id = get<uint32_t>(b, off + 8);
      if (id >= names.size()) die(path + ": packet of an undeclared interface");
      uint64_t ts = (uint64_t{get<uint32_t>(b, off + 12)} << 32) | get<uint32_t>(b, off + 16);
      uint32_t cap = get<uint32_t>(b, off + 20), orig = get<uint32_t>(b, off + 24);
      uint32_t dir = 0;
      for (size_t o = off + 28 + ((cap + 3u) & ~3u); o + 4 <= off + len - 4;) {
        uint16_t code = get<uint16_t>(b, o), olen = get<uint16_t>(b, o + 2);
        if (code == 0) break;
        if (code == 2 && olen == 4) dir = get<uint32_t>(b, o + 4) & 3;
        o += 4 + ((olen + 3u) & ~3u);
      }
      if (names[id] == ifname)
        out.push_back({ts, orig, dir, std::vector<uint8_t>(b.begin() + off + 28, b.begin() + off + 28 + cap)});
    }
    off += len;
  }
  return out;
}

std::vector<Pkt> read_with_libpcap(const std::string &path) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t *p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
  if (!p) die(err);
  std::vector<Pkt> out;
  pcap_pkthdr *h;
  const u_char *d;
  int rc;
  while ((rc = pcap_next_ex(p, &h, &d)) == 1)
    out.push_back({static_cast<uint64_t>(h->ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(h->ts.tv_usec), h->len, 0,
                   std::vector<uint8_t>(d, d + h->caplen)});
  if (rc == -1) die(path + ": " + pcap_geterr(p));
  pcap_close(p);
  return out;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 4) die("usage: pcapcmp BPFTAP.pcapng IFNAME|- TCPDUMP.pcap [--max-dts-us N | --no-ts] [--no-dir] [--after NS]");
  long max_dts_us = 1000;
  bool check_ts = true, check_dir = std::string(argv[2]) != "-";
  bool require_dir = check_dir;
  uint64_t after = 0;
  for (int i = 4; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--max-dts-us" && i + 1 < argc) max_dts_us = std::atol(argv[++i]);
    else if (a == "--no-ts") check_ts = false;
    else if (a == "--no-dir") require_dir = false;  // sources without direction (libpcap)
    else if (a == "--after" && i + 1 < argc) after = std::strtoull(argv[++i], nullptr, 10);
    else die("unknown option " + a);
  }
  auto ours = check_dir ? read_pcapng_iface(argv[1], argv[2]) : read_with_libpcap(argv[1]);
  auto theirs = read_with_libpcap(argv[3]);
  auto drop_before = [after](std::vector<Pkt> &v) { std::erase_if(v, [after](const Pkt &p) { return p.ts_ns < after; }); };
  drop_before(ours);
  drop_before(theirs);
  size_t n = std::min(ours.size(), theirs.size());
  uint64_t max_dts = 0, no_dir = 0;
  for (size_t i = 0; i < n; i++) {
    const Pkt &a = ours[i], &b = theirs[i];
    if (a.bytes != b.bytes || a.len != b.len) {
      std::printf("%s: packet %zu differs: bpftap caplen %zu len %u, tcpdump caplen %zu len %u\n", argv[2], i + 1,
                  a.bytes.size(), a.len, b.bytes.size(), b.len);
      // Order or content? The neighbourhood, with timestamps, tells.
      for (size_t j = i > 2 ? i - 2 : 0; j < std::min(n, i + 3); j++)
        std::printf("  #%zu bpftap %lu.%09lu len %u | reference %lu.%09lu len %u\n", j + 1, ours[j].ts_ns / 1000000000,
                    ours[j].ts_ns % 1000000000, ours[j].len, theirs[j].ts_ns / 1000000000, theirs[j].ts_ns % 1000000000,
                    theirs[j].len);
      return 1;
    }
    uint64_t d = a.ts_ns > b.ts_ns ? a.ts_ns - b.ts_ns : b.ts_ns - a.ts_ns;
    max_dts = std::max(max_dts, d);
    no_dir += check_dir && a.dir == 0;
  }
  std::printf("%s: first %zu packets, reference %zu packets, max |dts| %.1f us, %lu without direction\n",
              check_dir ? argv[2] : argv[1], ours.size(), theirs.size(), static_cast<double>(max_dts) / 1000.0, no_dir);
  if (ours.size() != theirs.size()) return 1;
  if ((check_ts && static_cast<long>(max_dts / 1000) > max_dts_us) || (require_dir && no_dir)) return 1;
  return 0;
}
