#!/usr/bin/env bash
# The file lock among hostile neighbours (issue 18, items 3 and 4), with a
# second, unprivileged user that this test creates and removes: in a
# directory both can write, that user plants links and lock files; the
# sidecar (run as root, as CI does) must never write through a planted link,
# refuses a lock path or PATH.lock that is a link or another user's file, with
# an error naming it, and creates its own files 0600.
#   cli_file_lock_neighbours.sh LEASEHOLD   (needs root: useradd, runuser)
set -uo pipefail
bin=$1
source "$(dirname "$0")/cli_lib.sh"
cli_setup neighbours
if [[ $(id -u) -ne 0 ]] || ! command -v useradd >/dev/null || ! command -v runuser >/dev/null; then
  fail "needs root with useradd and runuser to create the second user (uid $(id -u))"
  cli_finish "file lock neighbours"
fi
user="lhtest$$"
useradd --no-create-home --shell /usr/sbin/nologin "$user" || { fail "useradd $user"; cli_finish "file lock neighbours"; }
# Its processes go first (userdel refuses a user who still runs one), then the user.
remove_user() {
  pkill -KILL -u "$user" 2>/dev/null
  for _ in 1 2 3 4 5 6 7 8 9 10; do userdel "$user" 2>/dev/null && return; sleep 0.1; done
  echo "FAIL could not remove the test user $user"
}
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; remove_user; [[ ${KEEP:-} ]] || rm -rf "$dir"' EXIT
as_user() { runuser -u "$user" -- "$@"; }
shared="$dir/shared"
chmod 0711 "$dir"  # the other user may pass through to the shared directory
mkdir -m 0777 "$shared"  # a directory both users can write (no sticky bit: the worst case)
victim="$dir/root-owned"  # what a planted link points at
echo "precious" >"$victim"
chmod 0644 "$victim"
one_run() { "$bin" run --lock "file://$shared/app.lease$1" --identity root-sidecar "${fast[@]}" -- true 2>&1; }

# 1. A planted PATH.tmp link: the old predictable temporary name.
as_user ln -s "$victim" "$shared/app.lease.tmp"
out=$(one_run ""); rc=$?
check "run with a planted app.lease.tmp link succeeds (rc $rc)" test $rc -eq 0
check "the linked file is untouched" test "$(cat "$victim")" = precious
check "the lease went to a file of its own" grep -q '"kind":"leasehold.io/file-lock"' "$shared/app.lease"
check "no temporary left behind" test -z "$(ls "$shared" | grep -E '^app\.lease\.tmp\.' || true)"
mode=$(stat -c %a "$shared/app.lease"); lmode=$(stat -c %a "$shared/app.lease.lock")
check "the lease file is 0600 ($mode)" test "$mode" = 600
check "the lock file is 0600 ($lmode)" test "$lmode" = 600

# 2. The lock path itself a planted link: refused, one line, nothing written.
as_user ln -s "$victim" "$shared/b.lease"
out=$("$bin" run --lock "file://$shared/b.lease" --identity root-sidecar "${fast[@]}" -- true 2>&1); rc=$?
check "a lock path that is a link is refused (rc $rc): $(head -c 160 <<<"$out")" \
  grep -q "b.lease is a symbolic link: refusing it" <<<"$out"
check "the linked file is still untouched" test "$(cat "$victim")" = precious

# 3. Another user's PATH.lock (held, to freeze every elector): refused at start, at once.
as_user touch "$shared/c.lease.lock"
as_user flock "$shared/c.lease.lock" sleep 20 &
holder=$!
sleep 0.3
start=$(date +%s%N)
out=$("$bin" run --lock "file://$shared/c.lease" --identity root-sidecar "${fast[@]}" -- true 2>&1); rc=$?
took=$(( ($(date +%s%N) - start) / 1000000 ))
check "another user's lock file is refused (rc $rc, $took ms): $(head -c 200 <<<"$out")" \
  grep -q "c.lease.lock is owned by uid $(id -u "$user"), not by this process (uid 0): refusing it" <<<"$out"
