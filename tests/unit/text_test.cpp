#include "util/text.h"

#include <cstring>

#include "util/error.h"

#include <gtest/gtest.h>

using namespace bpftap;

TEST(Text, Utf8) {
  EXPECT_TRUE(valid_utf8("tap-vm1"));
  EXPECT_TRUE(valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("tap-\xff"));
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\xe2\x82"));          // cut short
  EXPECT_TRUE(printable_utf8("udp port 53"));
  EXPECT_FALSE(printable_utf8("a\nb"));
  EXPECT_FALSE(printable_utf8(std::string("a\0b", 3)));
  EXPECT_FALSE(printable_utf8("\x7f"));
  EXPECT_FALSE(printable_utf8("\xc2\x85"));  // NEL (C1)
}

TEST(Text, EscapedBytesAreValidDistinctAndReadable) {
  EXPECT_EQ(escape_bytes("tap-vm1"), "tap-vm1");
  EXPECT_EQ(escape_bytes("tap-\xff"), "tap-\\xff");
  EXPECT_EQ(escape_bytes("a\\xff"), "a\\x5cxff");  // a literal backslash cannot pass for an escape
  EXPECT_EQ(escape_bytes("a\nb"), "a\\x0ab");
  EXPECT_EQ(escape_bytes("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_TRUE(valid_utf8(escape_bytes("\xff\xfe\xc3")));
}

TEST(Text, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("Bearer abc", "Bearer abc"));
  EXPECT_FALSE(constant_time_equal("Bearer abc", "Bearer abd"));
  EXPECT_FALSE(constant_time_equal("Bearer abc", "Bearer ab"));
  EXPECT_FALSE(constant_time_equal("", "x"));
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_FALSE(constant_time_equal(std::string("a\0", 2), "a"));
}

TEST(Error, FailInSaysWhatWasBeingDoneAndKeepsTheRest) {
  Result<int> r = fail_in(Error{ENOSPC, "write /x/y", true}, "session east-west");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), std::string("session east-west: write /x/y: ") + std::strerror(ENOSPC));
  EXPECT_EQ(r.error().code, ENOSPC);
  EXPECT_TRUE(r.error().bad_input);
}

// An expression given as several arguments, as capture, inspect and mirror join it.
TEST(Text, JoinWords) {
  EXPECT_EQ(join_words({}), "");
  EXPECT_EQ(join_words({"tcp"}), "tcp");
  EXPECT_EQ(join_words({"tcp", "port", "80"}), "tcp port 80");
}
