// /metrics: the Prometheus text of every running session's counters and health, of the
// descriptor budget and of the API's front end.
#include "agent/agent_impl.h"

#include <fmt/format.h>

#include "kernel/hook_words.h"
#include "util/text.h"

namespace bpftap::agent {
namespace {

// A Prometheus label value: printable UTF-8, with \, " and newlines escaped.
std::string label(const std::string &v) {
  std::string out;
  for (char c : escape_bytes(v)) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

} // namespace

std::string metrics_text(const std::map<std::string, std::unique_ptr<Session>> &sessions, size_t waiting,
                         uint64_t budget_refusals, const ApiServer &api) {
  std::string out;
  std::map<std::string, std::vector<InterfaceCounters>> all;
  std::map<std::string, SessionHealth> health;
  for (auto &[name, s] : sessions) {
    all[name] = s->counters();
    health[name] = s->health();
  }
  for (const auto &m : kCounters) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", m.metric, m.help, m.metric);
    for (auto &[name, s] : sessions) {
      if (!counts_in(m, s->is_mirror())) continue;
      const std::string session = label(name);  // (a lambda cannot capture a structured binding in C++20)
      auto line = [&](const InterfaceCounters &c, const std::string &dir, uint64_t v) {
        out += fmt::format("{}{{session=\"{}\",interface=\"{}\",direction=\"{}\"}} {}\n", m.metric, session,
                           label(c.name), dir, v);
      };
      const auto &sc = s->config();
      for (const auto &c : all[name]) {
        if (!c.direction.empty()) {
          line(c, c.direction, c.*(m.field));  // mirror sessions: a row per hook already
        } else if (m.hooked) {
          if (sc.ingress) line(c, "in", c.in.*(m.hooked));
          if (sc.egress) line(c, "out", c.out.*(m.hooked));
          // The perf transport's lost records have no direction: they get their own series.
          uint64_t hooks = c.in.*(m.hooked) + c.out.*(m.hooked);
          if (c.*(m.field) > hooks) line(c, "unknown", c.*(m.field) - hooks);
        } else {
          // Per interface (its capture file holds both directions): labelled with the hooks.
          line(c, direction_word(sc.ingress, sc.egress), c.*(m.field));
        }
      }
    }
  }
  out += "# HELP bpftap_attach_errors_total Interfaces a session failed to attach to.\n# TYPE bpftap_attach_errors_total counter\n";
  for (auto &[name, s] : sessions) out += fmt::format("bpftap_attach_errors_total{{session=\"{}\"}} {}\n", label(name), s->attach_errors());
  out += "# HELP bpftap_interfaces_attached Interfaces a session is attached to now.\n# TYPE bpftap_interfaces_attached gauge\n";
  for (auto &[name, s] : sessions) {
    size_t n = 0;
    for (const auto &c : all[name]) n += c.attached && c.direction != "out";
    out += fmt::format("bpftap_interfaces_attached{{session=\"{}\"}} {}\n", label(name), n);
  }
  enum class For { All, Inspect, Mirror, SessionFile };
  struct Health {
    const char *name, *type, *help;
    For only;
    uint64_t (*value)(const SessionHealth &);
  };
  static const Health hs[] = {
      {"bpftap_session_failing", "gauge", "1 while something the session should do fails (see the API's reason).",
       For::All, [](const SessionHealth &h) { return uint64_t{h.failing}; }},
      {"bpftap_write_errors_total", "counter", "Failed writes to the session's capture, alert and flow files.",
       For::All, [](const SessionHealth &h) { return h.write_errors; }},
      {"bpftap_alerts_dropped_total", "counter", "Alerts given up: more waited to be written than memory allows.",
       For::Inspect, [](const SessionHealth &h) { return h.alerts_dropped; }},
      {"bpftap_flows_dropped_total", "counter", "Flow records given up: more waited to be written than memory allows.",
       For::Inspect, [](const SessionHealth &h) { return h.flows_dropped; }},
      {"bpftap_file_lost_total", "counter", "Records the session's one capture file (files: per-session) could not keep.",
       For::SessionFile, [](const SessionHealth &h) { return h.file_lost; }},
      {"bpftap_interfaces_gone_total", "counter", "Attached interfaces that were deleted.",
       For::All, [](const SessionHealth &h) { return h.interfaces_gone; }},
      {"bpftap_mirror_target_lost_total", "counter", "Times the mirror target interface went away.",
       For::Mirror, [](const SessionHealth &h) { return h.target_lost; }},
  };
  for (const auto &h : hs) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", h.name, h.help, h.name, h.type);
    for (auto &[name, s] : sessions) {
      if ((h.only == For::Inspect && !s->config().inspect) || (h.only == For::Mirror && !s->is_mirror()) ||
          (h.only == For::SessionFile && !(s->config().capture && s->config().capture->per_session())))
        continue;
      out += fmt::format("{}{{session=\"{}\"}} {}\n", h.name, label(name), h.value(health[name]));
    }
  }
  struct Inspected {
    const char *name, *type, *help;
    uint64_t Session::InspectTotals::*field;
  };
  static const Inspected is[] = {
      {"bpftap_inspected_packets_total", "counter", "Packets the session's inspector decoded.", &Session::InspectTotals::packets},
      {"bpftap_flows_total", "counter", "Flows the session's inspector has seen begin.", &Session::InspectTotals::flows},
      {"bpftap_flows_active", "gauge", "Flows the session's inspector holds now.", &Session::InspectTotals::active_flows},
      {"bpftap_alerts_total", "counter", "Alerts the session's inspector raised.", &Session::InspectTotals::alerts},
  };
  std::map<std::string, Session::InspectTotals> inspected;
  for (auto &[name, s] : sessions)
    if (s->config().inspect) inspected[name] = s->inspect_totals();
  for (const auto &m : is) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", m.name, m.help, m.name, m.type);
    for (const auto &[name, t] : inspected) out += fmt::format("{}{{session=\"{}\"}} {}\n", m.name, label(name), t.*(m.field));
  }
  struct Gauge {
    const char *name, *help;
    uint64_t RingUsage::*field;
  };
  static const Gauge rings[] = {
      {"bpftap_ring_buffer_bytes", "Kernel ring buffer memory of a capture session (all its interfaces), per ring: small (copies of up to 512 bytes), big (longer ones) and spill (longer ones when big is full).", &RingUsage::size},
      {"bpftap_ring_buffer_used_bytes", "Bytes waiting in the ring buffer at its last drain.", &RingUsage::used},
      {"bpftap_ring_buffer_peak_used_bytes", "The most bytes ever waiting in the ring buffer at a drain; at its size, copies are dropped.", &RingUsage::peak},
  };
  for (const auto &g : rings) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", g.name, g.help, g.name);
    for (auto &[name, s] : sessions)
      if (!s->is_mirror())
        for (const auto &r : s->ring_usage())
          out += fmt::format("{}{{session=\"{}\",ring=\"{}\"}} {}\n", g.name, label(name), r.ring, r.*(g.field));
  }
  out += fmt::format("# HELP bpftap_sessions Sessions running.\n# TYPE bpftap_sessions gauge\nbpftap_sessions {}\n", sessions.size());
  out += fmt::format("# HELP bpftap_sessions_waiting Sessions waiting for their network namespace.\n"
                     "# TYPE bpftap_sessions_waiting gauge\nbpftap_sessions_waiting {}\n", waiting);
  FdUsage u = fd_usage();
  out += fmt::format("# HELP bpftap_open_fds File descriptors the agent has open.\n# TYPE bpftap_open_fds gauge\n"
                     "bpftap_open_fds {}\n", u.open);
  out += fmt::format("# HELP bpftap_fd_limit The agent's file descriptor limit (RLIMIT_NOFILE).\n# TYPE bpftap_fd_limit gauge\n"
                     "bpftap_fd_limit {}\n", u.limit);
  out += fmt::format("# HELP bpftap_fd_budget_refusals_total Sessions and interfaces refused to stay within the descriptor budget.\n"
                     "# TYPE bpftap_fd_budget_refusals_total counter\nbpftap_fd_budget_refusals_total {}\n", budget_refusals);
  ApiRefusals r = api.refusals();
  out += "# HELP bpftap_api_refused_total API connections refused before a handler saw them, by reason.\n"
         "# TYPE bpftap_api_refused_total counter\n";
  for (auto [reason, v] : {std::pair{"connections", r.connections}, {"client_connections", r.client_connections},
                           {"rate", r.rate}, {"timeout", r.timeout}, {"too_large", r.too_large},
                           {"bad_request", r.bad_request}, {"no_descriptor", r.no_descriptor}})
    out += fmt::format("bpftap_api_refused_total{{reason=\"{}\"}} {}\n", reason, v);
  out += fmt::format("# HELP bpftap_api_requests_total API requests answered by a handler.\n"
                     "# TYPE bpftap_api_requests_total counter\nbpftap_api_requests_total {}\n", api.served());
  out += fmt::format("# HELP bpftap_api_connections API connections open now.\n# TYPE bpftap_api_connections gauge\n"
                     "bpftap_api_connections {}\n", api.open_connections());
  return out;
}

std::string Agent::Impl::metrics() {
  std::lock_guard lock(mu);
  return metrics_text(sessions, waiting.size(), budget_refusals.load(), *http);
}

} // namespace bpftap::agent
