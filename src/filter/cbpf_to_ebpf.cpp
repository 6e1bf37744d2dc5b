#include "filter/cbpf_to_ebpf.h"

#include <cstddef>
#include <limits>
#include <optional>
#include <string>

#include <fmt/format.h>

namespace bpftap {
namespace {

// Register use inside the translated function.
constexpr uint8_t kCtx = BPF_REG_6;  // struct __sk_buff *
constexpr uint8_t kA = BPF_REG_7;    // cBPF accumulator
constexpr uint8_t kX = BPF_REG_8;    // cBPF index register
constexpr uint8_t kVtag = BPF_REG_9; // VLAN tag from metadata, 0 = none

// Stack layout (offsets from the frame pointer r10).
constexpr int16_t kMemBase = -64;   // cBPF scratch memory M[0..15], 4 bytes each
constexpr int16_t kLoadBuf = -72;   // bytes fetched by bpf_skb_load_bytes
constexpr int16_t kSlowAcc = -80;   // tag-straddling loads: value being assembled
constexpr int16_t kSlowOff = -88;   // tag-straddling loads: virtual offset
constexpr int16_t kPkttype = -96;   // the third argument, when the program asks for it
constexpr uint32_t kTagStart = 12;  // where libpcap puts the tag back (after the MAC addresses)
constexpr uint32_t kTagLen = 4;

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}
bpf_insn alu32_imm(uint8_t op, uint8_t dst, int32_t imm) { return insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm); }
bpf_insn alu32_reg(uint8_t op, uint8_t dst, uint8_t src) { return insn(BPF_ALU | op | BPF_X, dst, src, 0, 0); }
bpf_insn alu64_imm(uint8_t op, uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm); }
bpf_insn alu64_reg(uint8_t op, uint8_t dst, uint8_t src) { return insn(BPF_ALU64 | op | BPF_X, dst, src, 0, 0); }
bpf_insn ldx(uint8_t size, uint8_t dst, uint8_t src, int16_t off) { return insn(BPF_LDX | size | BPF_MEM, dst, src, off, 0); }
bpf_insn stx(uint8_t size, uint8_t dst, uint8_t src, int16_t off) { return insn(BPF_STX | size | BPF_MEM, dst, src, off, 0); }
bpf_insn st_imm(uint8_t size, uint8_t dst, int16_t off, int32_t imm) { return insn(BPF_ST | size | BPF_MEM, dst, 0, off, imm); }
bpf_insn to_be(uint8_t dst, int32_t bits) { return insn(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, bits); }
bpf_insn call(int32_t helper) { return insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper); }
bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

// Emits instructions with symbolic jump targets, resolved once every label is placed.
class Emitter {
public:
  using Label = size_t;

  Label new_label() {
    labels_.push_back(kUnbound);
    return labels_.size() - 1;
  }
  void bind(Label l) { labels_[l] = code_.size(); }
  void emit(bpf_insn i) { code_.push_back(i); }

  // Conditional or unconditional (op == BPF_JA) jump. cls is BPF_JMP (64-bit) or BPF_JMP32.
  void jump_imm(uint8_t cls, uint8_t op, uint8_t reg, int32_t imm, Label target) {
    fixups_.push_back({code_.size(), target});
    emit(insn(cls | op | BPF_K, reg, 0, 0, imm));
  }
  void jump_reg(uint8_t cls, uint8_t op, uint8_t dst, uint8_t src, Label target) {
    fixups_.push_back({code_.size(), target});
    emit(insn(cls | op | BPF_X, dst, src, 0, 0));
  }
  void jump(Label target) { jump_imm(BPF_JMP, BPF_JA, 0, 0, target); }
  bool referenced(Label l) const {
    for (const auto &f : fixups_)
      if (f.label == l) return true;
    return false;
  }

