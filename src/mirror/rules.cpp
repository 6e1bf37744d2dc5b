#include "mirror/rules.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <set>

#include <fmt/format.h>

namespace bpftap {
namespace {

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) i++;
    size_t b = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') i++;
    if (i > b) out.push_back(s.substr(b, i - b));
  }
  return out;
}

template <typename T>
bool number(std::string_view s, T &v, T max) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && v <= max;
}

// "10.0.0.0/8", "2001:db8::/32" or a single address; family 4 or 6.
bool parse_cidr(std::string_view text, uint8_t &family, uint32_t addr[4], uint32_t mask[4]) {
  std::string s(text);
  unsigned bits = 0;
  bool has_len = false;
  if (auto slash = s.find('/'); slash != std::string::npos) {
    if (!number(std::string_view(s).substr(slash + 1), bits, 128u)) return false;
    s.resize(slash);
    has_len = true;
  }
  uint8_t raw[16] = {};
  if (inet_pton(AF_INET, s.c_str(), raw) == 1) {
    family = 4;
    if (!has_len) bits = 32;
    if (bits > 32) return false;
  } else if (inet_pton(AF_INET6, s.c_str(), raw) == 1) {
    family = 6;
    if (!has_len) bits = 128;
  } else {
    return false;
  }
  uint8_t m[16] = {};
  for (unsigned i = 0; i < bits; i++) m[i / 8] |= static_cast<uint8_t>(0x80u >> (i % 8));
  for (int i = 0; i < 16; i++) raw[i] &= m[i];  // 10.1.2.3/8 means 10.0.0.0/8
  std::memcpy(addr, raw, 16);
  std::memcpy(mask, m, 16);
  return true;
}

bool parse_range(std::string_view s, uint16_t &lo, uint16_t &hi) {
  auto dash = s.find('-');
  if (dash == std::string_view::npos) {
    if (!number(s, lo, uint16_t{65535})) return false;
    hi = lo;
    return true;
  }
  return number(s.substr(0, dash), lo, uint16_t{65535}) && number(s.substr(dash + 1), hi, uint16_t{65535}) && lo <= hi;
}

bool parse_proto(std::string_view s, bpftap_rule &r) {
  static const std::pair<const char *, int> names[] = {
      {"all", -1}, {"tcp", IPPROTO_TCP}, {"udp", IPPROTO_UDP}, {"icmp", IPPROTO_ICMP},
      {"icmpv6", IPPROTO_ICMPV6}, {"icmp6", IPPROTO_ICMPV6}, {"sctp", IPPROTO_SCTP}, {"gre", IPPROTO_GRE},
      {"esp", IPPROTO_ESP}, {"ah", IPPROTO_AH}};
  for (auto [name, v] : names)
    if (s == name) {
      r.has_proto = v >= 0;
      r.proto = static_cast<uint8_t>(v >= 0 ? v : 0);
      return true;
    }
  unsigned v = 0;
  if (!number(s, v, 255u)) return false;
  r.has_proto = 1;
  r.proto = static_cast<uint8_t>(v);
  return true;
}

std::string cidr_text(uint8_t family, const uint32_t addr[4], const uint32_t mask[4]) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, buf, sizeof(buf));
  int bits = 0;
  for (int i = 0; i < (family == 4 ? 1 : 4); i++) bits += __builtin_popcount(mask[i]);
  return fmt::format("{}/{}", buf, bits);
}

bool any_mask(const uint32_t m[4]) { return m[0] | m[1] | m[2] | m[3]; }

} // namespace

