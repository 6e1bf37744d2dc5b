#include "kernel/attach.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/gen_stats.h>
#include <linux/if_ether.h>
#include <linux/magic.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "bpf/bpftap.h"
#include "util/fd.h"

namespace bpftap {
namespace {

// Not in bookworm's UAPI headers (linux-libc-dev 6.1); stable kernel ABI since 6.6.
constexpr int kBpfTcxIngress = 46;
constexpr int kBpfTcxEgress = 47;

// Our cls_bpf filters have a fixed handle and priority, so cleanup can find them.
constexpr uint32_t kTcHandle = 0xb7a9;
constexpr uint32_t kTcPriority = 0xb7a9;
const char *kStateDir = "/run/bpftap/qdiscs";  // clsact qdiscs we created (for cleanup)
const char *kBpffs = "/sys/fs/bpf";
const char *kPinRoot = "/sys/fs/bpf/bpftap";  // the agents' pin directories, agent-<pid>-<starttime>

std::string ifname(uint32_t ifindex) {
  char buf[IF_NAMESIZE] = {};
  return if_indextoname(ifindex, buf) ? buf : std::to_string(ifindex);
}

std::string state_file(uint32_t ifindex) { return fmt::format("{}/{}-{}", kStateDir, netns_id(), ifindex); }

// Does the clsact qdisc of `ifindex` hold any filter but bpftap's (in the current network
// namespace)? An RTM_GETTFILTER dump of its ingress and egress. When it cannot tell, the answer
// is yes: an empty qdisc left behind does no harm, another tool's filters deleted would.
bool foreign_filters(uint32_t ifindex) {
  FD fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return true;
  timeval tv{2, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  for (uint32_t minor : {TC_H_MIN_INGRESS, TC_H_MIN_EGRESS}) {
    struct {
      nlmsghdr h;
      tcmsg t;
    } req{};
    req.h.nlmsg_len = sizeof(req);
    req.h.nlmsg_type = RTM_GETTFILTER;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.h.nlmsg_seq = minor;
    req.t.tcm_family = AF_UNSPEC;
    req.t.tcm_ifindex = static_cast<int>(ifindex);
    req.t.tcm_parent = TC_H_MAKE(TC_H_CLSACT, minor);
    if (send(fd.get(), &req, sizeof(req), 0) < 0) return true;
    alignas(nlmsghdr) char buf[32768];
    for (bool done = false; !done;) {
      ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
      if (n <= 0) return true;
      for (auto *h = reinterpret_cast<const nlmsghdr *>(buf); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_DONE) {
          done = true;
          break;
        }
        if (h->nlmsg_type == NLMSG_ERROR) return true;
        if (h->nlmsg_type != RTM_NEWTFILTER) continue;
        auto *t = static_cast<const tcmsg *>(NLMSG_DATA(h));
        // A dump lists each priority's classifier (handle 0), then its filters.
        bool ours = TC_H_MAJ(t->tcm_info) >> 16 == kTcPriority && (t->tcm_handle == 0 || t->tcm_handle == kTcHandle);
        if (!ours) return true;
      }
    }
  }
  return false;
}

// Removes the clsact qdisc bpftap created on `ifindex`, unless another tool's filters are on it
// now: then it stays, theirs. Returns whether it was removed.
bool remove_our_qdisc(uint32_t ifindex) {
  if (foreign_filters(ifindex)) return false;
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = static_cast<int>(ifindex);
  hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
  return bpf_tc_hook_destroy(&hook) == 0;
}

bool is_bpffs(const char *path) {
  struct statfs st {};
  return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

// The inode of this process's pid namespace: pids (and /proc) mean something only inside it.
std::string pidns_id() {
  struct stat st {};
  if (stat("/proc/self/ns/pid", &st) != 0) return "0";
  return std::to_string(st.st_ino);
}

// Field 22 of /proc/<pid>/stat, the process's start time since boot in clock ticks; "" if there is
// no such process. Fields are counted after the command name's ')': the name may hold spaces.
// nullopt when /proc cannot say (hidepid, EACCES): the process may be alive.
std::optional<std::string> start_time(pid_t pid) {
  std::string path = fmt::format("/proc/{}/stat", pid);
  if (access(path.c_str(), F_OK) != 0) {
    if (errno == ENOENT || errno == ESRCH) return "";
    return std::nullopt;
  }
  std::ifstream f(path);
  std::string line;
  if (!std::getline(f, line)) return std::nullopt;
  auto paren = line.rfind(')');
  if (paren == std::string::npos) return "";
  std::istringstream in(line.substr(paren + 1));
  std::string field;
  for (int i = 3; i <= 22; i++)
    if (!(in >> field)) return std::nullopt;
  return field;
}

// Detaches the link pinned at `path` now (an unlinked pin alone frees its link later, from a
// kernel work queue: the program would run on for a moment) and unlinks the pin. 0 or an errno.
int remove_pin(const std::string &path) {
  if (FD fd(bpf_obj_get(path.c_str())); fd) bpf_link_detach(fd.get());  // fails if already detached (interface gone)
  return unlink(path.c_str()) == 0 ? 0 : errno;
}

// "agent-<pidns>-<pid>-<starttime>", all decimal.
bool parse_agent_dir(std::string_view name, std::string &pidns, int &pid, std::string &start) {
  constexpr std::string_view kPrefix = "agent-";
  if (!name.starts_with(kPrefix)) return false;
  name.remove_prefix(kPrefix.size());
  auto ns_dash = name.find('-');
  if (ns_dash == 0 || ns_dash == std::string_view::npos) return false;
  pidns = name.substr(0, ns_dash);
  if (pidns.find_first_not_of("0123456789") != std::string::npos) return false;
  name.remove_prefix(ns_dash + 1);
  auto dash = name.find('-');
  if (dash == std::string_view::npos || dash + 1 == name.size()) return false;
  auto [end, err] = std::from_chars(name.data(), name.data() + dash, pid);
  if (err != std::errc() || end != name.data() + dash || pid <= 0) return false;
  start = name.substr(dash + 1);
  return start.find_first_not_of("0123456789") == std::string::npos;
}

// The entries of a directory, read before any is removed. Never throws (destructors use it).
std::vector<std::filesystem::path> entries(const std::string &dir) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) out.push_back(it->path());
  return out;
}

} // namespace

