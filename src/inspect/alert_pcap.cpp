#include "inspect/alert_pcap.h"

#include <filesystem>

#include <fmt/format.h>

#include "sinks/pcapng_writer.h"
#include "inspect/flow.h"

namespace bpftap::inspect {

struct FlowEvidence {
  struct Held {
    uint64_t ts_ns;
    uint32_t iface, wire_len;
    Direction dir;
    std::vector<uint8_t> data;
  };
  std::vector<Held> held;
  uint64_t bytes = 0;  // frame bytes kept for this flow (held or written)
  std::unique_ptr<PcapngWriter> writer;
  bool failed = false;
};

void FlowEvidenceDeleter::operator()(FlowEvidence *e) const { delete e; }

namespace {

// "1:ab+c/d=" -> "1_ab-c_d": a file name (base64url, no padding).
std::string file_safe(const std::string &cid) {
  std::string s;
  for (char c : cid) {
    if (c == '+') s += '-';
    else if (c == '/' || c == ':') s += '_';
    else if (c != '=') s += c;
  }
  return s;
}

} // namespace

Result<std::unique_ptr<AlertPcaps>> AlertPcaps::open(AlertPcapOptions o) {
  std::error_code ec;
  std::filesystem::create_directories(o.dir, ec);
  if (ec || !std::filesystem::is_directory(o.dir))
    return bad_input(fmt::format("--alert-pcap {}: {}", o.dir, ec ? ec.message() : "not a directory"));
  return std::unique_ptr<AlertPcaps>(new AlertPcaps(std::move(o)));
}

void AlertPcaps::packet(Flow &f, const Packet &pkt, const std::vector<InterfaceInfo> &ifaces) {
  if (!f.evidence) f.evidence.reset(new FlowEvidence);
  FlowEvidence &e = *f.evidence;
  uint64_t len = pkt.data.size();
  if (e.failed || e.bytes + len > opts_.flow_bytes) return;  // the per-flow limit: the file ends here
  if (e.writer) {
    Packet p = pkt;
    p.stable = false;  // the writer copies: the bytes need not outlive this call
    if (pkt.iface >= ifaces.size() || !e.writer->write(p)) {
      st_.write_errors++;
      return;
    }
    e.bytes += len;
    st_.packets_written++;
    (void)e.writer->flush();  // alerted flows are few: keep their files readable while they last
    return;
  }
  // Not alerted (yet): hold a copy, within the global budget.
  if (st_.bytes_held + len > opts_.budget_bytes) {
    st_.packets_over_budget++;
    return;
  }
  e.held.push_back({pkt.ts_ns, pkt.iface, pkt.wire_len, pkt.dir, {pkt.data.begin(), pkt.data.end()}});
  e.bytes += len;
  st_.bytes_held += len;
}

void AlertPcaps::alerted(Flow &f, const std::vector<InterfaceInfo> &ifaces) {
  if (!f.evidence) f.evidence.reset(new FlowEvidence);
  FlowEvidence &e = *f.evidence;
  if (e.writer || e.failed) return;
  std::string path = fmt::format("{}/{}_{}.pcapng", opts_.dir, f.id, file_safe(f.community_id));
  auto w = PcapngWriter::open(path, ifaces);
  if (!w) {
    e.failed = true;
    st_.write_errors++;
    return;
  }
  e.writer = std::move(*w);
  st_.files++;
  for (const auto &h : e.held) {
    Packet p;
    p.ts_ns = h.ts_ns;
    p.iface = h.iface;
    p.wire_len = h.wire_len;
    p.dir = h.dir;
    p.data = h.data;
    if (h.iface < ifaces.size() && e.writer->write(p)) st_.packets_written++;
    else st_.write_errors++;
  }
  (void)e.writer->flush();
  for (const auto &h : e.held) st_.bytes_held -= h.data.size();
  e.held.clear();
  e.held.shrink_to_fit();
}

void AlertPcaps::ended(Flow &f) {
  if (!f.evidence) return;
  FlowEvidence &e = *f.evidence;
  for (const auto &h : e.held) st_.bytes_held -= h.data.size();
  if (e.writer && !e.writer->close()) st_.write_errors++;
  f.evidence.reset();
}

} // namespace bpftap::inspect
