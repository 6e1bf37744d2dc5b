#include "agent/bypass.h"

#include <arpa/inet.h>

#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "mirror/spec.h"
#include "util/text.h"

namespace bpftap::agent {

using json = nlohmann::ordered_json;

const char *proto_name(uint8_t p) { return p == IPPROTO_TCP ? "tcp" : p == IPPROTO_UDP ? "udp" : "icmp"; }

std::string utc_time(std::chrono::system_clock::time_point t) {
  time_t s = std::chrono::system_clock::to_time_t(t);
  tm u{};
  gmtime_r(&s, &u);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &u);
  return buf;
}

Result<Bypass> parse_bypass(const std::string &body) {
  json b = json::parse(body, nullptr, false);
  if (b.is_discarded() || !b.is_object()) return bad_input("expected a JSON object (UTF-8)");
  Bypass out;
  bool sport = false, dport = false;
  for (const auto &[k, v] : b.items()) {
    if (k == "proto") {
      if (!v.is_string()) return bad_input("proto must be a string: tcp, udp or icmp");
      std::string p = v.get<std::string>();
      out.proto = p == "tcp" ? IPPROTO_TCP : p == "udp" ? IPPROTO_UDP : p == "icmp" ? IPPROTO_ICMP : 0;
      if (!out.proto) return bad_input("proto must be tcp, udp or icmp");
    } else if (k == "src" || k == "dst") {
      if (!v.is_string()) return bad_input(k + " must be a string (an IPv4 or IPv6 address)");
      (k == "src" ? out.src : out.dst) = v.get<std::string>();
    } else if (k == "sport" || k == "dport") {
      if (!v.is_number_unsigned() || v.get<uint64_t>() > 65535) return bad_input(k + " must be a whole number 0-65535");
      (k == "sport" ? out.sport : out.dport) = static_cast<uint16_t>(v.get<uint64_t>());
      (k == "sport" ? sport : dport) = true;
    } else if (k == "seconds") {
      if (!v.is_number()) return bad_input("seconds must be a number");
      out.seconds = v.get<double>();
      if (!(out.seconds > 0 && out.seconds <= 86400)) return bad_input("seconds must be in (0, 86400]");
    } else {
      return bad_input(fmt::format("unknown key '{}' (known: proto, src, dst, sport, dport, seconds)", escape_bytes(k)));
    }
  }
  int fs = address_family(out.src), fd = address_family(out.dst);
  if (!fs) return bad_input(fmt::format("src '{}' is not an IPv4 or IPv6 address", escape_bytes(out.src)));
  if (!fd) return bad_input(fmt::format("dst '{}' is not an IPv4 or IPv6 address", escape_bytes(out.dst)));
  if (fs != fd) return bad_input("src and dst must both be IPv4 or both IPv6");
  if (out.proto == IPPROTO_ICMP && (sport || dport)) return bad_input("icmp has no ports");
  if (out.proto != IPPROTO_ICMP && !(sport && dport))
    return bad_input(fmt::format("a {} flow needs both ports: sport and dport", proto_name(out.proto)));
  return out;
}

} // namespace bpftap::agent
