#include "corpus.h"

#include <pcap/pcap.h>

#include <algorithm>
#include <filesystem>
#include <map>

namespace bpftap::test {

const std::vector<Frame> &ethernet_corpus(const std::string &dir) {
  static std::map<std::string, std::vector<Frame>> cache;
  if (auto it = cache.find(dir); it != cache.end()) return it->second;
  std::vector<Frame> &out = cache[dir];
  std::vector<std::filesystem::path> files;
  for (const auto &e : std::filesystem::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto &f : files) {
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(f.c_str(), err);
    if (!p) continue;
    if (pcap_datalink(p) == DLT_EN10MB) {
      pcap_pkthdr *h;
      const u_char *data;
      size_t i = 0;
      while (pcap_next_ex(p, &h, &data) == 1)
        out.push_back({f.filename(), i++, std::vector<uint8_t>(data, data + h->caplen)});
    }
    pcap_close(p);
  }
  return out;
}

} // namespace bpftap::test
