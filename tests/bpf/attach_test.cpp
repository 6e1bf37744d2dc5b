// Pinned TCX links (the agent's): attached without a descriptor, detached when the hook goes, and
// removed by cleanup_dead_agent_pins() only when the agent that pinned them is gone. Root; each
// test runs in a network namespace of its own with a veth pair. PinDir mounts a bpffs on
// /sys/fs/bpf if none is there, as the agent does.
#include <bpf/bpf.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "bpf/bpftap.h"
#include "bpf_test_util.h"
#include "capture/capture_prog.h"
#include "kernel/attach.h"
#include "util/run.h"

using namespace bpftap;
using bpftap::test::PrivateNetns;

namespace {

constexpr int kTcxIngress = 46;  // BPF_TCX_INGRESS and _EGRESS, not in bookworm's UAPI headers
constexpr int kTcxEgress = 47;

size_t open_fds() {
  return static_cast<size_t>(std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                                           std::filesystem::directory_iterator()));
}

// The programs attached to a TCX hook of `ifindex`.
std::vector<uint32_t> tcx_progs(uint32_t ifindex, int type) {
  std::vector<uint32_t> ids(16);
  uint32_t count = static_cast<uint32_t>(ids.size());
  if (bpf_prog_query(static_cast<int>(ifindex), static_cast<bpf_attach_type>(type), 0, nullptr, ids.data(),
                     &count) != 0)
    return {};
  ids.resize(count);
  return ids;
}
std::vector<uint32_t> tcx_ingress_progs(uint32_t ifindex) { return tcx_progs(ifindex, kTcxIngress); }

uint32_t prog_id(int fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

size_t files_in(const std::string &dir) {
  std::error_code ec;
  return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(dir, ec),
                                           std::filesystem::directory_iterator()));
}

class PinnedAttach : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(ns_.ok());
    auto r = lab::run_checked({"ip", "link", "add", "btp0", "type", "veth", "peer", "name", "btp1"});
    ASSERT_TRUE(r) << r.error().message();
    ifindex_ = if_nametoindex("btp0");
    ASSERT_NE(ifindex_, 0u);
    auto prog = CaptureProgram::load({});
    ASSERT_TRUE(prog) << prog.error().message();
    prog_ = std::move(*prog);
    auto pins = PinDir::create();
    ASSERT_TRUE(pins) << pins.error().message();
    pins_ = std::move(*pins);
  }
  PrivateNetns ns_;
  uint32_t ifindex_ = 0;
  std::unique_ptr<CaptureProgram> prog_;
  std::unique_ptr<PinDir> pins_;
};

TEST_F(PinnedAttach, HoldsNoDescriptorAndDetachesWhenDestroyed) {
  const uint32_t id = prog_id(prog_->ingress_fd());
  ASSERT_NE(id, 0u);
  size_t before = open_fds();
  auto hook = attach_hook(prog_->ingress_fd(), ifindex_, BPFTAP_DIR_IN, AttachMode::Tcx, pins_->path());
  ASSERT_TRUE(hook) << hook.error().message();
  EXPECT_STREQ((*hook)->kind(), "tcx-pinned");
  EXPECT_EQ(open_fds(), before) << "the pinned hook holds a descriptor";
  EXPECT_EQ(files_in(pins_->path()), 1u) << "no pin in " << pins_->path();
  EXPECT_EQ(tcx_ingress_progs(ifindex_), std::vector<uint32_t>{id}) << "the program is not attached";

  hook->reset();
  EXPECT_EQ(files_in(pins_->path()), 0u) << "the pin was left in " << pins_->path();
  EXPECT_TRUE(tcx_ingress_progs(ifindex_).empty()) << "the program stayed attached";
}

TEST_F(PinnedAttach, WithoutPinDirTheHookHoldsItsLink) {
  size_t before = open_fds();
  auto hook = attach_hook(prog_->ingress_fd(), ifindex_, BPFTAP_DIR_IN, AttachMode::Tcx);
  ASSERT_TRUE(hook) << hook.error().message();
  EXPECT_STREQ((*hook)->kind(), "tcx");
  EXPECT_EQ(open_fds(), before + 1);
  EXPECT_EQ(files_in(pins_->path()), 0u);
}

