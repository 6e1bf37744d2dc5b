#include <unistd.h>

#include <cstdio>

#include <gtest/gtest.h>

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (geteuid() != 0) {
    std::fprintf(stderr, "SKIP: BPF tests need root (BPF_PROG_LOAD, BPF_PROG_TEST_RUN)\n");
    return 77;
  }
  return RUN_ALL_TESTS();
}