std::string netns_id() {
  struct stat st {};
  // thread-self: a thread may have entered another namespace (NetnsScope).
  if (stat("/proc/thread-self/ns/net", &st) != 0) return "0";
  return std::to_string(st.st_ino);
}

namespace {

class TcxHook final : public Hook {
public:
  explicit TcxHook(FD link) : link_(std::move(link)) {}
  explicit TcxHook(std::string pin) : pin_(std::move(pin)) {}
  ~TcxHook() override {
    if (!pin_.empty()) remove_pin(pin_);
  }
  TcxHook(const TcxHook &) = delete;
  TcxHook &operator=(const TcxHook &) = delete;
  const char *kind() const override { return pin_.empty() ? "tcx" : "tcx-pinned"; }

private:
  FD link_;          // closing the last fd of an unpinned link detaches the program
  std::string pin_;  // or the link is pinned here, and no descriptor is held
};

// clsact is shared by both directions: remember who created it and how many hooks use it.
// By network namespace and ifindex: the same ifindex is another interface in another namespace
// (agent sessions with `netns:`), whose qdisc we may or may not have created.
struct QdiscUse {
  bool created = false;
  int hooks = 0;
};
using QdiscKey = std::pair<std::string, uint32_t>;  // (netns_id(), ifindex)
std::mutex g_qdisc_mu;
std::map<QdiscKey, QdiscUse> g_qdiscs;

class TcHook final : public Hook {
public:
  TcHook(uint32_t ifindex, bpf_tc_attach_point point) : ifindex_(ifindex), point_(point), key_{netns_id(), ifindex} {}
  ~TcHook() override {
    if (added_) detach_filter();
    std::lock_guard lock(g_qdisc_mu);
    auto &use = g_qdiscs[key_];
    if (--use.hooks == 0) {
      if (use.created) {
        remove_our_qdisc(ifindex_);  // only if nothing else is on it now
        std::error_code ec;
        std::filesystem::remove(state_file(ifindex_), ec);
      }
      g_qdiscs.erase(key_);
    }
  }
  TcHook(const TcHook &) = delete;
  TcHook &operator=(const TcHook &) = delete;
  const char *kind() const override { return "tc"; }
  // The filter is ours to delete only once our add succeeded: the one a failed add (EEXIST) ran
  // into is another bpftap's, still working.
  void added() { added_ = true; }

private:
  void detach_filter() {
    bpf_tc_hook hook{};
    hook.sz = sizeof(hook);
    hook.ifindex = static_cast<int>(ifindex_);
    hook.attach_point = point_;
    bpf_tc_opts opts{};
    opts.sz = sizeof(opts);
    opts.handle = kTcHandle;
    opts.priority = kTcPriority;
    bpf_tc_detach(&hook, &opts);
  }

