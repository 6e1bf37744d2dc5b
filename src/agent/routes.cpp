// The REST API's handlers: sessions (list, get, create, replace, delete), bypasses, reload and
// /metrics; writes need the bearer token and are logged. The front end (api_server.h) has
// bounded connections, rates, times and sizes before any of these runs.
#include "agent/agent_impl.h"

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "mirror/mirror.h"
#include "util/text.h"

namespace bpftap::agent {
namespace {

// The status an error answers with: the client's fault, the agent's limits (try later), or ours.
int status_for(const Error &e) {
  if (e.bad_input) return 400;
  if (e.code == EMFILE || e.code == ENFILE || e.code == EINTR) return 503;
  return 500;
}

} // namespace

void Agent::Impl::forget_expired_bypasses() {
  const auto now = Clock::now();
  std::erase_if(bypasses, [&](const auto &kv) { return kv.second.until <= now; });
}

void Agent::Impl::setup_api() {
  auto authorized = [this](const httplib::Request &req, httplib::Response &res) {
    if (token.empty()) {
      res.status = 403;
      res.set_content(R"({"error":"writes are disabled: no api token_file is configured"})", "application/json");
      return false;
    }
    if (!constant_time_equal(req.get_header_value("Authorization"), "Bearer " + token)) {
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_content(R"({"error":"a valid bearer token is needed for writes"})", "application/json");
      return false;
    }
    return true;
  };
  auto error = [](httplib::Response &res, int status, const std::string &msg) {
    res.status = status;
    res.set_content(dump(json{{"error", msg}}), "application/json");
  };
  auto fail_with = [error](httplib::Response &res, const Error &e) { error(res, status_for(e), e.message()); };
  ApiServer &h = *http;
  // An audit line for every write, whoever sent it and whatever it got (GETs are not logged).
  h.set_logger([](const httplib::Request &req, const httplib::Response &res) {
    if (req.method == "GET" || req.method == "HEAD") return;
    std::string body = req.body.empty() ? "" : " " + escape_bytes(req.body.substr(0, 200));
    spdlog::info("api: {} {}{} from {}: {}", req.method, escape_bytes(req.path), body, req.remote_addr, res.status);
  });
  h.Get("/v1/sessions", [this](const httplib::Request &, httplib::Response &res) {
    std::lock_guard lock(mu);
    json j = json::array();
    for (auto &[name, s] : sessions) j.push_back(session_json(*s));
    for (auto &[name, w] : waiting) j.push_back(waiting_json(w));
    res.set_content(dump(j), "application/json");
  });
  h.Get(R"(/v1/sessions/([A-Za-z0-9_-]+))", [this, error](const httplib::Request &req, httplib::Response &res) {
    std::lock_guard lock(mu);
    json j = find_json(req.matches[1]);
    if (j.is_null()) return error(res, 404, "no such session");
    res.set_content(dump(j), "application/json");
  });
  h.Post("/v1/sessions", [this, authorized, error, fail_with](const httplib::Request &req, httplib::Response &res) {
    if (!authorized(req, res)) return;
    auto c = parse_session_json(req.body, "request");
    if (!c) return error(res, 400, c.error().message());
    std::lock_guard change(change_mu);
    {
      std::lock_guard lock(mu);
      if (sessions.count(c->name) || waiting.count(c->name)) return error(res, 409, "session " + c->name + " exists");
    }
    auto s = build_session(*c);  // compiles and loads: the lock is free meanwhile
    if (!s) return fail_with(res, s.error());
    std::lock_guard lock(mu);
    if (*s) {
      if (auto r = install(std::move(*s)); !r) return fail_with(res, r.error());
    } else {
      wait_for_namespace(*c);
    }
    res.status = 201;
    res.set_content(dump(find_json(c->name)), "application/json");
  });
  h.Put(R"(/v1/sessions/([A-Za-z0-9_-]+))", [this, authorized, error, fail_with](const httplib::Request &req, httplib::Response &res) {
    if (!authorized(req, res)) return;
    auto c = parse_session_json(req.body, "request");
    if (!c) return error(res, 400, c.error().message());
    if (c->name != req.matches[1]) return error(res, 400, "the body's name differs from the URL's");
    std::lock_guard change(change_mu);
    {
      std::lock_guard lock(mu);
      if (!sessions.count(c->name) && !waiting.count(c->name)) return error(res, 404, "no such session");
    }
    // The old one runs on if the new one cannot start; unless the new one takes its VNI to
    // another sensor: then it stops first, and starts again if the new one fails.
    const SessionConfig &incoming = *c;
    auto yielded = yield_vxlan({incoming}, [&](const SessionConfig &old) { return old.name != incoming.name; });
    auto s = build_session(*c);
    if (!s) {
      restore(std::move(yielded));
      return fail_with(res, s.error());
    }
    std::lock_guard lock(mu);
    sessions.erase(c->name);  // detached before its successor attaches (the same tc hooks)
    waiting.erase(c->name);
    if (*s) {
      if (auto r = install(std::move(*s)); !r) {
        unwatch_unused();
        return fail_with(res, r.error());
      }
    } else {
      wait_for_namespace(*c);
    }
    unwatch_unused();
    res.set_content(dump(find_json(c->name)), "application/json");
  });
  h.Delete(R"(/v1/sessions/([A-Za-z0-9_-]+))", [this, authorized, error](const httplib::Request &req, httplib::Response &res) {
    if (!authorized(req, res)) return;
    std::lock_guard change(change_mu);
    std::unique_ptr<Session> gone;  // let go of outside mu
    {
      std::lock_guard lock(mu);
      auto it = sessions.find(req.matches[1]);
      if (it != sessions.end()) {
        gone = std::move(it->second);
        sessions.erase(it);
      } else if (!waiting.erase(req.matches[1])) {
        return error(res, 404, "no such session");
      }
      unwatch_unused();
    }
    gone.reset();
    res.status = 204;
  });
  h.Post("/v1/bypass", [this, authorized, error](const httplib::Request &req, httplib::Response &res) {
    if (!authorized(req, res)) return;
    auto b = parse_bypass(req.body);
    if (!b) return error(res, 400, b.error().message());
    std::lock_guard lock(mu);
    int applied = 0;
    for (auto &[name, s] : sessions) {
      if (!s->is_mirror()) continue;
      if (auto r = s->bypass(b->proto, b->src, b->sport, b->dst, b->dport, b->seconds); !r)
        return error(res, status_for(r.error()), r.error().message());
      applied++;
    }
    auto span = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(b->seconds));
    auto expires = std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(span);
    const auto key = make_flow_key(b->proto, b->src, b->sport, b->dst, b->dport);
    forget_expired_bypasses();
    auto same = std::find_if(bypasses.begin(), bypasses.end(),
                             [&](const auto &e) { return std::memcmp(&e.second.key, &key, sizeof(key)) == 0; });
    const bool renewed = same != bypasses.end();
    uint64_t id = renewed ? same->first : next_bypass++;
    Bypass flow = renewed ? same->second.flow : *b;  // listed as it was first given
    flow.seconds = b->seconds;
    res.status = renewed ? 200 : 201;
    bypasses[id] = BypassEntry{flow, key, Clock::now() + span, expires};
    res.set_content(dump(json{{"id", std::to_string(id)}, {"sessions", applied}, {"seconds", b->seconds},
                              {"expires", utc_time(expires)}}),
                    "application/json");
  });
  h.Get("/v1/bypass", [this](const httplib::Request &, httplib::Response &res) {
    std::lock_guard lock(mu);
    forget_expired_bypasses();
    json j = json::array();
    const auto now = Clock::now();
    for (const auto &[id, e] : bypasses) {
      json b{{"id", std::to_string(id)}, {"proto", proto_name(e.flow.proto)}, {"src", e.flow.src}, {"dst", e.flow.dst},
             {"expires", utc_time(e.expires)},
             {"seconds_left", std::chrono::duration<double>(e.until - now).count()}};
      if (e.flow.proto != IPPROTO_ICMP) {
        b["sport"] = e.flow.sport;
        b["dport"] = e.flow.dport;
      }
      j.push_back(std::move(b));
    }
    res.set_content(dump(j), "application/json");
  });
  h.Delete(R"(/v1/bypass/([0-9]{1,19}))", [this, authorized, error](const httplib::Request &req, httplib::Response &res) {
    if (!authorized(req, res)) return;
    std::lock_guard lock(mu);
    forget_expired_bypasses();
    auto it = bypasses.find(std::stoull(req.matches[1]));
    if (it == bypasses.end()) return error(res, 404, "no such bypass (it may have expired)");
    const Bypass &f = it->second.flow;
    for (auto &[name, s] : sessions)
      if (s->is_mirror()) s->unbypass(f.proto, f.src, f.sport, f.dst, f.dport);
    bypasses.erase(it);
    res.status = 204;
  });
  h.Post("/v1/reload", [this, authorized, fail_with](const httplib::Request &req, httplib::Response &res) {
    if (!authorized(req, res)) return;  // a body, if any, is not read: the config file is the source
    reopen_outputs();
    auto r = reload();
    if (!r) return fail_with(res, r.error());
    res.set_content(dump(json{{"result", *r}}), "application/json");
  });
  h.Get("/metrics", [this](const httplib::Request &, httplib::Response &res) {
    res.set_content(metrics(), "text/plain; version=0.0.4");
  });
}

} // namespace bpftap::agent
