// The network namespaces sessions select interfaces in: a link watcher in each, the links
// present there, and interfaces attached and detached as they come and go (all under mu).
// Sessions whose namespace is deleted stop and wait; those whose namespace appears start.
#include "agent/agent_impl.h"

#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "util/text.h"

namespace bpftap::agent {

bool namespace_missing(const std::string &netns) {
  if (netns.empty()) return false;
  auto ns = Netns::open(netns);
  return !ns && ns.error().code == ENOENT;
}

// Starts watching a namespace's links (once): the watcher first, then the dump, so no link
// that appears in between is missed. Under mu.
Result<> Agent::Impl::watch(const std::string &netns) {
  if (spaces.count(netns)) return {};
  auto ns = Netns::open(netns);
  if (!ns) return tl::unexpected(ns.error());
  auto scope = NetnsScope::enter(*ns);
  if (!scope) return tl::unexpected(scope.error());
  auto w = LinkWatcher::open();
  if (!w) return tl::unexpected(w.error());
  auto now = current_links();
  if (!now) return tl::unexpected(now.error());
  Space sp{std::move(*ns), std::make_unique<LinkWatcher>(std::move(*w)), {}};
  for (const auto &l : *now) sp.links[l.ifindex] = l;
  spaces.emplace(netns, std::move(sp));
  if (!netns.empty()) spdlog::info("watching the interfaces of network namespace {}", netns);
  return {};
}  // NOLINT(clang-analyzer-cplusplus.NewDeleteLeaks): a false positive, `spaces` owns the watcher

// The watcher lost events (its socket buffer overflowed): compare with a fresh dump.
void Agent::Impl::resync(const std::string &netns) {
  auto sp = spaces.find(netns);
  if (sp == spaces.end()) return;
  Result<std::vector<LinkEvent>> now = tl::unexpected(Error{});
  {
    auto scope = NetnsScope::enter(sp->second.ns);
    if (!scope) return spdlog::error("resync the links of {}: {}", netns_label(netns), scope.error().message());
    now = current_links();
  }
  if (!now) return spdlog::error("resync the links of {}: {}", netns_label(netns), now.error().message());
  spdlog::warn("link events of {} were lost: compared with a fresh list", netns_label(netns));
  std::set<uint32_t> present;
  for (const auto &l : *now) present.insert(l.ifindex);
  std::vector<LinkEvent> gone;
  for (const auto &[ifindex, l] : sp->second.links)
    if (!present.count(ifindex)) gone.push_back({false, ifindex, l.name, l.ethernet, l.flags});
  for (const auto &e : gone) on_link(netns, e);
  for (const auto &l : *now) on_link(netns, l);
}

// Stops watching namespaces no running session selects (the agent's own stays). Under mu.
void Agent::Impl::unwatch_unused() {
  for (auto it = spaces.begin(); it != spaces.end();) {
    bool used = it->first.empty() || std::any_of(sessions.begin(), sessions.end(), [&](const auto &kv) {
                  return kv.second->config().netns == it->first;
                });
    it = used ? std::next(it) : spaces.erase(it);
  }
}

// Every few hundred ms, under mu: sessions whose namespace was deleted (or replaced by a new
// one of the same name) stop and wait; waiting sessions whose namespace appeared are started
// in the background.
void Agent::Impl::check_namespaces() {
  for (auto it = spaces.begin(); it != spaces.end();) {
    if (it->second.ns.still_named()) {
      ++it;
      continue;
    }
    const std::string netns = it->first;
    spdlog::warn("network namespace {} was deleted or replaced", netns);
    for (auto s = sessions.begin(); s != sessions.end();) {
      if (s->second->config().netns != netns) {
        ++s;
        continue;
      }
      auto counters = s->second->counters();
      SessionConfig c = s->second->config();
      s = sessions.erase(s);  // detaches (in the old namespace) and lets it go
      wait_for_namespace(c, std::move(counters));
    }
    it = spaces.erase(it);
  }
  const auto now = Clock::now();
  for (auto &[name, w] : waiting) {
    if (w.starting || now < w.retry_at || namespace_missing(w.cfg.netns)) continue;
    w.starting = true;
    post([this, name = name] { start_waiting(name); });
  }
  unwatch_unused();
}

void Agent::Impl::attach_link(Session &s, const LinkEvent &l) {
  if (!l.ethernet || !s.wants(l.name) || s.attached(l.ifindex)) return;
  Result<> r = fd_budget(kInterfaceFds, "attach " + escape_bytes(l.name));
  if (r) r = s.attach(InterfaceInfo{l.name, l.ifindex, 1, 262144});
  if (!r) {
    s.count_attach_error();
    spdlog::warn("session {}: attach {}: {}", s.config().name, escape_bytes(l.name), r.error().message());
  } else {
    spdlog::info("session {}: attached {}{}", s.config().name, escape_bytes(l.name),
                 s.config().netns.empty() ? "" : " in network namespace " + s.config().netns);
  }
}

void Agent::Impl::attach_matching(Session &s) {
  auto sp = spaces.find(s.config().netns);
  if (sp == spaces.end()) return;
  for (const auto &[ifindex, l] : sp->second.links) attach_link(s, l);
}

void Agent::Impl::on_link(const std::string &netns, const LinkEvent &e) {
  auto sp = spaces.find(netns);
  if (sp == spaces.end()) return;
  auto &links = sp->second.links;
  auto ours = [&](const Session &s) { return s.config().netns == netns; };
  if (e.added) {
    auto it = links.find(e.ifindex);
    if (it != links.end() && it->second.name == e.name && it->second.flags == e.flags) return;  // nothing new
    if (it != links.end() && it->second.name != e.name)
      on_link(netns, {false, e.ifindex, it->second.name, it->second.ethernet, it->second.flags});  // renamed
    links[e.ifindex] = e;
    // New, or its state changed (it came up): sessions that could not attach to it try again.
    for (auto &[name, s] : sessions) {
      if (!ours(*s)) continue;
      attach_link(*s, e);
      if (s->target_missing() && !s->target_name().empty() && s->target_name() == e.name)
        post([this, name = name] { restart(name); });
    }
  } else {
    links.erase(e.ifindex);
    for (auto &[name, s] : sessions) {
      if (!ours(*s)) continue;
      if (s->attached(e.ifindex)) {
        s->detach(e.ifindex, true);
        spdlog::info("session {}: {} went away, detached (its counters are kept)", name, escape_bytes(e.name));
      }
      if (s->is_mirror() && s->target_ifindex() == e.ifindex && !s->target_missing()) {
        s->target_gone();
        std::string target = s->target_name().empty() ? escape_bytes(e.name) : s->target_name();
        spdlog::warn("session {}: its target {} went away: copies fail until it is back", name, target);
        if (s->target_name().empty()) post([this, name = name] { restart(name); });  // bpftap's VXLAN device: made again
      }
    }
  }
}

} // namespace bpftap::agent