  uint32_t ifindex_;
  bpf_tc_attach_point point_;
  QdiscKey key_;  // detached in the namespace it was attached in (the caller's NetnsScope)
  bool added_ = false;
};

Result<std::unique_ptr<Hook>> attach_tcx(int prog_fd, uint32_t ifindex, uint8_t dir, const std::string &pin_dir) {
  auto type = static_cast<bpf_attach_type>(dir == BPFTAP_DIR_IN ? kBpfTcxIngress : kBpfTcxEgress);
  int fd = bpf_link_create(prog_fd, static_cast<int>(ifindex), type, nullptr);
  if (fd < 0)
    return fail_errno(fmt::format("attach tcx {} on {}", dir == BPFTAP_DIR_IN ? "ingress" : "egress", ifname(ifindex)), fd);
  FD link(fd);
  if (pin_dir.empty()) return std::make_unique<TcxHook>(std::move(link));
  // Unique within the directory; the namespace, interface and direction for cleanup's report.
  static std::atomic<uint64_t> next_pin{0};
  std::string pin = fmt::format("{}/link-{}-{}-{}-{}", pin_dir, next_pin++, netns_id(), ifindex,
                                dir == BPFTAP_DIR_IN ? "in" : "out");
  if (int err = bpf_obj_pin(link.get(), pin.c_str()); err) {
    // The kernel layer has no log: stderr, once (the agent's log is its stderr).
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true))
      std::fprintf(stderr, "bpftap: warning: cannot pin TCX links in %s (%s): their descriptors are held instead\n",
                   pin_dir.c_str(), std::strerror(-err));
    return std::make_unique<TcxHook>(std::move(link));
  }
  return std::make_unique<TcxHook>(std::move(pin));  // `link` closes: the pin holds the link
}

