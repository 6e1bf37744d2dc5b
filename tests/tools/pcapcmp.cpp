// pcapcmp: compares, packet for packet, what bpftap captured on one interface (from its
// multi-interface pcapng) with what tcpdump captured on that interface (pcap or pcapng).
//
//   pcapcmp BPFTAP.pcapng IFNAME TCPDUMP.pcap [--max-dts-us N]
//   pcapcmp A.pcap - B.pcap --no-ts       (any two captures, all packets, timestamps ignored)
//   --no-dir: do not require epb_flags directions in BPFTAP.pcapng (the libpcap backend)
//   --after NS: compare only packets stamped at or after NS (ns since the epoch): captures started
//               one after the other differ in the stray packets (ARP) seen before the last one ran
//   pcapcmp --isb FILE.pcapng   (prints the file's interface statistics blocks, one per line:
//                                "<interface name> ifrecv=<n> ifdrop=<n>"; exit 2 if unreadable)
//
// Bytes, captured length and original length must be identical and in the same order; the
// timestamps must agree within N microseconds (default 1000). Exit 0 if identical, 1 if not,
// 2 on unreadable input. The pcapng file is read by the tests' reader (tests/common), the other
// capture by libpcap.
#include <pcap/pcap.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "pcapng_reader.h"

namespace {

struct Pkt {
  uint64_t ts_ns;
  uint32_t len;
  uint32_t dir;  // epb_flags direction bits (0 when unknown)
  std::vector<uint8_t> bytes;
};

[[noreturn]] void die(const std::string &msg) {
  std::fprintf(stderr, "pcapcmp: %s\n", msg.c_str());
  std::exit(2);
}

bpftap::test::pcapng::File read_pcapng(const std::string &path) {
  auto f = bpftap::test::pcapng::read_file(path);
  if (!f.ok()) die(path + ": " + f.error);
  return f;
}

std::vector<Pkt> read_pcapng_iface(const std::string &path, const std::string &ifname) {
  auto f = read_pcapng(path);
  std::vector<Pkt> out;
  for (auto &p : f.packets)
    if (f.interfaces[p.iface].name == ifname) out.push_back({p.ts_ns, p.len, p.direction(), std::move(p.bytes)});
  return out;
}

// --isb: one line per interface statistics block, "<interface name> ifrecv=<n> ifdrop=<n>"
// ("?" for an interface without a name, "None" for an absent counter).
int print_isbs(const std::string &path) {
  auto f = read_pcapng(path);
  auto num = [](const std::optional<uint64_t> &v) { return v ? std::to_string(*v) : std::string("None"); };
  for (const auto &s : f.stats) {
    const std::string &name = f.interfaces[s.iface].name;
    std::printf("%s ifrecv=%s ifdrop=%s\n", name.empty() ? "?" : name.c_str(), num(s.ifrecv).c_str(),
                num(s.ifdrop).c_str());
  }
  return 0;
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
  if (argc == 3 && std::string(argv[1]) == "--isb") return print_isbs(argv[2]);
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
