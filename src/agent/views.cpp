// The API's JSON of sessions: running ones with their health and counters, waiting ones with
// why they wait.
#include "agent/agent_impl.h"

#include "util/text.h"

namespace bpftap::agent {
namespace {

// A capture session's counts of one hook.
json hooked_json(const InterfaceStats::Hooked &h) {
  json j;
  for (const auto &k : kCounters)
    if (k.hooked) j[k.key] = h.*(k.hooked);
  return j;
}

json counters_json(const InterfaceCounters &c, const SessionConfig &cfg) {
  const bool mirror = cfg.mirror.has_value();
  json j;
  j["interface"] = escape_bytes(c.name);  // the kernel's bytes: not always UTF-8
  if (!c.direction.empty()) j["direction"] = c.direction;
  j["attached"] = c.attached;
  for (const auto &k : kCounters)
    if (counts_in(k, mirror)) j[k.key] = c.*(k.field);
  if (!mirror) {
    if (cfg.ingress) j["in"] = hooked_json(c.in);
    if (cfg.egress) j["out"] = hooked_json(c.out);
  }
  return j;
}

} // namespace

std::string dump(const json &j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json session_json(const Session &s) {
  json j = json::parse(session_to_json(s.config()));
  SessionHealth h = s.health();
  j["state"] = h.failing ? "failing" : "running";
  if (h.failing) j["reason"] = h.reason;
  json ifs = json::array();
  for (const auto &c : s.counters()) ifs.push_back(counters_json(c, s.config()));
  j["counters"] = ifs;
  j["attach_errors"] = s.attach_errors();
  j["write_errors"] = h.write_errors;
  if (s.config().inspect) {
    j["alerts_dropped"] = h.alerts_dropped;
    j["flows_dropped"] = h.flows_dropped;
  }
  // One file for the whole session: what it lost cannot be told per interface.
  if (s.config().capture && s.config().capture->per_session()) j["file_lost"] = h.file_lost;
  j["interfaces_gone"] = h.interfaces_gone;
  if (s.is_mirror()) j["target_lost"] = h.target_lost;
  return j;
}

json waiting_json(const Waiting &w) {
  json j = json::parse(session_to_json(w.cfg));
  j["state"] = "waiting";
  j["reason"] = w.last_error.empty() ? "network namespace " + w.cfg.netns + " does not exist" : w.last_error;
  json ifs = json::array();
  for (const auto &c : w.counters) ifs.push_back(counters_json(c, w.cfg));
  j["counters"] = ifs;
  return j;
}

// The session NAME as JSON, running or waiting; null if there is none. Under mu.
json Agent::Impl::find_json(const std::string &name) {
  if (auto it = sessions.find(name); it != sessions.end()) return session_json(*it->second);
  if (auto it = waiting.find(name); it != waiting.end()) return waiting_json(it->second);
  return nullptr;
}

} // namespace bpftap::agent