  Result<std::vector<bpf_insn>> finish() {
    for (const auto &f : fixups_) {
      if (labels_[f.label] == kUnbound) return fail("cBPF translation: jump to an unplaced label");
      auto delta = static_cast<long>(labels_[f.label]) - static_cast<long>(f.at) - 1;
      if (delta < std::numeric_limits<int16_t>::min() || delta > std::numeric_limits<int16_t>::max())
        return fail("filter too large: a jump spans more than 32767 eBPF instructions");
      code_[f.at].off = static_cast<int16_t>(delta);
    }
    return std::move(code_);
  }

private:
  static constexpr size_t kUnbound = std::numeric_limits<size_t>::max();
  struct Fixup {
    size_t at;
    Label label;
  };
  std::vector<bpf_insn> code_;
  std::vector<size_t> labels_;
  std::vector<Fixup> fixups_;
};

uint8_t bpf_size(uint32_t bytes) { return bytes == 4 ? BPF_W : bytes == 2 ? BPF_H : BPF_B; }

class Translator {
public:
  Translator(std::span<const sock_filter> prog, TranslateOptions opts) : prog_(prog), opts_(opts) {}

  Result<std::vector<bpf_insn>> run() {
    if (prog_.empty()) return fail("empty cBPF program");
    reject_ = e_.new_label();
    for (size_t i = 0; i < prog_.size(); i++) at_.push_back(e_.new_label());

    auto reachable = reachable_insns();
    if (!reachable) return tl::unexpected(reachable.error());
    prologue();
    for (size_t i = 0; i < prog_.size(); i++) {
      if (!(*reachable)[i]) continue;  // the verifier refuses unreachable code
      e_.bind(at_[i]);
      if (auto r = translate(i, prog_[i]); !r) return tl::unexpected(r.error());
    }
    if (e_.referenced(reject_)) {
      e_.bind(reject_);
      e_.emit(alu32_imm(BPF_MOV, BPF_REG_0, 0));
      e_.emit(exit_insn());
    }
    return e_.finish();
  }

private:
  // Marks the instructions reachable from the first one. Jumps must go forward: the only
  // backward jumps libpcap emits are the loop of `ip6 protochain`, which the verifier cannot
  // bound, so such programs are refused with a message that says so.
  Result<std::vector<bool>> reachable_insns() const {
    std::vector<bool> seen(prog_.size(), false);
    seen[0] = true;
    for (size_t i = 0; i < prog_.size(); i++) {
      if (!seen[i]) continue;
      const auto &f = prog_[i];
      uint16_t cls = BPF_CLASS(f.code);
      if (cls == BPF_RET) continue;
      std::vector<long> next;
      if (cls == BPF_JMP && BPF_OP(f.code) == BPF_JA)
        next = {static_cast<int32_t>(f.k)};
      else if (cls == BPF_JMP)
        next = {f.jt, f.jf};
      else
        next = {0};
      for (long rel : next) {
        if (rel < 0)
          return fail("the filter needs a loop (as 'protochain' does), which cannot run in the kernel");
        if (auto r = check_target(i, rel); !r) return tl::unexpected(r.error());
        seen[i + 1 + static_cast<size_t>(rel)] = true;
      }
    }
    return seen;
  }

  void prologue() {
    e_.emit(alu64_reg(BPF_MOV, kCtx, BPF_REG_1));
    e_.emit(alu32_reg(BPF_MOV, kVtag, BPF_REG_2));
    e_.emit(alu32_imm(BPF_MOV, kA, 0));
    e_.emit(alu32_imm(BPF_MOV, kX, 0));
    e_.emit(stx(BPF_W, BPF_REG_10, BPF_REG_3, kPkttype));
    // The verifier refuses reads of uninitialised stack: zero the scratch words in use.
    bool used[BPF_MEMWORDS] = {};
    for (const auto &f : prog_) {
      uint16_t cls = BPF_CLASS(f.code);
      bool mem = cls == BPF_ST || cls == BPF_STX ||
                 ((cls == BPF_LD || cls == BPF_LDX) && BPF_MODE(f.code) == BPF_MEM);
      if (mem && f.k < BPF_MEMWORDS) used[f.k] = true;
    }
    for (uint32_t k = 0; k < BPF_MEMWORDS; k++)
      if (used[k]) e_.emit(st_imm(BPF_W, BPF_REG_10, mem_off(k), 0));
  }

  static int16_t mem_off(uint32_t k) { return static_cast<int16_t>(kMemBase + 4 * static_cast<int>(k)); }

  Emitter::Label target(size_t from, long rel) const { return at_[static_cast<size_t>(static_cast<long>(from) + 1 + rel)]; }

