// Community ID v1 against the spec's published test vectors (tests/fixtures/community_id, see
// ORIGIN.md there): every tuple of the spec's baseline, seed 0 and seed 1.
#include <arpa/inet.h>

#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "inspect/community_id.h"

using namespace bpftap::inspect;

namespace {

IpAddr parse(const std::string &s) {
  IpAddr a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) a.family = 4;
  else if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) a.family = 6;
  return a;
}

void check_baseline(const std::string &file, uint16_t seed) {
  std::ifstream in(std::string(BPFTAP_FIXTURES_DIR) + "/community_id/" + file);
  ASSERT_TRUE(in) << file;
  auto vectors = nlohmann::json::parse(in);
  ASSERT_GE(vectors.size(), 20u);
  for (const auto &v : vectors) {
    IpAddr s = parse(v["saddr"]), d = parse(v["daddr"]);
    ASSERT_NE(s.family, 0) << v.dump();
    uint16_t sp = v["sport"].is_null() ? 0 : v["sport"].get<uint16_t>();
    uint16_t dp = v["dport"].is_null() ? 0 : v["dport"].get<uint16_t>();
    EXPECT_EQ(community_id(s, d, v["proto"].get<uint8_t>(), sp, dp, seed), v["communityid"]) << v.dump();
  }
}

TEST(CommunityId, SpecBaselineSeed0) { check_baseline("baseline_deflt.json", 0); }
TEST(CommunityId, SpecBaselineSeed1) { check_baseline("baseline_seed1.json", 1); }

// The spec README's table: TCP 1.2.3.4:1122 -> 5.6.7.8:3344, both directions.
TEST(CommunityId, ReadmeExample) {
  EXPECT_EQ(community_id(parse("1.2.3.4"), parse("5.6.7.8"), 6, 1122, 3344), "1:wCb3OG7yAFWelaUydu0D+125CLM=");
  EXPECT_EQ(community_id(parse("5.6.7.8"), parse("1.2.3.4"), 6, 3344, 1122), "1:wCb3OG7yAFWelaUydu0D+125CLM=");
}

} // namespace