check "refused at once, not frozen ($took ms < 2000)" test "$took" -lt 2000
out=$("$bin" status "file://$shared/c.lease" 2>&1); rc=$?
check "status says so too (rc $rc)" grep -q "owned by uid" <<<"$out"
# ...unless asked for.
out=$(timeout 4 "$bin" run --lock "file://$shared/c.lease?allow-other-owner=true" --identity root-sidecar \
  --leader-elect-lease-duration=3s --leader-elect-renew-deadline=2s --leader-elect-retry-period=250ms -- true 2>&1); rc=$?
check "?allow-other-owner=true accepts it, then waits for the held flock (rc $rc, still campaigning)" \
  test $rc -eq 124 -a -n "$(grep 'get failed: Timeout' <<<"$out")"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null

# 4. The unprivileged user cannot read or take root's lock files.
out=$(as_user cat "$shared/app.lease" 2>&1); rc=$?
check "the other user cannot read the lease file (rc $rc)" test $rc -ne 0
out=$(as_user flock -n "$shared/app.lease.lock" true 2>&1); rc=$?
check "the other user cannot open the lock file to hold it (rc $rc)" test $rc -ne 0
out=$("$bin" run --lock "file://$shared/app.lease?x=1" -- true 2>&1); rc=$?
check "an unknown option is named (rc $rc): $out" grep -q 'unknown option "x=1"' <<<"$out"

# 5. status only reads (issue 18, item 9): the other user looks at its own lock
# in a directory it cannot write, with and without PATH.lock; run is refused
# there up front, naming the directory.
ro="$dir/readonly"
mkdir -m 0755 "$ro"; chown "$user" "$ro"
as_user "$bin" run --lock "file://$ro/u.lease" --identity user-sidecar "${fast[@]}" -- true 2>/dev/null
chown root "$ro"; chmod 0755 "$ro"
out=$(as_user "$bin" status "file://$ro/u.lease" 2>&1); rc=$?
check "status in a directory it cannot write (rc $rc): $(head -n2 <<<"$out" | tail -n1)" \
  test $rc -eq 0 -a -n "$(grep -E '^\(free\) ' <<<"$out")"
rm -f "$ro/u.lease.lock"
out=$(as_user "$bin" status -o json "file://$ro/u.lease" 2>&1); rc=$?
check "...and without PATH.lock, which it cannot create (rc $rc): $out" \
  test $rc -eq 0 -a -n "$(grep '"exists":true,"holder":""' <<<"$out")"
check "status created nothing there" test "$(ls "$ro")" = u.lease
out=$(as_user "$bin" run --lock "file://$ro/u.lease" --identity u "${fast[@]}" -- true 2>&1 >/dev/null); rc=$?
check "run there: exit 2, one line naming the directory (rc $rc): $out" test $rc -eq 2 -a \
  "$out" = "leasehold: lock URL \"file://$ro/u.lease\": directory $ro is not writable by this user (Permission denied); campaigning writes the lease there"

# 6. A sticky directory (like /tmp): the other user may not rename over root's
# record even when the files are shared (0666, ?allow-other-owner=true); the
# error says why and what to do.
sticky="$dir/sticky"
mkdir -m 1777 "$sticky"
"$bin" run --lock "file://$sticky/s.lease" --identity root-sidecar "${fast[@]}" -- true 2>/dev/null
chmod 0666 "$sticky/s.lease" "$sticky/s.lease.lock"
out=$(as_user timeout 3 "$bin" run --lock "file://$sticky/s.lease?allow-other-owner=true" --identity user-sidecar \
  "${fast[@]}" -- true 2>&1)
check "rename refused in a sticky directory: the log says why and what to do ($(grep -m1 sticky <<<"$out" | head -c 400))" \
  grep -qF "$sticky is a sticky directory (mode +t, like /tmp) and $sticky/s.lease belongs to uid 0, so only that user may replace it; keep a lock shared by several users in a directory of its own without the sticky bit" <<<"$out"
check "...and root's record is unchanged" grep -q '"holderIdentity":""' "$sticky/s.lease"
check "...and no temporary is left" test -z "$(ls "$sticky" | grep -E '\.tmp\.' || true)"

cli_finish "file lock neighbours"
