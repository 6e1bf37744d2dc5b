// bpftap ctl: the agent's REST API from the command line (status, sessions, counters, reload,
// bypass add/list/delete), over the unix socket or TCP address the agent's config gives, with
// the bearer token from the same token_file.
#include <sys/socket.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "agent/config.h"
#include "cli/commands.h"
#include "cli/source.h"

namespace bpftap::cli {
namespace {

using json = nlohmann::json;

struct CtlArgs {
  std::string config = "/etc/bpftap/agent.yaml";
  std::string listen;      // overrides the config's api.listen
  std::string token_file;  // overrides the config's api.token_file
  std::string session;     // counters: one session only
  bool json_output = false;
  // bypass add
  std::string proto = "tcp", src, dst, id;
  int sport = -1, dport = -1;
  double seconds = 60;
};

struct Reply {
  int status;
  std::string body;
};

class Client {
public:
  static Result<Client> open(const CtlArgs &a) {
    std::string listen = a.listen, token_file = a.token_file;
    if (listen.empty() || token_file.empty()) {
      auto cfg = agent::load_agent_config(a.config);
      if (!cfg && listen.empty())
        return tl::unexpected(Error{cfg.error().code, cfg.error().message() + " (or give --api)", true});
      if (cfg) {
        if (listen.empty()) listen = cfg->api.listen;
        if (token_file.empty()) token_file = cfg->api.token_file;
      }
    }
    Client c;
    c.where_ = listen;
    c.token_file_ = token_file;
    if (listen.starts_with("unix:")) {
      c.http_ = std::make_unique<httplib::Client>(listen.substr(5));
      c.http_->set_address_family(AF_UNIX);
    } else {
      auto colon = listen.rfind(':');
      if (colon == std::string::npos) return bad_input(fmt::format("--api {}: give HOST:PORT or unix:PATH", listen));
      c.http_ = std::make_unique<httplib::Client>(listen.substr(0, colon), std::atoi(listen.c_str() + colon + 1));
    }
    c.http_->set_connection_timeout(3);
    c.http_->set_read_timeout(30);
    return c;
  }

  Result<Reply> get(const std::string &path) { return send("GET", path, ""); }
  Result<Reply> post(const std::string &path, const std::string &body) { return send("POST", path, body); }
  Result<Reply> del(const std::string &path) { return send("DELETE", path, ""); }

private:
  Result<std::string> token() const {
    if (token_file_.empty()) return bad_input("the agent's config has no api token_file: it accepts no writes");
    std::ifstream in(token_file_);
    if (!in) return tl::unexpected(Error{errno, "read the agent's token " + token_file_ + " (writes need it; run as root?)"});
    std::string t;
    std::getline(in, t);
    while (!t.empty() && (t.back() == '\r' || t.back() == ' ')) t.pop_back();
    return t;
  }

  Result<Reply> send(const std::string &method, const std::string &path, const std::string &body) {
    httplib::Headers headers;
    if (method != "GET") {
      auto t = token();
      if (!t) return tl::unexpected(t.error());
      headers.emplace("Authorization", "Bearer " + *t);
    }
    httplib::Result r = method == "GET"    ? http_->Get(path, headers)
                        : method == "POST" ? http_->Post(path, headers, body, "application/json")
                                           : http_->Delete(path, headers);
    if (!r) return fail(fmt::format("cannot reach the agent at {}: {}", where_, httplib::to_string(r.error())));
    return Reply{r->status, r->body};
  }

