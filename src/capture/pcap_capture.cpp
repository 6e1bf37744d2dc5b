#include "capture/pcap_capture.h"

#include <poll.h>

#include <chrono>
#include <pcap/pcap.h>

#include <fmt/format.h>

namespace bpftap {

struct PcapCapture::Impl {
  PcapCaptureOptions opts;
  std::vector<pcap_t *> handles;
  std::vector<uint64_t> captured;
  uint64_t total = 0;
  PacketSink *sink = nullptr;
  Error sink_error;
  bool sink_failed = false;
  uint32_t current = 0;  // interface of the handle being dispatched
  ~Impl() {
    for (auto *h : handles) pcap_close(h);
  }
  bool count_reached() const { return opts.count && total >= opts.count; }

  static void on_packet(u_char *user, const pcap_pkthdr *h, const u_char *bytes) {
    auto *s = reinterpret_cast<Impl *>(user);
    if (s->sink_failed || s->count_reached()) return;
    Packet p;
    p.ts_ns = static_cast<uint64_t>(h->ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(h->ts.tv_usec);
    p.iface = s->current;
    p.dir = s->opts.ingress == s->opts.egress ? Direction::Unknown : s->opts.ingress ? Direction::In : Direction::Out;
    p.wire_len = h->len;
    p.data = {bytes, h->caplen};
    if (auto w = s->sink->write(p); !w) {
      s->sink_failed = true;
      s->sink_error = w.error();
      return;
    }
    s->captured[s->current]++;
    s->total++;
  }

  // Reads what every handle has ready; returns how many packets, or a sink or libpcap error.
  Result<uint64_t> drain() {
    uint64_t before = total;
    for (uint32_t i = 0; i < handles.size(); i++) {
      current = i;
      int n = pcap_dispatch(handles[i], -1, on_packet, reinterpret_cast<u_char *>(this));
      if (n == PCAP_ERROR) return fail(fmt::format("read {}: {}", opts.interfaces[i].name, pcap_geterr(handles[i])));
      if (sink_failed) return tl::unexpected(sink_error);
    }
    return total - before;
  }

  // Flushes the sink at most every 50 ms (as the eBPF path): a flush per dispatch round was a
  // write(2) per handful of packets, 10x tcpdump's CPU on bulk TCP.
  std::chrono::steady_clock::time_point last_flush{};
  Result<> flush(bool now) {
    auto t = std::chrono::steady_clock::now();
    if (!now && t - last_flush < std::chrono::milliseconds(50)) return {};
    last_flush = t;
    return sink->flush();
  }
};

PcapCapture::PcapCapture(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PcapCapture::~PcapCapture() = default;
const std::vector<InterfaceInfo> &PcapCapture::interfaces() const { return impl_->opts.interfaces; }

Result<std::unique_ptr<PcapCapture>> PcapCapture::start(const PcapCaptureOptions &opts) {
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  impl->captured.assign(opts.interfaces.size(), 0);
  for (const auto &i : opts.interfaces) {
    char err[PCAP_ERRBUF_SIZE] = {};
    pcap_t *h = pcap_create(i.name.c_str(), err);
    if (!h) return fail(fmt::format("pcap on {}: {}", i.name, err));
    impl->handles.push_back(h);
    pcap_set_snaplen(h, static_cast<int>(opts.snaplen));
    pcap_set_promisc(h, 1);  // as tcpdump
    pcap_set_timeout(h, opts.timeout_ms);
    pcap_set_buffer_size(h, static_cast<int>(opts.buffer_bytes));
    pcap_set_tstamp_precision(h, PCAP_TSTAMP_PRECISION_NANO);
    if (int rc = pcap_activate(h); rc < 0)
      return fail(fmt::format("pcap on {}: {}", i.name, pcap_geterr(h)));
    if (pcap_datalink(h) != DLT_EN10MB) return bad_input(fmt::format("{}: not an Ethernet interface", i.name));
    pcap_direction_t d = opts.ingress && opts.egress ? PCAP_D_INOUT : opts.ingress ? PCAP_D_IN : PCAP_D_OUT;
    if (pcap_setdirection(h, d) != 0) return fail(fmt::format("pcap on {}: set direction: {}", i.name, pcap_geterr(h)));
    // Always a filter, as tcpdump does (an empty expression compiles to "accept snaplen bytes"):
    // without one the kernel copies whole packets into the ring, 64 KB per GSO frame, so a
    // 256 KB TPACKET_V3 block fills after four of them and every block is a wakeup.
    {
      bpf_program prog{};
      if (pcap_compile(h, &prog, opts.filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
        return bad_input(fmt::format("bad filter expression '{}': {}", opts.filter, pcap_geterr(h)));
      int rc = pcap_setfilter(h, &prog);
      pcap_freecode(&prog);
      if (rc != 0) return fail(fmt::format("pcap on {}: set filter: {}", i.name, pcap_geterr(h)));
    }
    if (pcap_setnonblock(h, 1, err) != 0) return fail(fmt::format("pcap on {}: {}", i.name, err));
  }
  return std::unique_ptr<PcapCapture>(new PcapCapture(std::move(impl)));
}

Result<> PcapCapture::run(PacketSink &sink, const std::atomic<bool> &stop, const std::function<bool()> &done) {
  Impl &s = *impl_;
  s.sink = &sink;
  std::vector<pollfd> fds;
  for (auto *h : s.handles) fds.push_back({pcap_get_selectable_fd(h), POLLIN, 0});
  while (!stop.load() && !s.count_reached() && !(done && done())) {
    auto got = s.drain();
    if (!got) return tl::unexpected(got.error());
    if (*got == 0) {  // poll only when nothing was ready: while busy, blocks are read back to back
      if (auto r = s.flush(false); !r) return r;
      int n = poll(fds.data(), fds.size(), 10);
      if (n < 0 && errno != EINTR) return fail_errno("poll the pcap handles", errno);
    } else if (auto r = s.flush(false); !r) {
      return r;
    }
  }
  return s.flush(true);
}

Result<std::vector<InterfaceStats>> PcapCapture::finish(PacketSink &sink) {
  impl_->sink = &sink;
  if (!impl_->count_reached())
    if (auto r = impl_->drain(); !r) return tl::unexpected(r.error());
  if (auto r = impl_->flush(true); !r) return tl::unexpected(r.error());
  return stats();
}

Result<std::vector<InterfaceStats>> PcapCapture::stats() const {
  std::vector<InterfaceStats> out;
  for (uint32_t i = 0; i < impl_->handles.size(); i++) {
    pcap_stat ps{};
    if (pcap_stats(impl_->handles[i], &ps) != 0)
      return fail(fmt::format("pcap stats of {}: {}", impl_->opts.interfaces[i].name, pcap_geterr(impl_->handles[i])));
    out.push_back({.name = impl_->opts.interfaces[i].name,
                   .ifindex = impl_->opts.interfaces[i].ifindex,
                   .captured = impl_->captured[i],
                   .matched = ps.ps_recv,
                   .dropped = ps.ps_drop});
  }
  return out;
}

} // namespace bpftap
