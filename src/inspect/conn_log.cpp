#include "inspect/conn_log.h"

#include <netinet/in.h>

#include <algorithm>
#include <ctime>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "inspect/names.h"

namespace bpftap::inspect {
namespace {

// One conn.log value: unset (Zeek's "-" / omitted from JSON), or its JSON and TSV spellings.
struct Value {
  std::optional<std::string> json, tsv;
};

// Zeek writes times and intervals with 6 decimals (%.6f), in JSON as bare numbers too.
std::string fixed6(double v) { return fmt::format("{:.6f}", v); }

// Zeek's TSV escaping: the separator (and inside a set, the set separator) and non-printable
// bytes as \xHH; "(empty)" for an empty string, and a lone "-" escaped so it is not "unset".
std::string tsv_escape(const std::string &s, bool in_set = false) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\t' || (in_set && c == ',') || c < 0x20 || c >= 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  if (out.empty()) return "(empty)";
  if (out == "-") return "\\x2d";
  return out;
}

Value str(const std::string &s) { return {nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), tsv_escape(s)}; }
Value num(uint64_t v) { return {std::to_string(v), std::to_string(v)}; }
Value real(double v) { return {fixed6(v), fixed6(v)}; }
Value boolean(bool b) { return {b ? "true" : "false", b ? "T" : "F"}; }
Value unset() { return {}; }
Value strings(const std::vector<std::string> &v) {
  nlohmann::json j = v;
  std::string t;
  for (const auto &s : v) t += (t.empty() ? "" : ",") + tsv_escape(s, true);
  return {j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), v.empty() ? "(empty)" : t};
}

const char *zeek_proto(uint8_t p) {
  if (p == IPPROTO_TCP) return "tcp";
  if (p == IPPROTO_UDP) return "udp";
  if (p == IPPROTO_ICMP || p == IPPROTO_ICMPV6) return "icmp";
  return "unknown_transport";
}

struct Column {
  const char *name, *type;
};
constexpr Column kColumns[] = {
    {"ts", "time"},          {"uid", "string"},          {"id.orig_h", "addr"},       {"id.orig_p", "port"},
    {"id.resp_h", "addr"},   {"id.resp_p", "port"},      {"proto", "enum"},           {"service", "string"},
    {"duration", "interval"}, {"orig_bytes", "count"},   {"resp_bytes", "count"},     {"conn_state", "string"},
    {"local_orig", "bool"},  {"local_resp", "bool"},     {"missed_bytes", "count"},   {"history", "string"},
    {"orig_pkts", "count"},  {"orig_ip_bytes", "count"}, {"resp_pkts", "count"},      {"resp_ip_bytes", "count"},
    {"tunnel_parents", "set[string]"}, {"community_id", "string"}, {"vlan", "int"},
    {"interface", "string"}, {"app", "string"},          {"ndpi_risks", "vector[string]"},
};

// Zeek's service: only what an analyzer confirmed, so nothing for an unanswered flow or for a
// protocol nDPI only guessed from the port.
std::string service(const Flow &f) {
  if (!f.dpi || f.dpi->guessed() || f.resp_pkts == 0) return "";
  return zeek_service(f.dpi->protocol(), f.proto);
}

std::vector<Value> values(const Flow &f, const std::string &interface) {
  bool icmp = f.proto == IPPROTO_ICMP || f.proto == IPPROTO_ICMPV6;
  double duration = static_cast<double>(f.last_ns - f.first_ns) / 1e9;
  bool timed = f.last_ns > f.first_ns;  // Zeek sets duration and the byte counts only then
  std::string svc = service(f);
  return {
      real(static_cast<double>(f.first_ns) / 1e9),
      str(f.uid),
      str(f.orig.ip.str()),
      num(icmp ? f.icmp_type : f.orig.port),
      str(f.resp.ip.str()),
      num(icmp ? f.icmp_code : f.resp.port),
      {std::string("\"") + zeek_proto(f.proto) + "\"", zeek_proto(f.proto)},
      svc.empty() ? unset() : str(svc),
      timed ? real(duration) : unset(),
      timed ? num(f.orig_bytes) : unset(),
      timed ? num(f.resp_bytes) : unset(),
      str(f.conn_state()),
      boolean(is_local_address(f.orig.ip)),
      boolean(is_local_address(f.resp.ip)),
      num(0),  // missed_bytes: no reassembly, so no gap is ever seen (README)
      f.history.empty() ? unset() : str(f.history),
      num(f.orig_pkts),
      num(f.orig_ip_bytes),
      num(f.resp_pkts),
      num(f.resp_ip_bytes),
      unset(),  // tunnel_parents: IP-in-IP is decapsulated but the outer flow is not tracked
      str(f.community_id),
      f.vlan ? num(f.vlan) : unset(),
      interface.empty() ? unset() : str(interface),
      f.dpi ? str(f.dpi->app_name()) : unset(),
      f.dpi ? strings(risk_names(f.dpi->risks())) : unset(),
  };
}

std::string zeek_time_of_day() {
  time_t now = time(nullptr);
  struct tm tm {};
  gmtime_r(&now, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%d-%H-%M-%S", &tm);
  return buf;
}

} // namespace

bool is_local_address(const IpAddr &a) {
  const auto &b = a.bytes;
  if (a.family == 4)
    return b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) ||
           (b[0] == 100 && (b[1] & 0xc0) == 64) || b[0] == 127 || (b[0] == 169 && b[1] == 254);
  bool loopback = std::all_of(b.begin(), b.begin() + 15, [](uint8_t x) { return x == 0; }) && b[15] == 1;
  return (b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || loopback;
}

void ConnLog::header() {
  header_done_ = true;
  if (format_ != FlowFormat::Tsv) return;
  std::string fields, types;
  for (const auto &c : kColumns) {
    fields += std::string("\t") + c.name;
    types += std::string("\t") + c.type;
  }
  for (const char *l : {"#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-", "#path\tconn"})
    emit(l);
  emit("#open\t" + zeek_time_of_day());
  emit("#fields" + fields);
  emit("#types" + types);
}

void ConnLog::emit(const std::string &line) {
  if (lines_) lines_->line(line);
  else std::fprintf(out_, "%s\n", line.c_str());
}

void ConnLog::write(const Flow &f, const std::string &interface) {
  if (!out_ && !lines_) return;
  if (!header_done_) header();
  auto v = values(f, interface);
  std::string line;
  if (format_ == FlowFormat::Json) {
    for (size_t i = 0; i < v.size(); i++) {
      if (!v[i].json) continue;
      line += fmt::format("{}\"{}\":{}", line.empty() ? "{" : ",", kColumns[i].name, *v[i].json);
    }
    line += "}";
  } else {
    for (size_t i = 0; i < v.size(); i++) line += (i ? "\t" : "") + v[i].tsv.value_or("-");
  }
  emit(line);
}

ConnLog::~ConnLog() {
  if ((out_ || lines_) && format_ == FlowFormat::Tsv && header_done_) emit("#close\t" + zeek_time_of_day());
}

} // namespace bpftap::inspect