// A directory named as this process with another start time is a dead agent's whose pid was
// reused: cleanup detaches its links and removes it; this process's own directory stays.
TEST_F(PinnedAttach, CleanupRemovesOnlyDeadAgentsPins) {
  struct stat pidns {};
  ASSERT_EQ(stat("/proc/self/ns/pid", &pidns), 0);
  const std::string dead = fmt::format("/sys/fs/bpf/bpftap/agent-{}-{}-0", pidns.st_ino, getpid());
  // The same pid and start time in another pid namespace: only that namespace can tell.
  const std::string foreign = fmt::format("/sys/fs/bpf/bpftap/agent-{}-{}-0", pidns.st_ino + 1, getpid());
  struct RemoveAll {  // even if an assertion fails first
    std::string path;
    ~RemoveAll() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } guard{dead}, guard2{foreign};
  ASSERT_TRUE(std::filesystem::create_directory(dead));
  ASSERT_TRUE(std::filesystem::create_directory(foreign));
  auto live = attach_hook(prog_->ingress_fd(), ifindex_, BPFTAP_DIR_IN, AttachMode::Tcx, pins_->path());
  ASSERT_TRUE(live) << live.error().message();
  auto gone = attach_hook(prog_->egress_fd(), ifindex_, BPFTAP_DIR_OUT, AttachMode::Tcx, dead);
  ASSERT_TRUE(gone) << gone.error().message();
  ASSERT_EQ(tcx_ingress_progs(ifindex_).size(), 1u);
  ASSERT_EQ(tcx_progs(ifindex_, kTcxEgress).size(), 1u);

  auto r = cleanup_dead_agent_pins();
  ASSERT_TRUE(r) << r.error().message();
  // Only what this test made is looked at: a crashed earlier run's leftovers may be removed too.
  const std::string ours = fmt::format("-{}-out of agent {} (gone)", ifindex_, getpid());
  EXPECT_EQ(std::count_if(r->removed.begin(), r->removed.end(),
                          [&](const std::string &s) { return s.find(ours) != std::string::npos; }),
            1)
      << fmt::format("{}", fmt::join(r->removed, "; "));
  EXPECT_FALSE(std::filesystem::exists(dead)) << "the dead agent's directory was left";
  EXPECT_TRUE(std::filesystem::exists(foreign)) << "another pid namespace's agent directory was removed";
  EXPECT_TRUE(std::any_of(r->skipped.begin(), r->skipped.end(),
                          [&](const std::string &s) { return s.starts_with(foreign + ": an agent of another pid namespace"); }))
      << "another pid namespace's directory was not reported as left alone";
  EXPECT_TRUE(std::any_of(r->skipped.begin(), r->skipped.end(),
                          [&](const std::string &s) { return s.starts_with(pins_->path() + ": agent "); }))
      << "this process's own directory was not reported as a running agent's";
  EXPECT_EQ(files_in(pins_->path()), 1u) << "the running process's pin was removed";
  EXPECT_EQ(tcx_ingress_progs(ifindex_).size(), 1u) << "the running process's link was detached";
  EXPECT_TRUE(tcx_progs(ifindex_, kTcxEgress).empty()) << "the dead agent's link stayed attached";
}

TEST(PinDir, RemovesItsDirectoryAndWhatIsPinnedInIt) {
  PrivateNetns ns;
  ASSERT_TRUE(ns.ok());
  auto r = lab::run_checked({"ip", "link", "add", "btp0", "type", "veth", "peer", "name", "btp1"});
  ASSERT_TRUE(r) << r.error().message();
  uint32_t ifindex = if_nametoindex("btp0");
  auto prog = CaptureProgram::load({});
  ASSERT_TRUE(prog) << prog.error().message();
  auto pins = PinDir::create();
  ASSERT_TRUE(pins) << pins.error().message();
  std::string path = (*pins)->path();
  auto hook = attach_hook((*prog)->ingress_fd(), ifindex, BPFTAP_DIR_IN, AttachMode::Tcx, path);
  ASSERT_TRUE(hook) << hook.error().message();
  pins->reset();  // before the hook: the agent's exit if a hook outlived its sessions
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(tcx_ingress_progs(ifindex).empty()) << "the program stayed attached";
}

} // namespace