Result<bpftap_rule> parse_rule(std::string_view text) {
  auto bad = [&](std::string_view why) { return bad_input(fmt::format("rule '{}': {}", text, why)); };
  auto w = words(text);
  if (w.size() < 2) return bad("expected 'N accept|reject [proto P] [src CIDR] [dst CIDR] [sport A[-B]] [dport A[-B]]'");
  bpftap_rule r{};
  r.sport_hi = r.dport_hi = 65535;
  if (!number(w[0], r.number, 32766u) || r.number == 0) return bad("the rule number must be 1-32766");
  if (w[1] == "accept") r.action = BPFTAP_RULE_ACCEPT;
  else if (w[1] == "reject") r.action = BPFTAP_RULE_REJECT;
  else return bad("the action must be accept or reject");
  std::set<std::string_view> seen;
  bool ports = false;
  for (size_t i = 2; i < w.size(); i += 2) {
    std::string_view key = w[i];
    if (i + 1 >= w.size()) return bad(fmt::format("'{}' needs a value", key));
    std::string_view val = w[i + 1];
    if (!seen.insert(key).second) return bad(fmt::format("'{}' given twice", key));
    if (key == "proto") {
      if (!parse_proto(val, r)) return bad(fmt::format("unknown protocol '{}'", val));
    } else if (key == "src" || key == "dst") {
      uint8_t family = 0;
      bool src = key == "src";
      if (!parse_cidr(val, family, src ? r.src : r.dst, src ? r.src_mask : r.dst_mask))
        return bad(fmt::format("'{}' is not an IPv4 or IPv6 address or CIDR", val));
      if (r.family && r.family != family) return bad("src and dst are of different address families");
      r.family = family;
    } else if (key == "sport" || key == "dport") {
      bool s = key == "sport";
      if (!parse_range(val, s ? r.sport_lo : r.dport_lo, s ? r.sport_hi : r.dport_hi))
        return bad(fmt::format("'{}' is not a port or a range A-B", val));
      ports = true;
    } else {
      return bad(fmt::format("unknown keyword '{}'", key));
    }
  }
  if (ports && r.has_proto && r.proto != IPPROTO_TCP && r.proto != IPPROTO_UDP)
    return bad("ports need proto tcp or udp");
  return r;
}

Result<std::vector<bpftap_rule>> parse_rules(const std::vector<std::string> &texts) {
  std::vector<bpftap_rule> rules;
  std::set<uint32_t> numbers;
  for (const auto &t : texts) {
    auto r = parse_rule(t);
    if (!r) return tl::unexpected(r.error());
    if (!numbers.insert(r->number).second) return bad_input(fmt::format("rule number {} is used twice", r->number));
    rules.push_back(*r);
  }
  if (rules.size() > BPFTAP_MAX_RULES)
    return bad_input(fmt::format("{} rules given; a session holds at most {}", rules.size(), BPFTAP_MAX_RULES));
  std::sort(rules.begin(), rules.end(), [](const auto &a, const auto &b) { return a.number < b.number; });
  return rules;
}

Result<std::vector<bpftap_rule>> read_rules_file(const std::string &path) {
  std::ifstream in(path);
  if (!in) return bad_input(fmt::format("rules file {}: cannot be read", path));
  std::vector<std::string> texts;
  for (std::string line; std::getline(in, line);) {
    auto w = words(line);
    if (w.empty() || w[0].starts_with('#')) continue;
    texts.push_back(line);
  }
  return parse_rules(texts);
}

std::string format_rule(const bpftap_rule &r) {
  std::string s = fmt::format("{} {}", r.number, r.action == BPFTAP_RULE_ACCEPT ? "accept" : "reject");
  if (r.has_proto) s += fmt::format(" proto {}", r.proto);
  if (r.family && any_mask(r.src_mask)) s += " src " + cidr_text(r.family, r.src, r.src_mask);
  if (r.family && any_mask(r.dst_mask)) s += " dst " + cidr_text(r.family, r.dst, r.dst_mask);
  auto range = [](uint16_t lo, uint16_t hi) { return lo == hi ? fmt::format("{}", lo) : fmt::format("{}-{}", lo, hi); };
  if (r.sport_lo != 0 || r.sport_hi != 65535) s += " sport " + range(r.sport_lo, r.sport_hi);
  if (r.dport_lo != 0 || r.dport_hi != 65535) s += " dport " + range(r.dport_lo, r.dport_hi);
  return s;
}

} // namespace bpftap
