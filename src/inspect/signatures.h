// Every alert bpftap raises, with its SID, in one table: the SIDs never change (not even when
// nDPI renumbers its risks: nDPI's are looked up by the risk's name), and the signature texts are
// constants, so that "top signatures" dashboards count one row per kind of alert. The figures
// of an alert (ports tried, rates) go to alert.metadata.
#pragma once

#include <string_view>

namespace bpftap::inspect {

struct Signature {
  int sid;
  std::string_view text;      // alert.signature
  std::string_view category;  // Suricata's classification text (classification.config)
  int severity;               // 1 high, 2 medium, 3 low
};

// The behavioural detectors' signatures (SIDs 9000001..).
enum class Detection {
  ScanVertical, ScanHorizontal, SynFlood, IcmpFlood, GuessSsh, GuessFtp, GuessTelnet,
  HeartbleedAttack, HeartbleedSuccess,  // Zeek's Heartbleed::SSL_Heartbeat_Attack / _Attack_Success
};
const Signature &signature(Detection d);

// nDPI's risk by its name (ndpi_risk2str); a risk this table does not list yet gets
// 8000999 "nDPI: Unlisted risk" (its name then goes to alert.metadata.ndpi_risk).
Signature ndpi_signature(std::string_view risk_name, int ndpi_severity);

} // namespace bpftap::inspect