  Result<> check_target(size_t from, long rel) const {
    long t = static_cast<long>(from) + 1 + rel;
    if (t < 0 || t >= static_cast<long>(prog_.size()))
      return fail(fmt::format("cBPF instruction {}: jump out of the program", from));
    return {};
  }

  Result<> translate(size_t i, const sock_filter &f) {
    switch (BPF_CLASS(f.code)) {
    case BPF_LD:
    case BPF_LDX:
      return load(i, f);
    case BPF_ST:
    case BPF_STX:
      if (f.k >= BPF_MEMWORDS) return bad(i, "scratch memory index out of range");
      e_.emit(stx(BPF_W, BPF_REG_10, BPF_CLASS(f.code) == BPF_ST ? kA : kX, mem_off(f.k)));
      return {};
    case BPF_ALU:
      return alu(i, f);
    case BPF_JMP:
      return jmp(i, f);
    case BPF_RET:
      if (BPF_RVAL(f.code) == BPF_K)
        e_.emit(alu32_imm(BPF_MOV, BPF_REG_0, static_cast<int32_t>(f.k)));
      else if (BPF_RVAL(f.code) == BPF_A)
        e_.emit(alu32_reg(BPF_MOV, BPF_REG_0, kA));
      else
        return bad(i, "unsupported return");
      e_.emit(exit_insn());
      return {};
    case BPF_MISC:
      if (BPF_MISCOP(f.code) == BPF_TAX)
        e_.emit(alu32_reg(BPF_MOV, kX, kA));
      else if (BPF_MISCOP(f.code) == BPF_TXA)
        e_.emit(alu32_reg(BPF_MOV, kA, kX));
      else
        return bad(i, "unsupported misc op");
      return {};
    }
    return bad(i, "unknown instruction class");
  }

  tl::unexpected<Error> bad(size_t i, const char *why) const {
    return fail(fmt::format("cannot translate cBPF instruction {} (code {:#x}): {}", i, prog_[i].code, why));
  }

  Result<> load(size_t i, const sock_filter &f) {
    uint8_t dst = BPF_CLASS(f.code) == BPF_LD ? kA : kX;
    uint32_t size = BPF_SIZE(f.code) == BPF_W ? 4 : BPF_SIZE(f.code) == BPF_H ? 2 : 1;
    switch (BPF_MODE(f.code)) {
    case BPF_IMM:
      e_.emit(alu32_imm(BPF_MOV, dst, static_cast<int32_t>(f.k)));
      return {};
    case BPF_MEM:
      if (f.k >= BPF_MEMWORDS) return bad(i, "scratch memory index out of range");
      e_.emit(ldx(BPF_W, dst, BPF_REG_10, mem_off(f.k)));
      return {};
    case BPF_LEN: {
      e_.emit(ldx(BPF_W, dst, kCtx, offsetof(__sk_buff, len)));
      if (opts_.vlan == VlanView::Metadata) return {};
      // Inline view: the frame as saved, 4 bytes longer when the tag was in metadata.
      auto no_tag = e_.new_label();
      e_.jump_imm(BPF_JMP32, BPF_JEQ, kVtag, 0, no_tag);
      e_.emit(alu32_imm(BPF_ADD, dst, kTagLen));
      e_.bind(no_tag);
      return {};
    }
    case BPF_ABS:
      if (BPF_CLASS(f.code) != BPF_LD) break;
      if (static_cast<int32_t>(f.k) < 0) return ancillary(i, f.k);
      e_.emit(alu64_imm(BPF_MOV, BPF_REG_2, static_cast<int32_t>(f.k)));
      packet_load(size, f.k);
      e_.emit(alu32_reg(BPF_MOV, kA, BPF_REG_0));
      return {};
    case BPF_IND:
      if (BPF_CLASS(f.code) != BPF_LD) break;
      if (f.k > 0x7fffffffu) {  // no frame is 2 GiB long: libpcap's bounds check fails
        e_.jump(reject_);
        return {};
      }
      // 64-bit sum: X + k must not wrap around as it would in 32 bits.
      e_.emit(alu64_reg(BPF_MOV, BPF_REG_2, kX));
      e_.emit(alu64_imm(BPF_ADD, BPF_REG_2, static_cast<int32_t>(f.k)));
      e_.jump_imm(BPF_JMP, BPF_JGT, BPF_REG_2, 0x7fffffff, reject_);
      packet_load(size, std::nullopt);
      e_.emit(alu32_reg(BPF_MOV, kA, BPF_REG_0));
      return {};
    case BPF_MSH:  // X = 4 * (P[k] & 0xf), the IPv4 header length
      if (BPF_CLASS(f.code) != BPF_LDX) break;
      if (static_cast<int32_t>(f.k) < 0) return bad(i, "negative-offset loads are not supported");
      e_.emit(alu64_imm(BPF_MOV, BPF_REG_2, static_cast<int32_t>(f.k)));
      packet_load(1, f.k);
      e_.emit(alu32_imm(BPF_AND, BPF_REG_0, 0xf));
      e_.emit(alu32_imm(BPF_LSH, BPF_REG_0, 2));
      e_.emit(alu32_reg(BPF_MOV, kX, BPF_REG_0));
      return {};
    }
    return bad(i, "unsupported load mode");
  }