// A netlink request for one tc filter, built in place; nested attributes are opened, filled and
// closed. Small and bounded: what bpftap sends fits.
class TfilterRequest {
public:
  TfilterRequest(uint16_t type, uint16_t flags, uint32_t ifindex, uint8_t dir) {
    auto *h = reinterpret_cast<nlmsghdr *>(buf_.data());
    h->nlmsg_len = NLMSG_LENGTH(sizeof(tcmsg));
    h->nlmsg_type = type;
    h->nlmsg_flags = NLM_F_REQUEST | flags;
    h->nlmsg_seq = 1;
    auto *t = static_cast<tcmsg *>(NLMSG_DATA(h));
    t->tcm_family = AF_UNSPEC;
    t->tcm_ifindex = static_cast<int>(ifindex);
    t->tcm_handle = kTcHandle;
    t->tcm_parent = TC_H_MAKE(TC_H_CLSACT, dir == BPFTAP_DIR_IN ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
    t->tcm_info = TC_H_MAKE(kTcPriority << 16, htons(ETH_P_ALL));  // as libbpf's bpf_tc_attach
  }
  // The requests are fixed in shape and far below the buffer's size; one that would not fit
  // is sent without the attribute, and the kernel refuses it.
  void put(uint16_t type, const void *data, size_t len) {
    auto *h = header();
    if (NLMSG_ALIGN(h->nlmsg_len) + RTA_SPACE(len) > buf_.size()) return;
    auto *a = reinterpret_cast<rtattr *>(buf_.data() + NLMSG_ALIGN(h->nlmsg_len));
    a->rta_type = type;
    a->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    if (len) std::memcpy(RTA_DATA(a), data, len);
    h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
  }
  void put(uint16_t type, const std::string &s) { put(type, s.c_str(), s.size() + 1); }
  void put(uint16_t type, uint32_t v) { put(type, &v, sizeof(v)); }
  size_t open(uint16_t type) {  // a nested attribute; close() sets its length
    size_t at = NLMSG_ALIGN(header()->nlmsg_len);
    put(static_cast<uint16_t>(type | NLA_F_NESTED), nullptr, 0);
    return at;
  }
  void close(size_t at) {
    reinterpret_cast<rtattr *>(buf_.data() + at)->rta_len = static_cast<uint16_t>(header()->nlmsg_len - at);
  }
  // Sends the request and reads the answer: the kernel's error (0 for an ACK) and, for a GET, the
  // message it returned.
  int exchange(std::vector<char> *reply = nullptr) const {
    FD fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd) return -errno;
    timeval tv{2, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (send(fd.get(), buf_.data(), header()->nlmsg_len, 0) < 0) return -errno;
    alignas(nlmsghdr) char in[8192];
    ssize_t n = recv(fd.get(), in, sizeof(in), 0);
    if (n < 0) return -errno;
    for (auto *h = reinterpret_cast<nlmsghdr *>(in); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_ERROR) return static_cast<const nlmsgerr *>(NLMSG_DATA(h))->error;
      if (reply) reply->assign(reinterpret_cast<char *>(h), reinterpret_cast<char *>(h) + h->nlmsg_len);
      return 0;
    }
    return -EPROTO;
  }

private:
  nlmsghdr *header() { return reinterpret_cast<nlmsghdr *>(buf_.data()); }
  const nlmsghdr *header() const { return reinterpret_cast<const nlmsghdr *>(buf_.data()); }
  alignas(nlmsghdr) std::array<char, 512> buf_{};
};

// The attribute of `type` in the `len` bytes of attributes at `data`, or nullptr.
rtattr *find_attr(void *data, size_t len, uint16_t type) {
  int left = static_cast<int>(len);
  for (auto *a = static_cast<rtattr *>(data); RTA_OK(a, left); a = RTA_NEXT(a, left))
    if ((a->rta_type & NLA_TYPE_MASK) == type) return a;
  return nullptr;
}
rtattr *find_attr(rtattr *nest, uint16_t type) { return nest ? find_attr(RTA_DATA(nest), RTA_PAYLOAD(nest), type) : nullptr; }