  std::string where_, token_file_;
  std::unique_ptr<httplib::Client> http_;
};

// An HTTP error as one line: the agent's {"error": ...} when it gave one.
int http_error(const std::string &what, const Reply &r) {
  json j = json::parse(r.body, nullptr, false);
  std::string msg = j.is_object() && j.contains("error") ? j["error"].get<std::string>() : r.body;
  if (r.status == 404 && msg.empty()) msg = "not found (an agent without this route?)";
  std::fprintf(stderr, "bpftap: %s: HTTP %d%s%s\n", what.c_str(), r.status, msg.empty() ? "" : ": ", msg.c_str());
  return r.status >= 400 && r.status < 500 && r.status != 401 && r.status != 403 ? kExitBadInput : kExitFailure;
}

template <class F> int with_client(const CtlArgs &a, F f) {
  auto c = Client::open(a);
  if (!c) return report(c.error());
  return f(*c);
}

std::string join_interfaces(const json &counters) {
  std::string out;
  for (const auto &c : counters)
    if (c.is_object() && c.contains("interface"))
      out += (out.empty() ? "" : ",") + c["interface"].get<std::string>();
  return out.empty() ? "-" : out;
}

int sessions(const CtlArgs &a, bool summary) {
  return with_client(a, [&](Client &c) {
    auto r = c.get("/v1/sessions");
    if (!r) return report(r.error());
    if (r->status != 200) return http_error("GET /v1/sessions", *r);
    json j = json::parse(r->body, nullptr, false);
    if (!j.is_array()) return report(Error{0, "GET /v1/sessions: not a JSON array"});
    if (a.json_output) {
      std::printf("%s\n", j.dump(2).c_str());
      return kExitOk;
    }
    size_t running = 0;
    for (const auto &s : j) running += s.value("state", "") == "running";
    if (summary) std::printf("agent: running, %zu sessions (%zu waiting)\n", j.size(), j.size() - running);
    std::printf("%-20s %-8s %-8s %s\n", "SESSION", "KIND", "STATE", "INTERFACES");
    for (const auto &s : j)
      std::printf("%-20s %-8s %-8s %s\n", s.value("name", "?").c_str(), s.contains("mirror") ? "mirror" : "capture",
                  s.value("state", "?").c_str(), join_interfaces(s.value("counters", json::array())).c_str());
    return kExitOk;
  });
}

int counters(const CtlArgs &a) {
  return with_client(a, [&](Client &c) {
    auto r = c.get("/metrics");
    if (!r) return report(r.error());
    if (r->status != 200) return http_error("GET /metrics", *r);
    std::string filter = a.session.empty() ? "" : fmt::format("session=\"{}\"", a.session);
    size_t start = 0;
    while (start < r->body.size()) {
      size_t end = r->body.find('\n', start);
      if (end == std::string::npos) end = r->body.size();
      std::string line = r->body.substr(start, end - start);
      start = end + 1;
      if (line.empty() || line[0] == '#') continue;
      if (!filter.empty() && line.find(filter) == std::string::npos) continue;
      std::printf("%s\n", line.c_str());
    }
    return kExitOk;
  });
}

int reload(const CtlArgs &a) {
  return with_client(a, [&](Client &c) {
    auto r = c.post("/v1/reload", "{}");
    if (!r) return report(r.error());
    if (r->status != 200) return http_error("POST /v1/reload", *r);
    json j = json::parse(r->body, nullptr, false);
    std::printf("%s\n", j.is_object() && j.contains("result") ? j["result"].dump().c_str() : r->body.c_str());
    return kExitOk;
  });
}

int bypass_add(const CtlArgs &a) {
  if (a.src.empty() || a.dst.empty() || (a.proto != "icmp" && (a.sport < 0 || a.dport < 0)))
    return report(Error{0, "bypass add needs the whole flow: --src, --dst and (for tcp/udp) --sport, --dport", true});
  json body{{"proto", a.proto}, {"src", a.src}, {"dst", a.dst}, {"seconds", a.seconds}};
  if (a.sport >= 0) body["sport"] = a.sport;
  if (a.dport >= 0) body["dport"] = a.dport;
  return with_client(a, [&](Client &c) {
    auto r = c.post("/v1/bypass", body.dump());
    if (!r) return report(r.error());
    if (r->status != 200 && r->status != 201) return http_error("POST /v1/bypass", *r);
    std::printf("%s\n", r->body.c_str());
    return kExitOk;
  });
}

std::string field(const json &b, const char *key) {
  if (!b.contains(key) || b[key].is_null()) return "*";
  return b[key].is_string() ? b[key].get<std::string>() : b[key].dump();
}

int bypass_list(const CtlArgs &a) {
  return with_client(a, [&](Client &c) {
    auto r = c.get("/v1/bypass");
    if (!r) return report(r.error());
    if (r->status != 200) return http_error("GET /v1/bypass", *r);
    json j = json::parse(r->body, nullptr, false);
    if (!j.is_array()) return report(Error{0, "GET /v1/bypass: not a JSON array"});
    if (a.json_output) {
      std::printf("%s\n", j.dump(2).c_str());
      return kExitOk;
    }
    std::printf("%-10s %-5s %-22s %-22s %s\n", "ID", "PROTO", "SOURCE", "DESTINATION", "EXPIRES");
    for (const auto &b : j)
      std::printf("%-10s %-5s %-22s %-22s %s\n", field(b, "id").c_str(), field(b, "proto").c_str(),
                  (field(b, "src") + ":" + field(b, "sport")).c_str(), (field(b, "dst") + ":" + field(b, "dport")).c_str(),
                  field(b, "expires").c_str());
    return kExitOk;
  });
}

int bypass_delete(const CtlArgs &a) {
  return with_client(a, [&](Client &c) {
    auto r = c.del("/v1/bypass/" + a.id);
    if (!r) return report(r.error());
    if (r->status != 200 && r->status != 204) return http_error("DELETE /v1/bypass/" + a.id, *r);
    std::printf("bypass %s removed\n", a.id.c_str());
    return kExitOk;
  });
}

} // namespace

void add_ctl_command(CLI::App &app, Context &ctx) {
  auto a = std::make_shared<CtlArgs>();
  auto *cmd = app.add_subcommand("ctl", "talk to a running agent through its REST API (its config gives the "
                                        "address and the token)");
  cmd->require_subcommand(1);
  cmd->add_option("--config", a->config, "the agent's configuration (for api.listen and api.token_file)");
  cmd->add_option("--api", a->listen, "the agent's API instead: HOST:PORT or unix:PATH");
  cmd->add_option("--token-file", a->token_file, "the bearer token for writes instead");
  auto on = [&ctx, a](CLI::App *sub, auto run) { sub->callback([&ctx, a, run] { ctx.exit_code = run(*a); }); };
  auto *status = cmd->add_subcommand("status", "is the agent up; its sessions in one table");
  on(status, [](const CtlArgs &x) { return sessions(x, true); });
  auto *list = cmd->add_subcommand("sessions", "the sessions, running and waiting");
  list->add_flag("--json", a->json_output, "the API's JSON as it is");
  on(list, [](const CtlArgs &x) { return sessions(x, false); });
  auto *cnt = cmd->add_subcommand("counters", "the agent's counters (its /metrics, without the comments)");
  cnt->add_option("--session", a->session, "only this session's");
  on(cnt, counters);
  auto *rl = cmd->add_subcommand("reload", "re-read the config file (as SIGHUP)");
  on(rl, reload);
  auto *bp = cmd->add_subcommand("bypass", "flows the mirror sessions skip for a while");
  bp->require_subcommand(1);
  auto *add = bp->add_subcommand("add", "skip one flow (its full 5-tuple) in every mirror session");
  add->add_option("--proto", a->proto, "tcp, udp or icmp")->check(CLI::IsMember({"tcp", "udp", "icmp"}));
  add->add_option("--src", a->src, "source address")->required();
  add->add_option("--sport", a->sport, "source port")->check(CLI::Range(0, 65535));
  add->add_option("--dst", a->dst, "destination address")->required();
  add->add_option("--dport", a->dport, "destination port")->check(CLI::Range(0, 65535));
  add->add_option("--seconds", a->seconds, "for how long (default 60)");
  on(add, bypass_add);
  auto *bl = bp->add_subcommand("list", "the bypasses in force");
  bl->add_flag("--json", a->json_output, "the API's JSON as it is");
  on(bl, bypass_list);
  auto *bd = bp->add_subcommand("delete", "remove a bypass before it expires");
  bd->add_option("id", a->id, "its id (bypass list)")->required();
  on(bd, bypass_delete);
}

} // namespace bpftap::cli