  // Linux's ancillary loads (SKF_AD_OFF + n), as the kernel's socket filter implements them.
  // The load size does not matter there, so it does not here either.
  Result<> ancillary(size_t i, uint32_t k) {
    bool metadata = opts_.vlan == VlanView::Metadata;
    switch (static_cast<int32_t>(k) - SKF_AD_OFF) {
    case SKF_AD_VLAN_TAG_PRESENT: {  // Inline view: the tag is in the frame, not in metadata
      auto done = e_.new_label();
      e_.emit(alu32_imm(BPF_MOV, kA, 0));
      if (metadata) {
        e_.jump_imm(BPF_JMP32, BPF_JEQ, kVtag, 0, done);
        e_.emit(alu32_imm(BPF_MOV, kA, 1));
      }
      e_.bind(done);
      return {};
    }
    case SKF_AD_VLAN_TAG:
      e_.emit(alu32_reg(BPF_MOV, kA, kVtag));
      e_.emit(alu32_imm(metadata ? BPF_AND : BPF_MOV, kA, metadata ? 0xffff : 0));
      return {};
    case SKF_AD_VLAN_TPID:
      e_.emit(alu32_reg(BPF_MOV, kA, kVtag));
      if (metadata)
        e_.emit(alu32_imm(BPF_RSH, kA, 16));
      else
        e_.emit(alu32_imm(BPF_MOV, kA, 0));
      return {};
    case SKF_AD_PKTTYPE:
      e_.emit(ldx(BPF_W, kA, BPF_REG_10, kPkttype));
      return {};
    case SKF_AD_PROTOCOL:
      e_.emit(ldx(BPF_W, kA, kCtx, offsetof(__sk_buff, protocol)));
      e_.emit(to_be(kA, 16));
      return {};
    case SKF_AD_IFINDEX:
      e_.emit(ldx(BPF_W, kA, kCtx, offsetof(__sk_buff, ifindex)));
      return {};
    }
    return bad(i, "unsupported ancillary or negative-offset load");
  }

  // Loads `size` bytes at the virtual offset in r2 into r0 (host order), or rejects the packet
  // when they lie beyond the frame. `known` is the offset when it is a constant.
  void packet_load(uint32_t size, std::optional<uint32_t> known) {
    auto fetch = e_.new_label();
    auto done = e_.new_label();
    if (opts_.vlan == VlanView::Metadata || (known && *known + size <= kTagStart)) {
      // The frame as the kernel holds it, or bytes before the tag position.
    } else if (known && *known >= kTagStart + kTagLen) {
      e_.jump_imm(BPF_JMP32, BPF_JEQ, kVtag, 0, fetch);
      e_.emit(alu64_imm(BPF_SUB, BPF_REG_2, kTagLen));
    } else {
      auto after_tag = e_.new_label();
      e_.jump_imm(BPF_JMP32, BPF_JEQ, kVtag, 0, fetch);
      e_.jump_imm(BPF_JMP, BPF_JGE, BPF_REG_2, kTagStart + kTagLen, after_tag);
      e_.jump_imm(BPF_JMP, BPF_JLE, BPF_REG_2, kTagStart - size, fetch);
      straddling_load(size);
      e_.jump(done);
      e_.bind(after_tag);
      e_.emit(alu64_imm(BPF_SUB, BPF_REG_2, kTagLen));
    }
    e_.bind(fetch);
    fetch_bytes(size);
    if (size > 1) e_.emit(to_be(BPF_REG_0, static_cast<int32_t>(8 * size)));
    e_.bind(done);
  }