// `tc filter add dev IF ingress|egress pref P handle H bpf fd PROG action mirred egress mirror dev
// TARGET continue`: classifier mode (no TCA_BPF_FLAGS_ACT_DIRECT), one action.
int add_mirred_filter(int prog_fd, uint32_t ifindex, uint8_t dir, uint32_t mirror_to) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (int err = bpf_obj_get_info_by_fd(prog_fd, &info, &len); err) return err;
  TfilterRequest req(RTM_NEWTFILTER, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, ifindex, dir);
  req.put(TCA_KIND, std::string("bpf"));
  size_t options = req.open(TCA_OPTIONS);
  req.put(TCA_BPF_FD, static_cast<uint32_t>(prog_fd));
  req.put(TCA_BPF_NAME, fmt::format("{}:[{}]", info.name, info.id));  // as libbpf's bpf_tc_attach names it
  size_t actions = req.open(TCA_BPF_ACT);
  size_t first = req.open(1);  // actions are numbered from 1, in order
  req.put(TCA_ACT_KIND, std::string("mirred"));
  size_t params = req.open(TCA_ACT_OPTIONS);
  tc_mirred m{};
  m.action = TC_ACT_UNSPEC;  // "continue": the next filter runs, as if we were not there
  m.eaction = TCA_EGRESS_MIRROR;
  m.ifindex = mirror_to;
  req.put(TCA_MIRRED_PARMS, &m, sizeof(m));
  req.close(params);
  req.close(first);
  req.close(actions);
  req.close(options);
  return req.exchange();
}

Result<std::unique_ptr<Hook>> attach_tc(int prog_fd, uint32_t ifindex, uint8_t dir, uint32_t mirror_to = 0) {
  auto point = dir == BPFTAP_DIR_IN ? BPF_TC_INGRESS : BPF_TC_EGRESS;
  std::string what = fmt::format("attach tc {} on {}", dir == BPFTAP_DIR_IN ? "ingress" : "egress", ifname(ifindex));
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = static_cast<int>(ifindex);
  hook.attach_point = point;
  {
    std::lock_guard lock(g_qdisc_mu);
    const QdiscKey key{netns_id(), ifindex};
    auto &use = g_qdiscs[key];
    if (use.hooks == 0) {
      int err = bpf_tc_hook_create(&hook);
      if (err && err != -EEXIST) {
        g_qdiscs.erase(key);
        return fail_errno(what + ": create clsact qdisc", err);
      }
      use.created = err == 0;
      if (use.created) {
        std::filesystem::create_directories(kStateDir);
        std::ofstream(state_file(ifindex)) << ifname(ifindex) << "\n";
      }
    }
    use.hooks++;
  }
  auto guard = std::make_unique<TcHook>(ifindex, point);  // undoes the qdisc use on failure
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.handle = kTcHandle;
  opts.priority = kTcPriority;
  opts.prog_fd = prog_fd;
  if (int err = mirror_to ? add_mirred_filter(prog_fd, ifindex, dir, mirror_to) : bpf_tc_attach(&hook, &opts); err) {
    if (err == -EEXIST)
      return fail(what + ": another bpftap session or process already has its tc filter there (one per interface "
                         "and direction with --attach tc / attach: tc; TCX, the default, takes any number)");
    if (mirror_to) what += fmt::format(": a cls_bpf filter with mirred to {}", ifname(mirror_to));
    return fail_errno(what, err);
  }
  guard->added();
  return guard;
}

bool prog_is_ours(uint32_t prog_id) {
  FD fd(bpf_prog_get_fd_by_id(prog_id));
  if (!fd) return false;
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return false;
  return std::string_view(info.name).starts_with("bpftap_");
}

} // namespace

Result<std::unique_ptr<Hook>> attach_hook(int prog_fd, uint32_t ifindex, uint8_t dir, AttachMode mode,
                                          const std::string &pin_dir) {
  if (mode == AttachMode::Tc) return attach_tc(prog_fd, ifindex, dir);
  auto tcx = attach_tcx(prog_fd, ifindex, dir, pin_dir);
  // EINVAL: a kernel that does not know the TCX attach types.
  if (tcx || mode == AttachMode::Tcx || tcx.error().code != EINVAL) return tcx;
  return attach_tc(prog_fd, ifindex, dir);
}

Result<std::unique_ptr<Hook>> attach_tc_mirred(int prog_fd, uint32_t ifindex, uint8_t dir, uint32_t mirror_to) {
  return attach_tc(prog_fd, ifindex, dir, mirror_to);
}

