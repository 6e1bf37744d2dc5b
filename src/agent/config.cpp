#include "agent/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <type_traits>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "kernel/hook_words.h"
#include "mirror/rules.h"
#include "mirror/spec.h"
#include "util/text.h"
#include "util/yaml_file.h"

namespace bpftap::agent {
namespace {

struct Ctx {
  std::string where;  // file name
  tl::unexpected<Error> bad(const YAML::Node &n, const std::string &what) const {
    if (n.Mark().line < 0) return bad_input(fmt::format("{}: {}", where, what));  // built from JSON: no line
    return bad_input(fmt::format("{}:{}: {}", where, n.Mark().line + 1, what));
  }
};

// Rejects keys not in `known`.
Result<> only(const Ctx &c, const YAML::Node &map, const std::string &what, std::initializer_list<const char *> known) {
  if (!map.IsMap()) return c.bad(map, fmt::format("{} must be a mapping", what));
  for (const auto &kv : map) {
    std::string k = kv.first.as<std::string>("");
    if (std::none_of(known.begin(), known.end(), [&](const char *x) { return k == x; })) {
      std::string list;
      for (const char *x : known) list += (list.empty() ? "" : ", ") + std::string(x);
      return c.bad(kv.first, fmt::format("unknown key '{}' in {} (known: {})", k, what, list));
    }
  }
  return {};
}

template <typename T>
Result<T> scalar(const Ctx &c, const YAML::Node &n, const std::string &key, const char *type) {
  // `name: null` (or `~`, or nothing) is no value, not the text "null": yaml-cpp makes it a
  // Null node, not a scalar.
  if (!n.IsScalar()) return c.bad(n, fmt::format("{} must be {}", key, type));
  try {
    T v = n.as<T>();
    if constexpr (std::is_same_v<T, std::string>)
      if (!printable_utf8(v)) return c.bad(n, fmt::format("{} must be printable UTF-8 text (no control characters)", key));
    return v;
  } catch (const YAML::Exception &) {
    return c.bad(n, fmt::format("{} must be {}", key, type));
  }
}

Result<uint64_t> number(const Ctx &c, const YAML::Node &n, const std::string &key, uint64_t max) {
  if (!n.IsScalar()) return c.bad(n, fmt::format("{} must be a whole number", key));
  std::string s = n.Scalar();
  if (s.empty() || !std::all_of(s.begin(), s.end(), ::isdigit)) return c.bad(n, fmt::format("{} must be a whole number", key));
  uint64_t v = 0;
  try {
    v = std::stoull(s);
  } catch (...) {
    return c.bad(n, fmt::format("{} is too large", key));
  }
  if (v > max) return c.bad(n, fmt::format("{} must be at most {}", key, max));
  return v;
}

bool valid_name(const std::string &s) {
  return !s.empty() && s.size() <= 64 &&
         std::all_of(s.begin(), s.end(), [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_'; });
}

Result<SessionConfig> parse_session(const Ctx &c, const YAML::Node &n) {
  if (auto r = only(c, n, "a session", {"name", "interfaces", "netns", "direction", "filter", "rules", "snaplen", "sample",
                                        "flow_cutoff", "attach", "capture", "mirror", "inspect"});
      !r)
    return tl::unexpected(r.error());
  SessionConfig s;
  s.line = n.Mark().line + 1;
  if (!n["name"]) return c.bad(n, "a session needs a name");
  auto name = scalar<std::string>(c, n["name"], "name", "a string");
  if (!name) return tl::unexpected(name.error());
  if (!valid_name(*name)) return c.bad(n["name"], fmt::format("session name '{}': use letters, digits, '-' and '_'", *name));
  s.name = *name;
  const YAML::Node ifs = n["interfaces"];
  if (!ifs || !ifs.IsSequence() || ifs.size() == 0)
    return c.bad(ifs ? ifs : n, fmt::format("session {}: interfaces must be a list of names or globs", s.name));
  for (const auto &i : ifs) {
    auto v = scalar<std::string>(c, i, "an interface", "a string");
    if (!v) return tl::unexpected(v.error());
    if (v->empty() || v->size() > 64) return c.bad(i, "an interface pattern must be 1-64 characters");
    s.interfaces.push_back(*v);
  }
  if (n["netns"]) {
    auto v = scalar<std::string>(c, n["netns"], "netns", "a string");
    if (!v) return tl::unexpected(v.error());
    if (v->empty() || v->size() > 255 || *v == "." || *v == ".." || v->find('/') != std::string::npos)
      return c.bad(n["netns"], fmt::format("session {}: netns '{}' is not a namespace name (as ip netns list shows)", s.name, *v));
    s.netns = *v;
  }
  if (n["direction"]) {
    auto d = scalar<std::string>(c, n["direction"], "direction", "a string");
    if (!d) return tl::unexpected(d.error());
    // One vocabulary with capture's and mirror's -Q (kernel/hook_words.h): both is inout.
    auto dirs = parse_direction(*d);
    if (!dirs) return c.bad(n["direction"], fmt::format("direction must be {}", kDirectionWords));
    s.ingress = dirs->ingress;
    s.egress = dirs->egress;
  }
  if (n["filter"]) {
    auto f = scalar<std::string>(c, n["filter"], "filter", "a string");
    if (!f) return tl::unexpected(f.error());
    s.filter = *f;
  }
  if (n["rules"]) {
    if (!n["rules"].IsSequence()) return c.bad(n["rules"], "rules must be a list of strings");
    for (const auto &r : n["rules"]) {
      auto v = scalar<std::string>(c, r, "a rule", "a string");
      if (!v) return tl::unexpected(v.error());
      if (auto p = parse_rule(*v); !p) return c.bad(r, p.error().message());
      s.rules.push_back(*v);
    }
    if (auto all = parse_rules(s.rules); !all) return c.bad(n["rules"], all.error().message());
  }
  if (n["snaplen"]) {
    auto v = number(c, n["snaplen"], "snaplen", BPFTAP_MAX_SNAPLEN);
    if (!v) return tl::unexpected(v.error());
    s.snaplen = static_cast<uint32_t>(*v);
  }
  if (n["sample"]) {
    auto v = number(c, n["sample"], "sample", 1u << 24);
    if (!v) return tl::unexpected(v.error());
    s.sample = static_cast<uint32_t>(*v);
  }
  if (n["attach"]) {
    auto a = scalar<std::string>(c, n["attach"], "attach", "a string");
    if (!a) return tl::unexpected(a.error());
    auto mode = parse_attach_mode(*a);
    if (!mode) return c.bad(n["attach"], fmt::format("attach must be {}", kAttachModeWords));
    s.attach = *mode;
  }
  if (n["flow_cutoff"]) {
    auto v = number(c, n["flow_cutoff"], "flow_cutoff", UINT64_MAX);
    if (!v) return tl::unexpected(v.error());
    s.flow_cutoff = *v;
  }
  if (const YAML::Node m = n["capture"]) {
    if (auto r = only(c, m, "capture", {"dir", "rotate_mb", "keep_files", "files"}); !r) return tl::unexpected(r.error());
    CaptureTarget t;
    if (!m["dir"]) return c.bad(m, "capture needs dir");
    auto dir = scalar<std::string>(c, m["dir"], "dir", "a path");
    if (!dir) return tl::unexpected(dir.error());
    t.dir = *dir;
    if (m["rotate_mb"]) {
      auto v = number(c, m["rotate_mb"], "rotate_mb", 1000000);
      if (!v) return tl::unexpected(v.error());
      t.rotate_mb = *v;
    }
    if (m["keep_files"]) {
      auto v = number(c, m["keep_files"], "keep_files", 100000);
      if (!v) return tl::unexpected(v.error());
      t.keep_files = static_cast<uint32_t>(*v);
    }
    if (m["files"]) {
      auto f = scalar<std::string>(c, m["files"], "files", "per-interface or per-session");
      if (!f) return tl::unexpected(f.error());
      if (*f != "per-interface" && *f != "per-session") return c.bad(m["files"], "files must be per-interface or per-session");
      t.files = *f;
    }
    s.capture = t;
  }
  if (const YAML::Node m = n["mirror"]) {
    if (auto r = only(c, m, "mirror", {"to", "vxlan", "vni", "vxlan_port", "local"}); !r) return tl::unexpected(r.error());
    MirrorTarget t;
    for (auto [key, field] : {std::pair{"to", &t.to}, {"vxlan", &t.vxlan}, {"local", &t.local}})
      if (m[key]) {
        auto v = scalar<std::string>(c, m[key], key, "a string");
        if (!v) return tl::unexpected(v.error());
        *field = *v;
      }
    if (m["vni"]) {
      auto v = number(c, m["vni"], "vni", INT64_MAX);
      if (!v) return tl::unexpected(v.error());
      t.vni = static_cast<int64_t>(*v);
    }
    if (m["vxlan_port"]) {
      auto p = number(c, m["vxlan_port"], "vxlan_port", INT64_MAX);
      if (!p) return tl::unexpected(p.error());
      t.vxlan_port = static_cast<int64_t>(*p);
    }
    // The limits are mirror/spec.h's, as for bpftap mirror; said at the line of `mirror:`.
    if (auto ok = check_mirror_target(t); !ok) return c.bad(m, ok.error().message());
    s.mirror = t;
  }
  if (const YAML::Node m = n["inspect"]) {
    if (auto r = only(c, m, "inspect", {"alerts", "flows", "flows_format", "ipfix"}); !r) return tl::unexpected(r.error());
    InspectTarget t;
    if (!m["alerts"]) return c.bad(m, "inspect needs alerts: FILE");
    auto a = scalar<std::string>(c, m["alerts"], "alerts", "a path");
    if (!a) return tl::unexpected(a.error());
    t.alerts = *a;
    if (m["flows"]) {
      auto f = scalar<std::string>(c, m["flows"], "flows", "a path");
      if (!f) return tl::unexpected(f.error());
      t.flows = *f;
    }
    if (m["flows_format"]) {
      auto f = scalar<std::string>(c, m["flows_format"], "flows_format", "json or tsv");
      if (!f) return tl::unexpected(f.error());
      if (*f != "json" && *f != "tsv") return c.bad(m["flows_format"], "flows_format must be json or tsv");
      t.flows_format = *f;
    }
    if (m["ipfix"]) {
      auto x = scalar<std::string>(c, m["ipfix"], "ipfix", "HOST:PORT");
      if (!x) return tl::unexpected(x.error());
      t.ipfix = *x;
    }
    s.inspect = t;
  }
  // Conflicts.
  if (!s.capture && !s.mirror && !s.inspect)
    return c.bad(n, fmt::format("session {}: give a target: capture, mirror or inspect", s.name));
  if (s.mirror && (s.capture || s.inspect))
    return c.bad(n, fmt::format("session {}: mirror cannot be combined with capture or inspect (make two sessions)", s.name));
  if (!s.mirror && (!s.rules.empty() || s.sample || s.flow_cutoff))
    return c.bad(n, fmt::format("session {}: rules, sample and flow_cutoff apply to mirror sessions", s.name));
  if (s.mirror)
    if (auto o = to_mirror_options(mirror_spec(s)); !o) return c.bad(n["snaplen"] ? n["snaplen"] : n, o.error().message());
  return s;
}

} // namespace

MirrorSpec mirror_spec(const SessionConfig &s) {
  MirrorSpec m;
  m.interfaces = s.interfaces;
  m.ingress = s.ingress;
  m.egress = s.egress;
  m.filter = s.filter;
  m.rules = s.rules;
  m.snaplen = s.snaplen;
  m.sample = s.sample;
  m.flow_cutoff = s.flow_cutoff;
  m.attach = s.attach;
  if (s.mirror) m.target = *s.mirror;
  return m;
}

CaptureSpec capture_spec(const SessionConfig &s) {
  return CaptureSpec{.interfaces = s.interfaces, .ingress = s.ingress, .egress = s.egress, .filter = s.filter, .snaplen = s.snaplen, .attach = s.attach};
}

bool SessionConfig::operator==(const SessionConfig &o) const {
  return name == o.name && interfaces == o.interfaces && netns == o.netns && ingress == o.ingress && egress == o.egress &&
         filter == o.filter && rules == o.rules && snaplen == o.snaplen && sample == o.sample &&
         flow_cutoff == o.flow_cutoff && attach == o.attach && capture == o.capture && mirror == o.mirror && inspect == o.inspect;
}

bool vxlan_clash(const SessionConfig &a, const SessionConfig &b) {
  if (!a.mirror || !b.mirror || a.mirror->vxlan.empty() || b.mirror->vxlan.empty()) return false;
  auto target = [](const MirrorTarget &m) {
    return VxlanTarget{m.vxlan, m.local, static_cast<uint32_t>(m.vni.value_or(0)), static_cast<uint16_t>(m.vxlan_port)};
  };
  const MirrorTarget &x = *a.mirror, &y = *b.mirror;
  return a.netns == b.netns && x.vni == y.vni && x.vxlan_port == y.vxlan_port &&
         vxlan_device_name(target(x)) != vxlan_device_name(target(y));
}

Result<AgentConfig> load_agent_config(const std::string &path) {
  auto loaded = load_yaml_file(path);
  if (!loaded) return tl::unexpected(loaded.error());
  const YAML::Node root = *loaded;
  Ctx c{path};
  if (!root.IsMap()) return bad_input(fmt::format("{}: expected a mapping with api and sessions", path));
  if (auto r = only(c, root, "the config", {"api", "sessions"}); !r) return tl::unexpected(r.error());
  AgentConfig cfg;
  if (const YAML::Node a = root["api"]) {
    if (auto r = only(c, a, "api", {"listen", "token_file", "allow_remote", "max_connections", "max_client_connections",
                                    "requests_per_second", "request_timeout_s", "max_body_kb"});
        !r)
      return tl::unexpected(r.error());
    if (a["listen"]) {
      auto v = scalar<std::string>(c, a["listen"], "listen", "HOST:PORT");
      if (!v) return tl::unexpected(v.error());
      if (v->starts_with("unix:")) {
        std::string sock = v->substr(5);
        if (!sock.starts_with("/") || sock.size() > 107)
          return c.bad(a["listen"], "listen unix:PATH needs an absolute path of at most 107 characters");
      } else {
        auto colon = v->rfind(':');
        bool digits = colon != std::string::npos && colon > 0 && v->size() - colon - 1 <= 5 &&
                      v->find_first_not_of("0123456789", colon + 1) == std::string::npos;
        int port = digits ? std::atoi(v->c_str() + colon + 1) : 0;
        if (port < 1 || port > 65535)
          return c.bad(a["listen"], "listen must be HOST:PORT (port 1-65535) or unix:/PATH");
      }
      cfg.api.listen = *v;
    }
    if (a["token_file"]) {
      auto v = scalar<std::string>(c, a["token_file"], "token_file", "a path");
      if (!v) return tl::unexpected(v.error());
      cfg.api.token_file = *v;
    }
    if (a["allow_remote"]) {
      auto v = scalar<bool>(c, a["allow_remote"], "allow_remote", "true or false");
      if (!v) return tl::unexpected(v.error());
      cfg.api.allow_remote = *v;
    }
    struct Limit {
      const char *key;
      uint32_t *field;
      uint32_t min, max;
    } limits[] = {{"max_connections", &cfg.api.max_connections, 1, 100000},
                  {"max_client_connections", &cfg.api.max_client_connections, 1, 100000},
                  {"requests_per_second", &cfg.api.requests_per_second, 1, 1000000},
                  {"request_timeout_s", &cfg.api.request_timeout_s, 1, 3600},
                  {"max_body_kb", &cfg.api.max_body_kb, 1, 1u << 20}};
    for (const auto &l : limits) {
      if (!a[l.key]) continue;
      auto v = number(c, a[l.key], l.key, l.max);
      if (!v) return tl::unexpected(v.error());
      if (*v < l.min) return c.bad(a[l.key], fmt::format("{} must be {}-{}", l.key, l.min, l.max));
      *l.field = static_cast<uint32_t>(*v);
    }
    if (!cfg.api.listen.starts_with("unix:") && !loopback_listen(cfg.api.listen) && !cfg.api.allow_remote)
      return c.bad(a["listen"], fmt::format("listen {}: other hosts can reach this address, and the API has no TLS (the "
                                            "token would travel in clear): listen on 127.0.0.1 or a unix socket, or "
                                            "set allow_remote: true to mean it",
                                            cfg.api.listen));
  }
  const YAML::Node ss = root["sessions"];
  if (ss && !ss.IsSequence()) return c.bad(ss, "sessions must be a list");
  std::set<std::string> names;
  if (ss)
    for (const auto &n : ss) {
      auto s = parse_session(c, n);
      if (!s) return tl::unexpected(s.error());
      if (!names.insert(s->name).second) return c.bad(n, fmt::format("session name '{}' is used twice", s->name));
      for (const auto &earlier : cfg.sessions)
        if (vxlan_clash(earlier, *s))
          return c.bad(n, fmt::format("session {}: VNI {} on port {} already goes to {} (session {}, line {}), and a "
                                      "namespace has one VXLAN device per VNI and port: give this sensor another VNI",
                                      s->name, *s->mirror->vni, s->mirror->vxlan_port, earlier.mirror->vxlan,
                                      earlier.name, earlier.line));
      cfg.sessions.push_back(*s);
    }
  return cfg;
}

bool loopback_listen(const std::string &listen) {
  auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon == std::string::npos ? listen.size() : colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") return true;
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

namespace {

// The API's session shape: each key and its JSON type.
enum class JType { String, Number, Strings, Object };
struct JKey {
  const char *key;
  JType type;
  std::initializer_list<JKey> fields;  // for objects
};

Result<YAML::Node> to_yaml(const nlohmann::json &j, std::initializer_list<JKey> keys, const std::string &where,
                           const std::string &in) {
  auto bad = [&](const std::string &what) { return bad_input(fmt::format("{}: {}", where, what)); };
  if (!j.is_object()) return bad((in.empty() ? std::string("the body") : in) + " must be a JSON object");
  YAML::Node out(YAML::NodeType::Map);
  for (const auto &[k, v] : j.items()) {
    const JKey *spec = nullptr;
    for (const auto &x : keys)
      if (k == x.key) spec = &x;
    std::string name = in;
    if (!name.empty()) name += ".";
    name += k;
    if (!spec) {
      std::string list;
      for (const auto &x : keys) list += (list.empty() ? "" : ", ") + std::string(x.key);
      return bad(fmt::format("unknown key '{}' (known: {})", escape_bytes(name), list));
    }
    switch (spec->type) {
    case JType::String:
      if (!v.is_string()) return bad(name + " must be a string");
      out[k] = v.get<std::string>();
      break;
    case JType::Number:
      if (!v.is_number_unsigned()) return bad(name + " must be a whole number (not negative, no fraction, no quotes)");
      out[k] = std::to_string(v.get<uint64_t>());
      break;
    case JType::Strings: {
      if (!v.is_array()) return bad(name + " must be a list of strings");
      YAML::Node seq(YAML::NodeType::Sequence);
      for (const auto &e : v) {
        if (!e.is_string()) return bad(name + " must be a list of strings");
        seq.push_back(e.get<std::string>());
      }
      out[k] = seq;
      break;
    }
    case JType::Object: {
      auto sub = to_yaml(v, spec->fields, where, name);
      if (!sub) return sub;
      out[k] = *sub;
      break;
    }
    }
  }
  return out;
}

} // namespace

Result<SessionConfig> parse_session_json(const std::string &text, const std::string &where) {
  // nlohmann refuses invalid UTF-8 in strings: such a body is not JSON.
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return bad_input(where + ": the body is not JSON (UTF-8)");
  auto n = to_yaml(j,
                   {{"name", JType::String, {}},
                    {"interfaces", JType::Strings, {}},
                    {"netns", JType::String, {}},
                    {"direction", JType::String, {}},
                    {"filter", JType::String, {}},
                    {"rules", JType::Strings, {}},
                    {"snaplen", JType::Number, {}},
                    {"sample", JType::Number, {}},
                    {"flow_cutoff", JType::Number, {}},
                    {"attach", JType::String, {}},
                    {"capture", JType::Object, {{"dir", JType::String, {}}, {"rotate_mb", JType::Number, {}}, {"keep_files", JType::Number, {}},
                                                {"files", JType::String, {}}}},
                    {"mirror", JType::Object, {{"to", JType::String, {}}, {"vxlan", JType::String, {}}, {"vni", JType::Number, {}},
                                               {"vxlan_port", JType::Number, {}}, {"local", JType::String, {}}}},
                    {"inspect", JType::Object, {{"alerts", JType::String, {}}, {"flows", JType::String, {}},
                                                {"flows_format", JType::String, {}}, {"ipfix", JType::String, {}}}}},
                   where, "");
  if (!n) return tl::unexpected(n.error());
  return parse_session(Ctx{where}, *n);
}

Result<SessionConfig> parse_session_text(const std::string &text, const std::string &where) {
  YAML::Node n;
  try {
    n = YAML::Load(text);
  } catch (const YAML::Exception &e) {
    return bad_input(fmt::format("{}:{}: {}", where, e.mark.line + 1, e.msg));
  }
  return parse_session(Ctx{where}, n);
}

std::string session_to_json(const SessionConfig &s) {
  nlohmann::ordered_json j;
  j["name"] = s.name;
  j["interfaces"] = s.interfaces;
  if (!s.netns.empty()) j["netns"] = s.netns;
  j["direction"] = s.ingress && s.egress ? "both" : s.ingress ? "in" : "out";
  if (!s.filter.empty()) j["filter"] = s.filter;
  if (!s.rules.empty()) j["rules"] = s.rules;
  if (s.snaplen) j["snaplen"] = s.snaplen;
  if (s.sample) j["sample"] = s.sample;
  if (s.flow_cutoff) j["flow_cutoff"] = s.flow_cutoff;
  if (s.attach != AttachMode::Auto) j["attach"] = attach_mode_word(s.attach);
  if (s.capture)
    j["capture"] = {{"dir", s.capture->dir}, {"rotate_mb", s.capture->rotate_mb}, {"keep_files", s.capture->keep_files},
                    {"files", s.capture->files}};
  if (s.mirror) {
    if (!s.mirror->to.empty()) j["mirror"] = {{"to", s.mirror->to}};
    else j["mirror"] = {{"vxlan", s.mirror->vxlan}, {"vni", s.mirror->vni.value_or(0)}, {"vxlan_port", s.mirror->vxlan_port}, {"local", s.mirror->local}};
  }
  if (s.inspect)
    j["inspect"] = {{"alerts", s.inspect->alerts}, {"flows", s.inspect->flows}, {"flows_format", s.inspect->flows_format},
                       {"ipfix", s.inspect->ipfix}};
  return j.dump();
}

} // namespace bpftap::agent
