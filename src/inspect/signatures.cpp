#include "inspect/signatures.h"

#include <array>
#include <string>
#include <unordered_map>

namespace bpftap::inspect {
namespace {

constexpr const char *kWebAttack = "Web Application Attack";
constexpr const char *kPrivacy = "Potential Corporate Privacy Violation";
constexpr const char *kBad = "Potentially Bad Traffic";
constexpr const char *kProtocol = "Generic Protocol Command Decode";
constexpr const char *kNotSuspicious = "Not Suspicious Traffic";

// SID = 8000000 + the risk's number in nDPI 4.2 when the table was written; frozen since.
// Add new risks at the end with new SIDs; never reuse one.
struct RiskRow {
  int sid;
  const char *name;
  const char *category;
};
constexpr RiskRow kRisks[] = {
    {8000001, "XSS Attack", kWebAttack},
    {8000002, "SQL Injection", kWebAttack},
    {8000003, "RCE Injection", kWebAttack},
    {8000004, "Binary Application Transfer", kBad},
    {8000005, "Known Protocol on Non Standard Port", kProtocol},
    {8000006, "Self-signed Certificate", kProtocol},
    {8000007, "Obsolete TLS Version (1.1 or older)", kProtocol},
    {8000008, "Weak TLS Cipher", kProtocol},
    {8000009, "TLS Expired Certificate", kProtocol},
    {8000010, "TLS Certificate Mismatch", kProtocol},
    {8000011, "HTTP Suspicious User-Agent", kBad},
    {8000012, "HTTP Numeric IP Address", kNotSuspicious},
    {8000013, "HTTP Suspicious URL", kWebAttack},
    {8000014, "HTTP Suspicious Header", kBad},
    {8000015, "TLS (probably) Not Carrying HTTPS", kProtocol},
    {8000016, "Suspicious DGA Domain name", kBad},
    {8000017, "Malformed Packet", kProtocol},
    {8000018, "SSH Obsolete Client Version/Cipher", kProtocol},
    {8000019, "SSH Obsolete Server Version/Cipher", kProtocol},
    {8000020, "SMB Insecure Version", kProtocol},
    {8000021, "TLS Suspicious ESNI Usage", kBad},
    {8000022, "Unsafe Protocol", kPrivacy},
    {8000023, "Suspicious DNS Traffic", kBad},
    {8000024, "Missing SNI TLS Extension", kProtocol},
    {8000025, "HTTP Suspicious Content", kBad},
    {8000026, "Risky ASN", kBad},
    {8000027, "Risky Domain Name", kBad},
    {8000028, "Possibly Malicious JA3 Fingerprint", kBad},
    {8000029, "Possibly Malicious SSL Cert. SHA1 Fingerprint", kBad},
    {8000030, "Desktop/File Sharing Session", kPrivacy},
    {8000031, "Uncommon TLS ALPN", kProtocol},
    {8000032, "TLS Certificate Validity Too Long", kProtocol},
    {8000033, "TLS Suspicious Extension", kBad},
    {8000034, "TLS Fatal Alert", kProtocol},
    {8000035, "Suspicious Entropy", kBad},
    {8000036, "Clear-Text Credentials", kPrivacy},
    {8000037, "DNS Packet Larger Than 512 bytes", kProtocol},
    {8000038, "Fragmented DNS Message", kProtocol},
    {8000039, "Text Contains Non-Printable Characters", kProtocol},
    {8000040, "Possible Exploit Detected", kWebAttack},
    {8000041, "TLS Certificate About To Expire", kProtocol},
};

int eve_severity(int ndpi_severity) { return ndpi_severity >= 3 ? 1 : ndpi_severity == 2 ? 2 : 3; }

// Owns the "nDPI: <name>" texts, built once (thread-safe static initialisation) and only read
// after, so sessions on several threads can look up at once.
struct RiskTable {
  std::unordered_map<std::string, std::string> texts;
  std::unordered_map<std::string, const RiskRow *> rows;
  RiskTable() {
    for (const auto &r : kRisks) {
      rows[r.name] = &r;
      texts[r.name] = std::string("nDPI: ") + r.name;
    }
  }
};

} // namespace

const Signature &signature(Detection d) {
  static const std::array<Signature, 9> table = {{
      {9000001, "Port scan (vertical)", "Attempted Information Leak", 2},
      {9000005, "Port scan (horizontal)", "Attempted Information Leak", 2},
      {9000002, "SYN flood", "Attempted Denial of Service", 1},
      {9000003, "ICMP flood", "Attempted Denial of Service", 1},
      {9000004, "SSH password guessing", "Attempted User Privilege Gain", 1},
      {9000006, "FTP password guessing", "Attempted User Privilege Gain", 1},
      {9000007, "Telnet password guessing", "Attempted User Privilege Gain", 1},
      {9000008, "TLS Heartbleed attack", "Attempted Information Leak", 1},
      {9000009, "TLS Heartbleed attack success", "Information Leak", 1},
  }};
  return table[static_cast<size_t>(d)];
}

Signature ndpi_signature(std::string_view risk_name, int ndpi_severity) {
  static const RiskTable t;
  std::string name(risk_name);
  auto row = t.rows.find(name);
  if (row == t.rows.end()) return Signature{8000999, "nDPI: Unlisted risk", kBad, 2};
  return Signature{row->second->sid, t.texts.at(name), row->second->category, eve_severity(ndpi_severity)};
}

} // namespace bpftap::inspect