  // r0 = `size` bytes at the real offset r2, network order as read; rejects when out of bounds.
  void fetch_bytes(uint32_t size) {
    auto done = e_.new_label();
    if (opts_.direct_reads) {
      // r1 = data + r2; if r1 + size <= data_end: r0 = *r1. The verifier needs the offset
      // bounded (below 64 KiB) before it is added to a packet pointer.
      auto helper = e_.new_label();
      e_.jump_imm(BPF_JMP, BPF_JGT, BPF_REG_2, 0xffff - 8, helper);
      e_.emit(ldx(BPF_W, BPF_REG_1, kCtx, offsetof(__sk_buff, data)));
      e_.emit(ldx(BPF_W, BPF_REG_3, kCtx, offsetof(__sk_buff, data_end)));
      e_.emit(alu64_reg(BPF_ADD, BPF_REG_1, BPF_REG_2));
      e_.emit(alu64_reg(BPF_MOV, BPF_REG_4, BPF_REG_1));
      e_.emit(alu64_imm(BPF_ADD, BPF_REG_4, static_cast<int32_t>(size)));
      e_.jump_reg(BPF_JMP, BPF_JGT, BPF_REG_4, BPF_REG_3, helper);
      e_.emit(ldx(bpf_size(size), BPF_REG_0, BPF_REG_1, 0));
      e_.jump(done);
      e_.bind(helper);
    }
    e_.emit(alu64_reg(BPF_MOV, BPF_REG_1, kCtx));
    e_.emit(alu64_reg(BPF_MOV, BPF_REG_3, BPF_REG_10));
    e_.emit(alu64_imm(BPF_ADD, BPF_REG_3, kLoadBuf));
    e_.emit(alu64_imm(BPF_MOV, BPF_REG_4, static_cast<int32_t>(size)));
    e_.emit(call(BPF_FUNC_skb_load_bytes));
    e_.jump_imm(BPF_JMP, BPF_JNE, BPF_REG_0, 0, reject_);
    e_.emit(ldx(bpf_size(size), BPF_REG_0, BPF_REG_10, kLoadBuf));
    e_.bind(done);
  }

  // A load that overlaps the 4 tag bytes while the tag is in metadata (rare: `vlan` filters on
  // ingress). Assembles the value byte by byte from the frame and the tag; r2 = virtual offset.
  void straddling_load(uint32_t size) {
    e_.emit(stx(BPF_DW, BPF_REG_10, BPF_REG_2, kSlowOff));
    e_.emit(st_imm(BPF_DW, BPF_REG_10, kSlowAcc, 0));
    for (uint32_t b = 0; b < size; b++) {
      auto from_frame = e_.new_label();
      auto from_frame_shifted = e_.new_label();
      auto have_byte = e_.new_label();
      e_.emit(ldx(BPF_DW, BPF_REG_2, BPF_REG_10, kSlowOff));
      if (b) e_.emit(alu64_imm(BPF_ADD, BPF_REG_2, static_cast<int32_t>(b)));
      e_.jump_imm(BPF_JMP, BPF_JGE, BPF_REG_2, kTagStart + kTagLen, from_frame_shifted);
      e_.jump_imm(BPF_JMP, BPF_JLT, BPF_REG_2, kTagStart, from_frame);
      // Tag byte (offset 12..15): byte (15 - off) of the big-endian tag, counted from the right.
      e_.emit(alu64_imm(BPF_MOV, BPF_REG_3, kTagStart + kTagLen - 1));
      e_.emit(alu64_reg(BPF_SUB, BPF_REG_3, BPF_REG_2));
      e_.emit(alu64_imm(BPF_LSH, BPF_REG_3, 3));
      e_.emit(alu64_reg(BPF_MOV, BPF_REG_0, kVtag));
      e_.emit(alu64_reg(BPF_RSH, BPF_REG_0, BPF_REG_3));
      e_.emit(alu64_imm(BPF_AND, BPF_REG_0, 0xff));
      e_.jump(have_byte);
      e_.bind(from_frame_shifted);
      e_.emit(alu64_imm(BPF_SUB, BPF_REG_2, kTagLen));
      e_.bind(from_frame);
      fetch_bytes(1);
      e_.bind(have_byte);
      e_.emit(ldx(BPF_DW, BPF_REG_1, BPF_REG_10, kSlowAcc));
      e_.emit(alu64_imm(BPF_LSH, BPF_REG_1, 8));
      e_.emit(alu64_reg(BPF_OR, BPF_REG_1, BPF_REG_0));
      e_.emit(stx(BPF_DW, BPF_REG_10, BPF_REG_1, kSlowAcc));
    }
    e_.emit(ldx(BPF_DW, BPF_REG_0, BPF_REG_10, kSlowAcc));
  }

