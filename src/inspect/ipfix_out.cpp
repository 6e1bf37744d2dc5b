#include "inspect/ipfix_out.h"

#include <netinet/in.h>

#include <cstring>

#include <fixbuf/public.h>
#include <fmt/format.h>

#include "inspect/flow.h"

namespace bpftap::inspect {
namespace {

// The records as fixbuf reads them: its internal templates map these structs field by field
// (largest first, explicit padding, as fixbuf's documentation lays them out).
struct Rec4 {
  uint64_t start_ms, end_ms, octets, packets;
  uint32_t src, dst;  // host byte order: fixbuf converts
  uint16_t sport, dport;
  uint8_t proto;
  uint8_t pad[3];
};
struct Rec6 {
  uint64_t start_ms, end_ms, octets, packets;
  uint8_t src[16], dst[16];
  uint16_t sport, dport;
  uint8_t proto;
  uint8_t pad[3];
};

fbInfoElementSpec_t kSpec4[] = {
    {const_cast<char *>("flowStartMilliseconds"), 8, 0},  {const_cast<char *>("flowEndMilliseconds"), 8, 0},
    {const_cast<char *>("octetDeltaCount"), 8, 0},        {const_cast<char *>("packetDeltaCount"), 8, 0},
    {const_cast<char *>("sourceIPv4Address"), 4, 0},      {const_cast<char *>("destinationIPv4Address"), 4, 0},
    {const_cast<char *>("sourceTransportPort"), 2, 0},    {const_cast<char *>("destinationTransportPort"), 2, 0},
    {const_cast<char *>("protocolIdentifier"), 1, 0},     {const_cast<char *>("paddingOctets"), 3, 0},
    FB_IESPEC_NULL};
fbInfoElementSpec_t kSpec6[] = {
    {const_cast<char *>("flowStartMilliseconds"), 8, 0},  {const_cast<char *>("flowEndMilliseconds"), 8, 0},
    {const_cast<char *>("octetDeltaCount"), 8, 0},        {const_cast<char *>("packetDeltaCount"), 8, 0},
    {const_cast<char *>("sourceIPv6Address"), 16, 0},     {const_cast<char *>("destinationIPv6Address"), 16, 0},
    {const_cast<char *>("sourceTransportPort"), 2, 0},    {const_cast<char *>("destinationTransportPort"), 2, 0},
    {const_cast<char *>("protocolIdentifier"), 1, 0},     {const_cast<char *>("paddingOctets"), 3, 0},
    FB_IESPEC_NULL};

std::string take(GError *&err) {
  std::string m = err ? err->message : "unknown error";
  if (err) g_clear_error(&err);
  return m;
}

} // namespace

struct IpfixExporter::Impl {
  fbInfoModel_t *model = nullptr;
  fBuf_t *buf = nullptr;  // owns the session and the exporter
  uint16_t tid4 = 0, tid6 = 0;
  ~Impl() {
    if (buf) fBufFree(buf);
    if (model) fbInfoModelFree(model);
  }
};

Result<std::unique_ptr<IpfixExporter>> IpfixExporter::open(const std::string &host_port) {
  size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == host_port.size())
    return bad_input(fmt::format("--ipfix {}: expected HOST:PORT", host_port));
  std::string host = host_port.substr(0, colon), port = host_port.substr(colon + 1);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::unique_ptr<IpfixExporter> x(new IpfixExporter);
  x->impl_ = std::make_unique<Impl>();
  Impl &m = *x->impl_;
  GError *err = nullptr;
  m.model = fbInfoModelAlloc();
  fbSession_t *session = fbSessionAlloc(m.model);
  for (auto [spec, tid] : {std::pair{kSpec4, &m.tid4}, std::pair{kSpec6, &m.tid6}}) {
    fbTemplate_t *t = fbTemplateAlloc(m.model);
    if (!fbTemplateAppendSpecArray(t, spec, UINT32_MAX, &err))
      return tl::unexpected(Error{0, "IPFIX template: " + take(err)});
    *tid = fbSessionAddTemplate(session, TRUE, FB_TID_AUTO, t, &err);
    if (!*tid || !fbSessionAddTemplate(session, FALSE, *tid, t, &err))
      return tl::unexpected(Error{0, "IPFIX template: " + take(err)});
  }
  fbConnSpec_t spec{};
  spec.transport = FB_UDP;
  spec.host = host.data();
  spec.svc = port.data();
  fbExporter_t *exporter = fbExporterAllocNet(&spec);
  if (!exporter) return bad_input(fmt::format("--ipfix {}: cannot export there", host_port));
  m.buf = fBufAllocForExport(session, exporter);
  if (!fbSessionExportTemplates(session, &err) || !fBufEmit(m.buf, &err))
    return bad_input(fmt::format("--ipfix {}: {}", host_port, take(err)));
  return x;
}

IpfixExporter::~IpfixExporter() {
  if (impl_ && impl_->buf) flush();
}

void IpfixExporter::flow(const Flow &f) {
  Impl &m = *impl_;
  auto one = [&](const Endpoint &s, const Endpoint &d, uint64_t pkts, uint64_t bytes) {
    if (!pkts) return;
    GError *err = nullptr;
    bool v6 = s.ip.family == 6;
    bool ports = f.proto == IPPROTO_TCP || f.proto == IPPROTO_UDP || f.proto == IPPROTO_SCTP;
    bool ok = fBufSetInternalTemplate(m.buf, v6 ? m.tid6 : m.tid4, &err) &&
              fBufSetExportTemplate(m.buf, v6 ? m.tid6 : m.tid4, &err);
    if (ok && v6) {
      Rec6 r{f.first_ns / 1000000, f.last_ns / 1000000, bytes, pkts, {}, {}, 0, 0, f.proto, {}};
      std::memcpy(r.src, s.ip.bytes.data(), 16);
      std::memcpy(r.dst, d.ip.bytes.data(), 16);
      if (ports) r.sport = s.port, r.dport = d.port;
      ok = fBufAppend(m.buf, reinterpret_cast<uint8_t *>(&r), sizeof(r), &err);
    } else if (ok) {
      auto v4 = [](const IpAddr &a) {
        return uint32_t{a.bytes[0]} << 24 | uint32_t{a.bytes[1]} << 16 | uint32_t{a.bytes[2]} << 8 | a.bytes[3];
      };
      Rec4 r{f.first_ns / 1000000, f.last_ns / 1000000, bytes, pkts, v4(s.ip), v4(d.ip), 0, 0, f.proto, {}};
      if (ports) r.sport = s.port, r.dport = d.port;
      ok = fBufAppend(m.buf, reinterpret_cast<uint8_t *>(&r), sizeof(r), &err);
    }
    if (ok) records_++;
    else errors_++, g_clear_error(&err);
  };
  one(f.orig, f.resp, f.orig_pkts, f.orig_ip_bytes);
  one(f.resp, f.orig, f.resp_pkts, f.resp_ip_bytes);
}

void IpfixExporter::flush() {
  GError *err = nullptr;
  if (!fBufEmit(impl_->buf, &err)) errors_++, g_clear_error(&err);
}

} // namespace bpftap::inspect
