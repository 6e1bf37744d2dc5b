// The agent's alert and flow files: every write checked, failures kept for a retry (bounded),
// deleted and moved files started again.
#include "sinks/line_file.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using namespace bpftap;
namespace fs = std::filesystem;

namespace {

struct Dir {
  std::string path;
  Dir() {
    std::string t = (fs::temp_directory_path() / "bpftap-lines-XXXXXX").string();
    path = mkdtemp(t.data()) ? t : "";
  }
  ~Dir() { fs::remove_all(path); }
  std::string file(const std::string &n) const { return path + "/" + n; }
};

std::string slurp(const std::string &p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class FileSizeLimit {
public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &old_);
    signal(SIGXFSZ, SIG_IGN);
    rlimit r = old_;
    r.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &r);
  }
  ~FileSizeLimit() { setrlimit(RLIMIT_FSIZE, &old_); }

private:
  rlimit old_{};
};

std::string numbered(int from, int to) {
  std::string out;
  for (int i = from; i < to; i++) out += "{\"alert\":" + std::to_string(i) + "}\n";
  return out;
}

TEST(LineFile, AFailedWriteKeepsItsLinesAndARetryWritesThemOnce) {
  Dir d;
  auto f = LineFile::open(d.file("eve.json"), 1 << 20, std::chrono::milliseconds(0));
  ASSERT_TRUE(f) << f.error().message();
  for (int i = 0; i < 5; i++) (*f)->line("{\"alert\":" + std::to_string(i) + "}");
  ASSERT_TRUE((*f)->flush());
  {
    FileSizeLimit limit(fs::file_size(d.file("eve.json")) + 20);  // part of the next lines
    for (int i = 5; i < 20; i++) (*f)->line("{\"alert\":" + std::to_string(i) + "}");
    auto r = (*f)->flush();
    ASSERT_FALSE(r);
    auto st = (*f)->stats();
    EXPECT_TRUE(st.failing);
    EXPECT_EQ(st.write_errors, 1u);
    EXPECT_THAT(st.error, ::testing::HasSubstr("File too large"));
    EXPECT_FALSE((*f)->flush()) << "still full";
  }
  ASSERT_TRUE((*f)->flush());
  auto st = (*f)->stats();
  EXPECT_FALSE(st.failing);
  EXPECT_EQ(st.lines, 20u);
  EXPECT_EQ(st.dropped, 0u);
  EXPECT_EQ(slurp(d.file("eve.json")), numbered(0, 20));
}

TEST(LineFile, LinesBeyondTheMemoryBoundAreDroppedAndCounted) {
  Dir d;
  auto f = LineFile::open(d.file("eve.json"), 100, std::chrono::milliseconds(0));
  ASSERT_TRUE(f);
  {
    FileSizeLimit limit(0);
    for (int i = 0; i < 20; i++) (*f)->line("{\"alert\":" + std::to_string(i) + "}");  // 12-13 bytes each
    EXPECT_FALSE((*f)->flush());
  }
  ASSERT_TRUE((*f)->flush());
  auto st = (*f)->stats();
  EXPECT_EQ(st.lines + st.dropped, 20u);
  EXPECT_GE(st.dropped, 12u);
  EXPECT_EQ(slurp(d.file("eve.json")), numbered(0, static_cast<int>(st.lines)));
}

TEST(LineFile, ARetryWaitsItsTurn) {
  Dir d;
  auto f = LineFile::open(d.file("eve.json"), 1 << 20, std::chrono::milliseconds(60000));
  ASSERT_TRUE(f);
  {
    FileSizeLimit limit(0);
    (*f)->line("{}");
    EXPECT_FALSE((*f)->flush());
  }
  EXPECT_FALSE((*f)->flush()) << "retried before its time";
  EXPECT_EQ((*f)->stats().write_errors, 1u);
}

TEST(LineFile, ADeletedFileIsStartedAgainAndAMovedOneOnReopen) {
  Dir d;
  auto f = LineFile::open(d.file("eve.json"), 1 << 20, std::chrono::milliseconds(0));
  ASSERT_TRUE(f);
  (*f)->line("{\"alert\":0}");
  ASSERT_TRUE((*f)->flush());
  {
    FileSizeLimit limit(0);
    (*f)->line("{\"alert\":1}");
    EXPECT_FALSE((*f)->flush());
  }
  fs::remove(d.file("eve.json"));  // someone made room
  ASSERT_TRUE((*f)->flush());
  EXPECT_EQ(slurp(d.file("eve.json")), numbered(1, 2));
  fs::rename(d.file("eve.json"), d.file("eve.json.1"));  // logrotate
  ASSERT_TRUE((*f)->reopen());
  (*f)->line("{\"alert\":2}");
  ASSERT_TRUE((*f)->flush());
  EXPECT_EQ(slurp(d.file("eve.json.1")), numbered(1, 2));
  EXPECT_EQ(slurp(d.file("eve.json")), numbered(2, 3));
}

} // namespace
