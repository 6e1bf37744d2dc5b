#include "sinks/text_sink.h"

#include <arpa/inet.h>

#include <cerrno>
#include <ctime>
#include <string>

#include <fmt/format.h>

namespace bpftap {
namespace {

uint16_t be16(std::span<const uint8_t> f, size_t off) { return static_cast<uint16_t>(f[off] << 8 | f[off + 1]); }

std::string addr(int family, const uint8_t *p) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, p, buf, sizeof(buf));
  return buf;
}

std::string l4(uint8_t proto, std::span<const uint8_t> f, size_t off, const std::string &src, const std::string &dst) {
  const char *name = proto == 6 ? "TCP" : proto == 17 ? "UDP" : proto == 1 ? "ICMP" : proto == 58 ? "ICMP6" : nullptr;
  if ((proto == 6 || proto == 17) && f.size() >= off + 4)
    return fmt::format("{}.{} > {}.{} {}", src, be16(f, off), dst, be16(f, off + 2), name);
  if (name) return fmt::format("{} > {} {}", src, dst, name);
  return fmt::format("{} > {} proto {}", src, dst, proto);
}

} // namespace

std::string describe_frame(std::span<const uint8_t> f) {
  if (f.size() < 14) return "truncated frame";
  size_t off = 12;
  uint16_t type = be16(f, off);
  std::string vlan;
  while ((type == 0x8100 || type == 0x88a8) && f.size() >= off + 6) {
    vlan += fmt::format("vlan {} ", be16(f, off + 2) & 0xfff);
    off += 4;
    type = be16(f, off);
  }
  off += 2;
  if (type == 0x0800 && f.size() >= off + 20) {
    size_t ihl = (f[off] & 0xf) * 4u;
    return vlan + "IPv4 " + l4(f[off + 9], f, off + ihl, addr(AF_INET, &f[off + 12]), addr(AF_INET, &f[off + 16]));
  }
  if (type == 0x86dd && f.size() >= off + 40)
    return vlan + "IPv6 " + l4(f[off + 6], f, off + 40, addr(AF_INET6, &f[off + 8]), addr(AF_INET6, &f[off + 24]));
  if (type == 0x0806) return vlan + "ARP";
  return vlan + fmt::format("ethertype {:#06x}", type);
}

Result<> TextSink::write(const Packet &pkt) {
  time_t secs = static_cast<time_t>(pkt.ts_ns / 1'000'000'000ull);
  tm local{};
  localtime_r(&secs, &local);
  const char *dir = pkt.dir == Direction::In ? "In " : pkt.dir == Direction::Out ? "Out" : "   ";
  const std::string &ifname = pkt.iface < ifaces_.size() ? ifaces_[pkt.iface].name : std::string("?");
  fmt::print(out_, "{:02}:{:02}:{:02}.{:09} {} {} {}, length {}\n", local.tm_hour, local.tm_min, local.tm_sec,
                 pkt.ts_ns % 1000000000ull, ifname, dir, describe_frame(pkt.data), pkt.wire_len);
  if (ferror(out_))
    return fail_errno("write to stdout", errno);
  return {};
}

Result<> TextSink::flush() {
  if (std::fflush(out_) != 0) return fail_errno("write to stdout", errno);
  return {};
}

} // namespace bpftap
