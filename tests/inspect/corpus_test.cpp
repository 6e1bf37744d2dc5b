// bpftap inspect on the corpus: the attack captures raise the alerts they should, and no benign
// capture raises a behavioural (scan / flood / guessing) alert.
#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "inspect/inspector.h"
#include "inspect/pcap_file.h"

using namespace bpftap;
using namespace bpftap::inspect;
using json = nlohmann::json;

namespace {

const std::string kCorpus = std::string(BPFTAP_CORPUS_DIR) + "/ndpi/";

// The alerts bpftap inspect -r raises on one file.
std::vector<json> alerts_of(const std::string &path) {
  char *buf = nullptr;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  auto file = PcapFile::open(path, "");
  EXPECT_TRUE(file) << path;
  std::vector<json> alerts;
  if (file) {
    InspectOptions o;
    o.interfaces = {InterfaceInfo{path, 0, (*file)->linktype(), 262144}};
    o.alerts = out;
    o.offline = true;  // as bpftap inspect -r
    Inspector insp(o);
    (void)(*file)->read_all(insp);  // some corpus files end in a damaged record: keep what was read
    insp.finish();
  }
  std::fclose(out);
  std::string s(buf ? buf : "", len);
  free(buf);
  for (size_t pos = 0; pos < s.size();) {
    size_t e = s.find('\n', pos);
    json ev = json::parse(s.substr(pos, e - pos));
    if (ev["event_type"] == "alert") alerts.push_back(ev);  // the flow events: eve_schema_check.py
    pos = e + 1;
  }
  return alerts;
}

bool is_behavioural(const json &a) { return !a["alert"]["signature"].get<std::string>().starts_with("nDPI:"); }

struct Expect {
  const char *file;
  const char *signature;  // prefix of an alert signature that must be raised
};

TEST(InspectCorpus, AttackCapturesRaiseTheirAlerts) {
  const Expect cases[] = {
      {"WebattackSQLinj.pcap", "nDPI: SQL Injection"},
      {"sql_injection.pcap", "nDPI: SQL Injection"},
      {"xss.pcap", "nDPI: XSS Attack"},
      {"log4j-webapp-exploit.pcap", "nDPI: Possible Exploit Detected"},
      {"synscan.pcap", "Port scan (vertical)"},
      {"ftp.pcap", "nDPI: Clear-Text Credentials"},
      {"bad-dns-traffic.pcap", "nDPI: Suspicious DGA Domain name"},
  };
  for (const auto &c : cases) {
    auto alerts = alerts_of(kCorpus + c.file);
    bool found = false;
    std::set<std::string> seen;
    for (const auto &a : alerts) {
      std::string sig = a["alert"]["signature"];
      seen.insert(sig);
      found |= sig.starts_with(c.signature);
      // Every alert is a complete EVE record.
      for (const char *k : {"timestamp", "flow_id", "event_type", "src_ip", "dest_ip", "proto", "direction",
                            "community_id", "flow"})
        EXPECT_TRUE(a.contains(k)) << c.file << ": alert without " << k << ": " << a.dump();
      EXPECT_FALSE(a.contains("in_iface")) << "Suricata writes no in_iface for a file";
      EXPECT_EQ(a["event_type"], "alert");
      for (const char *k : {"signature", "category", "severity"}) EXPECT_TRUE(a["alert"].contains(k)) << a.dump();
    }
    std::string all;
    for (const auto &s : seen) all += "\n  " + s;
    EXPECT_TRUE(found) << c.file << ": no alert '" << c.signature << "'; got:" << all;
  }
}

// The examples: http.url is the URI alone (host in hostname), with method and user agent;
// app_proto in Suricata's names; a SYN scan is one scan alert, no "Unsafe Protocol" per port.
TEST(InspectCorpus, SuricataFieldsOnTheAttackCaptures) {
  auto sqli = alerts_of(kCorpus + "WebattackSQLinj.pcap");
  auto it = std::find_if(sqli.begin(), sqli.end(), [](const json &a) { return a["alert"]["signature"] == "nDPI: SQL Injection"; });
  ASSERT_NE(it, sqli.end());
  const json &a = *it;
  EXPECT_EQ(a["app_proto"], "http");
  EXPECT_EQ(a["alert"]["signature_id"], 8000002);
  ASSERT_TRUE(a.contains("http")) << a.dump();
  EXPECT_TRUE(a["http"]["url"].get<std::string>().starts_with("/")) << a.dump();
  EXPECT_EQ(a["http"]["hostname"], "205.174.165.68");
  EXPECT_EQ(a["http"]["http_method"], "GET");
  EXPECT_TRUE(a["http"].contains("http_user_agent"));
  EXPECT_GT(a.value("pcap_cnt", 0), 0);
  auto ftp = alerts_of(kCorpus + "ftp.pcap");
  ASSERT_FALSE(ftp.empty());
  EXPECT_EQ(ftp[0]["app_proto"], "ftp");
  auto scan = alerts_of(kCorpus + "synscan.pcap");
  size_t scans = 0;
  for (const auto &s : scan) {
    EXPECT_TRUE(is_behavioural(s)) << "an nDPI alert in a SYN scan: " << s.dump();
    scans += s["alert"]["signature"] == "Port scan (vertical)";
    if (is_behavioural(s)) {
      EXPECT_EQ(s["alert"]["metadata"]["scanner"], json::array({"172.16.0.8"}));
    }
  }
  EXPECT_GE(scans, 1u);
}

TEST(InspectCorpus, BenignCapturesRaiseNoBehaviouralAlert) {
  const std::set<std::string> attacks = {"synscan.pcap"};  // the corpus's only scan
  DIR *dir = opendir(kCorpus.c_str());
  ASSERT_NE(dir, nullptr) << kCorpus;
  std::vector<std::string> files;
  while (dirent *e = readdir(dir))
    if (e->d_name[0] != '.') files.emplace_back(e->d_name);
  closedir(dir);
  std::sort(files.begin(), files.end());
  ASSERT_GT(files.size(), 500u);
  size_t checked = 0;
  for (const auto &f : files) {
    if (attacks.count(f)) continue;
    if (!PcapFile::open(kCorpus + f, "")) continue;  // not readable by libpcap
    for (const auto &a : alerts_of(kCorpus + f))
      EXPECT_FALSE(is_behavioural(a)) << f << ": " << a["alert"]["signature"];
    checked++;
  }
  EXPECT_GT(checked, 500u);
}

} // namespace