  Result<> alu(size_t i, const sock_filter &f) {
    uint8_t op = BPF_OP(f.code);
    switch (op) {
    case BPF_ADD: case BPF_SUB: case BPF_MUL: case BPF_OR: case BPF_AND: case BPF_XOR:
      break;
    case BPF_DIV: case BPF_MOD:
      if (BPF_SRC(f.code) == BPF_K && f.k == 0) return bad(i, "division by constant zero");
      if (BPF_SRC(f.code) == BPF_X) e_.jump_imm(BPF_JMP32, BPF_JEQ, kX, 0, reject_);  // libpcap: return 0
      break;
    case BPF_LSH: case BPF_RSH:
      if (BPF_SRC(f.code) == BPF_K) {
        if (f.k >= 32) return bad(i, "shift by 32 or more");
      } else {
        // libpcap: a shift by 32 or more gives 0 (eBPF would mask the count instead).
        auto in_range = e_.new_label(), next = e_.new_label();
        e_.jump_imm(BPF_JMP32, BPF_JLT, kX, 32, in_range);
        e_.emit(alu32_imm(BPF_MOV, kA, 0));
        e_.jump(next);
        e_.bind(in_range);
        e_.emit(alu32_reg(op, kA, kX));
        e_.bind(next);
        return {};
      }
      break;
    case BPF_NEG:
      e_.emit(insn(BPF_ALU | BPF_NEG, kA, 0, 0, 0));
      return {};
    default:
      return bad(i, "unsupported ALU operation");
    }
    if (BPF_SRC(f.code) == BPF_K)
      e_.emit(alu32_imm(op, kA, static_cast<int32_t>(f.k)));
    else
      e_.emit(alu32_reg(op, kA, kX));
    return {};
  }

  Result<> jmp(size_t i, const sock_filter &f) {
    uint8_t op = BPF_OP(f.code);
    if (op == BPF_JA) {
      long rel = static_cast<int32_t>(f.k);
      if (auto r = check_target(i, rel); !r) return r;
      e_.jump(target(i, rel));
      return {};
    }
    if (op != BPF_JEQ && op != BPF_JGT && op != BPF_JGE && op != BPF_JSET)
      return bad(i, "unsupported jump");
    if (auto r = check_target(i, f.jt); !r) return r;
    if (auto r = check_target(i, f.jf); !r) return r;
    // cBPF compares the 32-bit A unsigned: JMP32 does exactly that.
    if (f.jt != f.jf) {
      if (BPF_SRC(f.code) == BPF_K)
        e_.jump_imm(BPF_JMP32, op, kA, static_cast<int32_t>(f.k), target(i, f.jt));
      else
        e_.jump_reg(BPF_JMP32, op, kA, kX, target(i, f.jt));
    }
    if (f.jf != 0) e_.jump(target(i, f.jf));
    return {};
  }

  std::span<const sock_filter> prog_;
  TranslateOptions opts_;
  Emitter e_;
  Emitter::Label reject_{};
  std::vector<Emitter::Label> at_;
};

} // namespace

Result<std::vector<bpf_insn>> translate_cbpf(std::span<const sock_filter> prog, TranslateOptions opts) {
  return Translator(prog, opts).run();
}

} // namespace bpftap