Result<uint32_t> tc_mirred_failures(uint32_t ifindex, uint8_t dir) {
  auto what = [&] {
    return fmt::format("read the mirred action's counters on {} {}", ifname(ifindex), dir == BPFTAP_DIR_IN ? "ingress" : "egress");
  };
  TfilterRequest req(RTM_GETTFILTER, 0, ifindex, dir);
  std::vector<char> reply;
  if (int err = req.exchange(&reply); err) return fail_errno(what(), err);
  auto *h = reinterpret_cast<nlmsghdr *>(reply.data());
  auto *options = find_attr(TCA_RTA(static_cast<tcmsg *>(NLMSG_DATA(h))), TCA_PAYLOAD(h), TCA_OPTIONS);
  auto *actions = find_attr(options, TCA_BPF_ACT);
  auto *queue = find_attr(find_attr(find_attr(actions, 1), TCA_ACT_STATS), TCA_STATS_QUEUE);
  if (!queue || RTA_PAYLOAD(queue) < sizeof(gnet_stats_queue)) return fail(what() + ": the filter has no mirred action");
  gnet_stats_queue q{};
  std::memcpy(&q, RTA_DATA(queue), sizeof(q));
  return q.overlimits;
}

// libbpf reports every failed netlink request on stderr; cleanup probes interfaces that mostly
// have no qdisc at all, so it keeps libbpf quiet while it looks.
class QuietLibbpf {
public:
  QuietLibbpf() : old_(libbpf_set_print(nullptr)) {}
  ~QuietLibbpf() { libbpf_set_print(old_); }

private:
  libbpf_print_fn_t old_;
};

Result<CleanupReport> cleanup_leftovers() {
  QuietLibbpf quiet;
  CleanupReport report;
  struct if_nameindex *ifs = if_nameindex();
  if (!ifs) return fail_errno("list interfaces", errno);
  for (struct if_nameindex *i = ifs; i->if_index != 0; i++) {
    for (auto point : {BPF_TC_INGRESS, BPF_TC_EGRESS}) {
      bpf_tc_hook hook{};
      hook.sz = sizeof(hook);
      hook.ifindex = static_cast<int>(i->if_index);
      hook.attach_point = point;
      bpf_tc_opts opts{};
      opts.sz = sizeof(opts);
      opts.handle = kTcHandle;
      opts.priority = kTcPriority;
      if (bpf_tc_query(&hook, &opts) != 0 || !prog_is_ours(opts.prog_id)) continue;
      bpf_tc_opts del{};
      del.sz = sizeof(del);
      del.handle = kTcHandle;
      del.priority = kTcPriority;
      if (bpf_tc_detach(&hook, &del) == 0)
        report.removed.push_back(fmt::format("tc filter {} {}", i->if_name, point == BPF_TC_INGRESS ? "ingress" : "egress"));
    }
  }
  if_freenameindex(ifs);

  std::error_code ec;
  std::string prefix = netns_id() + "-";
  for (const auto &e : std::filesystem::directory_iterator(kStateDir, ec)) {
    std::string name = e.path().filename();
    if (!name.starts_with(prefix)) continue;
    std::string digits = name.substr(prefix.size());
    uint32_t ifindex = 0;
    auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), ifindex);
    if (digits.empty() || err != std::errc() || end != digits.data() + digits.size() || ifindex == 0) {
      report.skipped.push_back(fmt::format("{}: not a bpftap state file (NETNS-IFINDEX), left alone", e.path().string()));
      continue;
    }
    // The interface may have gone (and its qdisc with it), or another tool may use the qdisc now.
    if (if_indextoname(ifindex, std::array<char, IF_NAMESIZE>{}.data()) == nullptr) {
      std::filesystem::remove(e.path(), ec);
      continue;
    }
    if (foreign_filters(ifindex)) {
      report.skipped.push_back(fmt::format("clsact qdisc on {}: bpftap created it, but other filters are on it now: left",
                                           ifname(ifindex)));
    } else if (remove_our_qdisc(ifindex)) {
      report.removed.push_back("clsact qdisc on " + ifname(ifindex));
    }
    std::filesystem::remove(e.path(), ec);
  }
  return report;
}

