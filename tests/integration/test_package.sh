#!/usr/bin/env bash
# Installation: `cmake --install` into a staging root puts every file in place; `cpack -G DEB`
# builds a package that dpkg installs on this machine; the installed bpftap runs, the agent unit's
# config check passes, the agent starts as the unit starts it (in a network namespace of the
# test's own) and `bpftap ctl` talks to it with the token the package made; bash completion
# completes options read from --help; dpkg --purge leaves nothing.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root
require_cmd cpack dpkg dpkg-deb help2man ip
BUILD=$(dirname "$BPFTAP")
dpkg -s bpftap >/dev/null 2>&1 && skip "a bpftap package is installed on this machine: not touching it"
[[ -e /usr/sbin/bpftap ]] && skip "/usr/sbin/bpftap exists (not from a package): not overwriting it"
[[ -e /etc/bpftap ]] && skip "/etc/bpftap exists: not touching it"
make_workdir
W=$WORKDIR
NS="bpkg-$$-$RANDOM"
agent=""
cleanup() {
  local rc=$?
  set +e
  [[ -n "$agent" ]] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  dpkg -s bpftap >/dev/null 2>&1 && dpkg --purge bpftap >/dev/null
  rm -rf -- "$W"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cmake --build "$BUILD" --target bpftap man >/dev/null || fail "build"

# cmake --install into a staging root (prefix /usr/local by default; /etc whatever the prefix).
DESTDIR="$W/stage" cmake --install "$BUILD" >/dev/null || fail "cmake --install"
prefix=$(awk -F= '/^CMAKE_INSTALL_PREFIX:/ { print $2 }' "$BUILD/CMakeCache.txt")
for f in "$prefix/sbin/bpftap" "$prefix/lib/systemd/system/bpftap-agent.service" /etc/bpftap/agent.yaml \
  /etc/bpftap/agent.yaml.example /etc/logrotate.d/bpftap "$prefix/share/man/man8/bpftap.8.gz" \
  "$prefix/share/bash-completion/completions/bpftap" "$prefix/share/doc/bpftap/sensor.md"; do
  [[ -s "$W/stage$f" ]] || fail "cmake --install did not install $f"
done
echo "  cmake --install: $(find "$W/stage" -type f | wc -l) files under $prefix and /etc"

# The man page is the program's own help: every command and a late option are in it.
man_text=$(zcat "$W/stage$prefix/share/man/man8/bpftap.8.gz")
for word in capture mirror inspect agent ctl 'snapshot\-length' 'check\-config' 'bypass'; do
  grep -qF -- "$word" <<<"$man_text" || fail "man page lacks '$word'"
done

# The Debian package.
(cd "$W" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$W/pkg" >"$W/cpack.log" 2>&1) || fail "cpack: $(tail -5 "$W/cpack.log")"
deb=$(ls "$W"/pkg/*.deb)
echo "  package: $(basename "$deb"), $(du -k "$deb" | cut -f1) KiB"
dpkg-deb -f "$deb" Depends | sed 's/^/  Depends: /'
dpkg-deb -c "$deb" >"$W/contents"
grep -q ' ./usr/sbin/bpftap$' "$W/contents" || fail "no /usr/sbin/bpftap in the package: $(cat "$W/contents")"
dpkg -i "$deb" >"$W/dpkg.log" 2>&1 || fail "dpkg -i: $(cat "$W/dpkg.log")"
assert_eq "bpftap 0.1.0" "$(/usr/sbin/bpftap --version)" "installed bpftap --version"
assert_eq 600 "$(stat -c %a /etc/bpftap/token)" "mode of the token the package made"
grep -qx /etc/bpftap/agent.yaml /var/lib/dpkg/info/bpftap.conffiles || fail "agent.yaml is not a conffile"

# The unit's own commands: its config check, then its ExecStart (in a namespace of our own, so
# the agent's start-up cleanup cannot touch anything of the host's).
unit=/usr/lib/systemd/system/bpftap-agent.service
[[ -f $unit ]] || unit=/lib/systemd/system/bpftap-agent.service
check=$(sed -n 's/^ExecStartPre=//p' "$unit")
start=$(sed -n 's/^ExecStart=//p' "$unit")
# shellcheck disable=SC2086
PATH=/usr/sbin:/usr/bin:/sbin:/bin $check || fail "the unit's config check ($check) failed"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$unit" 2>&1 | grep -v "^$" | sed 's/^/  systemd-analyze: /' || true
fi
ip netns add "$NS"
# shellcheck disable=SC2086
ip netns exec "$NS" env PATH=/usr/sbin:/usr/bin:/sbin:/bin $start 2>"$W/agent.log" &
agent=$!
for _ in $(seq 50); do [[ -S /run/bpftap/api.sock ]] && break; sleep 0.1; done
/usr/sbin/bpftap ctl status >"$W/status" 2>&1 || fail "ctl status: $(cat "$W/status") / $(cat "$W/agent.log")"
grep -q "agent: running, 0 sessions" "$W/status" || fail "ctl status: $(cat "$W/status")"
/usr/sbin/bpftap ctl reload >"$W/reload" 2>&1 || fail "ctl reload with the package's token: $(cat "$W/reload")"
echo "  agent as the unit starts it: $(head -1 "$W/status"); reload: $(cat "$W/reload")"
kill -TERM "$agent"
wait "$agent" || fail "the agent did not exit 0 on SIGTERM: $(tail -3 "$W/agent.log")"
agent=""

# Bash completion: options come from --help.
if [[ -f /usr/share/bash-completion/bash_completion ]]; then
  got=$(bash -c 'source /usr/share/bash-completion/bash_completion; source /usr/share/bash-completion/completions/bpftap
    COMP_WORDS=(bpftap capture --snap); COMP_CWORD=2; COMP_LINE="bpftap capture --snap"; COMP_POINT=${#COMP_LINE}
    _bpftap; echo "${COMPREPLY[*]}"')
  assert_eq "--snapshot-length --snaplen" "$got" "completion of 'bpftap capture --snap'"
  echo "  completion: bpftap capture --snap<TAB> -> $got"
else
  echo "  (bash-completion not installed: completion not tried)"
fi

dpkg --purge bpftap >/dev/null || fail "dpkg --purge"
[[ ! -e /usr/sbin/bpftap && ! -e /etc/bpftap ]] || fail "purge left files: $(ls /usr/sbin/bpftap /etc/bpftap 2>&1)"
echo PASS
