#include "inspect/names.h"

#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <string_view>
#include <utility>

namespace bpftap::inspect {
namespace {

using Pair = std::pair<std::string_view, std::string_view>;

std::string lookup(const Pair *begin, const Pair *end, const std::string &key) {
  auto it = std::find_if(begin, end, [&](const Pair &p) { return p.first == key; });
  return it == end ? std::string() : std::string(it->second);
}

// nDPI 4.2 name -> Suricata 7.0 app-layer protocol (suricata --list-app-layer-protos).
constexpr Pair kSuricata[] = {
    {"http", "http"},         {"http_proxy", "http"},   {"http_connect", "http"}, {"tls", "tls"},
    {"smtps", "tls"},         {"imaps", "tls"},         {"pop3s", "tls"},         {"ftps", "tls"},
    {"dns", "dns"},           {"ftp_control", "ftp"},   {"ftp_data", "ftp-data"}, {"smtp", "smtp"},
    {"imap", "imap"},         {"ssh", "ssh"},           {"smbv1", "smb"},         {"smbv23", "smb"},
    {"dce_rpc", "dcerpc"},    {"dcerpc", "dcerpc"},     {"nfs", "nfs"},           {"ntp", "ntp"},
    {"tftp", "tftp"},         {"ipsec", "ike"},         {"kerberos", "krb5"},     {"quic", "quic"},
    {"dhcp", "dhcp"},         {"snmp", "snmp"},         {"sip", "sip"},           {"vnc", "rfb"},
    {"mqtt", "mqtt"},         {"postgresql", "pgsql"},  {"telnet", "telnet"},     {"rdp", "rdp"},
    {"modbus", "modbus"},     {"dnp3", "dnp3"},
};

// nDPI 4.2 name -> Zeek 6.0 service (the analyzers' names as conn.log writes them).
constexpr Pair kZeek[] = {
    {"http", "http"},       {"http_proxy", "http"}, {"http_connect", "http"}, {"tls", "ssl"},
    {"smtps", "ssl"},       {"imaps", "ssl"},       {"pop3s", "ssl"},         {"ftps", "ssl"},
    {"dns", "dns"},         {"mdns", "dns"},        {"llmnr", "dns"},         {"ftp_control", "ftp"},
    {"ftp_data", "ftp-data"}, {"smtp", "smtp"},     {"imap", "imap"},         {"pop3", "pop3"},
    {"ssh", "ssh"},         {"smbv1", "smb"},       {"smbv23", "smb"},        {"dce_rpc", "dce_rpc"},
    {"ntp", "ntp"},         {"dhcp", "dhcp"},       {"snmp", "snmp"},         {"sip", "sip"},
    {"rdp", "rdp"},         {"vnc", "rfb"},         {"mysql", "mysql"},       {"radius", "radius"},
    {"irc", "irc"},         {"socks", "socks"},     {"syslog", "syslog"},     {"modbus", "modbus"},
    {"dnp3", "dnp3"},
};

} // namespace

std::string suricata_app_proto(const std::string &n) { return lookup(std::begin(kSuricata), std::end(kSuricata), n); }

std::string zeek_service(const std::string &n, uint8_t ip_proto) {
  if (n == "kerberos") return ip_proto == IPPROTO_TCP ? "krb_tcp" : "krb";
  return lookup(std::begin(kZeek), std::end(kZeek), n);
}

bool likely_server_port(uint16_t port) {
  static constexpr std::array<uint16_t, 26> kCommon = {1080, 1194, 1433, 1521, 1723, 1812, 1813, 1900, 2049,
                                                       3128, 3306, 3389, 4789, 5060, 5061, 5353, 5355, 5432,
                                                       5900, 6379, 6667, 8080, 8443, 9200, 11211, 27017};
  return port < 1024 || std::find(kCommon.begin(), kCommon.end(), port) != kCommon.end();
}

} // namespace bpftap::inspect