Result<std::unique_ptr<PinDir>> PinDir::create() {
  // What bpftool does when nothing is mounted there: a bpffs of our own, for root only.
  const bool mounted = !is_bpffs(kBpffs);
  if (mounted && mount("bpf", kBpffs, "bpf", 0, "mode=0700") != 0)
    return fail_errno(fmt::format("mount a bpf filesystem on {}", kBpffs), errno);
  if (mkdir(kPinRoot, 0700) != 0 && errno != EEXIST) return fail_errno(fmt::format("create {}", kPinRoot), errno);
  auto start = start_time(getpid());
  if (!start || start->empty()) return fail(fmt::format("read /proc/{}/stat", getpid()));
  // The pid namespace in the name: an agent in a container (its own pids) sharing this bpffs
  // is judged only by processes that see its pids.
  std::string path = fmt::format("{}/agent-{}-{}-{}", kPinRoot, pidns_id(), getpid(), *start);
  // EEXIST cannot be another process's: the pid namespace, pid and start time are ours.
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return fail_errno("create " + path, errno);
  return std::unique_ptr<PinDir>(new PinDir(std::move(path), mounted));
}

PinDir::~PinDir() {
  for (const auto &p : entries(path_)) remove_pin(p);  // hooks still alive: their own unlink finds nothing
  rmdir(path_.c_str());
  rmdir(kPinRoot);  // fails, as it should, while another agent's directory is in it
  // Leave the host as found: a bpffs this agent mounted goes when nothing but the kernel's own
  // iterator files (maps.debug, progs.debug) is in it.
  auto left = entries(kBpffs);
  if (mounted_ && std::all_of(left.begin(), left.end(), [](const auto &e) { return e.extension() == ".debug"; }))
    umount2(kBpffs, MNT_DETACH);
}

Result<CleanupReport> cleanup_dead_agent_pins() {
  CleanupReport report;
  if (!is_bpffs(kBpffs)) return report;  // not mounted here: no agent pinned anything we could see
  for (const auto &dir : entries(kPinRoot)) {
    std::string name = dir.filename();
    int pid = 0;
    std::string pidns, start;
    if (!parse_agent_dir(name, pidns, pid, start)) {
      report.skipped.push_back(
          fmt::format("{}: not an agent's pin directory (agent-PIDNS-PID-STARTTIME), left alone", dir.string()));
      continue;
    }
    if (pidns != pidns_id()) {
      report.skipped.push_back(
          fmt::format("{}: an agent of another pid namespace, which only it can tell alive, left alone", dir.string()));
      continue;
    }
    auto now = start_time(pid);
    if (!now) {
      report.skipped.push_back(fmt::format("{}: /proc/{} cannot be read, left alone", dir.string(), pid));
      continue;
    }
    if (*now == start) {
      report.skipped.push_back(fmt::format("{}: agent {} is running, its links left alone", dir.string(), pid));
      continue;
    }
    for (const auto &pin : entries(dir)) {
      if (int err = remove_pin(pin); err)
        report.skipped.push_back(fmt::format("{}: {}", pin.string(), std::strerror(err)));
      else
        report.removed.push_back(fmt::format("TCX link {} of agent {} (gone)", pin.filename().string(), pid));
    }
    if (rmdir(dir.c_str()) != 0)
      report.skipped.push_back(fmt::format("{}: {}: left", dir.string(), std::strerror(errno)));
  }
  rmdir(kPinRoot);  // when no agent's directory is left in it
  return report;
}

} // namespace bpftap
