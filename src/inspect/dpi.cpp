#include "inspect/dpi.h"

#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

extern "C" {
#include <ndpi/ndpi_api.h>
}

namespace bpftap::inspect {

namespace {
// ndpiReader's defaults (max_num_tcp_dissected_pkts / max_num_udp_dissected_pkts).
constexpr uint32_t kMaxTcpPackets = 80;
constexpr uint32_t kMaxUdpPackets = 24;
}

DpiEngine::DpiEngine() {
  mod_ = ndpi_init_detection_module(ndpi_no_prefs);
  if (!mod_) throw std::runtime_error("nDPI: cannot initialise the detection module");
  NDPI_PROTOCOL_BITMASK all;
  NDPI_BITMASK_SET_ALL(all);
  ndpi_set_protocol_detection_bitmask2(mod_, &all);
  ndpi_finalize_initialization(mod_);
}

DpiEngine::~DpiEngine() { ndpi_exit_detection_module(mod_); }

DpiFlow::DpiFlow(DpiEngine &engine) : engine_(engine) {
  flow_ = static_cast<ndpi_flow_struct *>(ndpi_flow_malloc(SIZEOF_FLOW_STRUCT));
  if (!flow_) throw std::bad_alloc();
  std::memset(flow_, 0, SIZEOF_FLOW_STRUCT);
}

DpiFlow::~DpiFlow() {
  if (flow_) ndpi_flow_free(flow_);
}

void DpiFlow::process(std::span<const uint8_t> l3, uint64_t ts_ms, uint8_t proto) {
  if (done_ || !flow_) return;
  packets_++;
  auto len = static_cast<unsigned short>(std::min<size_t>(l3.size(), 0xffff));
  ndpi_protocol p = ndpi_detection_process_packet(engine_.module(), flow_, l3.data(), len, ts_ms);
  bool enough = (proto == IPPROTO_UDP && packets_ > kMaxUdpPackets) || (proto == IPPROTO_TCP && packets_ > kMaxTcpPackets);
  if (!enough && p.app_protocol == NDPI_PROTOCOL_UNKNOWN) return;
  if (!enough && ndpi_extra_dissection_possible(engine_.module(), flow_)) return;
  if (p.app_protocol == NDPI_PROTOCOL_UNKNOWN) {
    uint8_t guessed = 0;
    p = ndpi_detection_giveup(engine_.module(), flow_, 1, &guessed);
    guessed_ = guessed != 0;
  }
  master_ = p.master_protocol;
  app_ = p.app_protocol;
  category_ = p.category;
  collect();
}

void DpiFlow::finish() {
  if (done_ || !flow_) return;
  uint8_t guessed = 0;
  ndpi_protocol p = ndpi_detection_giveup(engine_.module(), flow_, 1, &guessed);
  guessed_ = guessed != 0;
  master_ = p.master_protocol;
  app_ = p.app_protocol;
  category_ = p.category;
  collect();
}

namespace {
std::string cstr(const char *s, size_t max = 1024) { return s ? std::string(s, strnlen(s, max)) : std::string(); }
} // namespace

bool DpiFlow::is_http() const { return master_ == NDPI_PROTOCOL_HTTP || app_ == NDPI_PROTOCOL_HTTP; }
bool DpiFlow::is_tls() const { return master_ == NDPI_PROTOCOL_TLS || app_ == NDPI_PROTOCOL_TLS; }

// Detection is over: keep what we report and free nDPI's state (as ndpiReader does).
void DpiFlow::collect() {
  done_ = true;
  risks_ = flow_->risk;
  server_name_ = cstr(flow_->host_server_name, sizeof(flow_->host_server_name));
  if (is_http()) {
    // nDPI keeps "host/path" in url (as ndpiReader prints it); the request line's path is
    // what follows the Host header's value.
    std::string url = cstr(flow_->http.url, 255);
    path_ = url.starts_with(server_name_) ? url.substr(server_name_.size()) : url;
    // "Host: example.org:8080": Suricata logs the port as http_port and the URI alone as url.
    if (path_.starts_with(":")) {
      size_t slash = path_.find('/');
      port_ = static_cast<uint16_t>(std::strtoul(path_.c_str() + 1, nullptr, 10));
      path_ = slash == std::string::npos ? "/" : path_.substr(slash);
    }
    if (flow_->http.method != NDPI_HTTP_METHOD_UNKNOWN) method_ = ndpi_http_method2str(flow_->http.method);
    user_agent_ = cstr(flow_->http.user_agent);
    content_type_ = cstr(flow_->http.content_type);
    status_ = flow_->http.response_status_code;
  }
  if (is_http() && flow_->http.url) {
    url_.assign(flow_->http.url, strnlen(flow_->http.url, 255));
    std::string copy = url_;
    ndpi_risk_enum r = ndpi_validate_url(copy.data());
    if (r != NDPI_NO_RISK) risks_ |= 1ull << r;
  }
  ndpi_flow_free(flow_);
  flow_ = nullptr;
}

std::string DpiFlow::app_name() const {
  char buf[64] = {};
  ndpi_protocol p{master_, app_, static_cast<ndpi_protocol_category_t>(category_)};
  ndpi_protocol2name(engine_.module(), p, buf, sizeof(buf));
  return buf;
}

std::string DpiFlow::protocol() const {
  uint16_t id = master_ != NDPI_PROTOCOL_UNKNOWN ? master_ : app_;
  if (id == NDPI_PROTOCOL_UNKNOWN) return "";
  std::string s = ndpi_get_proto_name(engine_.module(), id);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string DpiFlow::category() const {
  return ndpi_category_get_name(engine_.module(), static_cast<ndpi_protocol_category_t>(category_));
}

std::string DpiFlow::url() const { return url_; }

std::string risk_name(int risk) { return ndpi_risk2str(static_cast<ndpi_risk_enum>(risk)); }

std::vector<std::string> risk_names(uint64_t risks) {
  std::vector<std::string> out;
  for (int i = 1; i < NDPI_MAX_RISK; i++)
    if (risks & (1ull << i)) out.push_back(risk_name(i));
  return out;
}

int risk_severity(int risk) {
  ndpi_risk_info *info = ndpi_risk2severity(static_cast<ndpi_risk_enum>(risk));
  if (!info) return 1;
  return static_cast<int>(info->severity) + 1;
}

} // namespace bpftap::inspect
