#include "cli/any_watch.h"

#include <cstdio>

namespace bpftap::cli {

Result<std::unique_ptr<AnyWatcher>> AnyWatcher::open(Capture &cap, const std::vector<InterfaceInfo> &known,
                                                     uint32_t snaplen,
                                                     std::function<Result<>(uint32_t, const InterfaceInfo &)> added) {
  auto w = agent::LinkWatcher::open();
  if (!w) return tl::unexpected(w.error());
  std::unique_ptr<AnyWatcher> a(new AnyWatcher(std::move(*w), cap));
  a->snaplen_ = snaplen;
  a->added_ = std::move(added);
  for (const auto &i : known) a->attached_.insert(i.ifindex);
  return a;
}

void AnyWatcher::poll() {
  for (const auto &e : watcher_.read()) {
    bool known = attached_.count(e.ifindex) > 0;
    if (e.added && e.ethernet && !known) {
      InterfaceInfo info{e.name, e.ifindex, 1, snaplen_};
      auto slot = cap_.add_interface(info, [&](uint32_t s) { return added_(s, info); });
      if (!slot) {
        std::fprintf(stderr, "bpftap: %s appeared but cannot be added: %s\n", e.name.c_str(),
                     slot.error().message().c_str());
        continue;
      }
      attached_.insert(e.ifindex);
      std::fprintf(stderr, "bpftap: %s appeared: capturing on it too\n", e.name.c_str());
    } else if (!e.added && known) {
      attached_.erase(e.ifindex);
      if (auto last = cap_.remove_interface(e.ifindex); last) departed_.push_back(*last);
      std::fprintf(stderr, "bpftap: %s went away\n", e.name.c_str());
    }
  }
}

} // namespace bpftap::cli
