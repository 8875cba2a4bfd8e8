#!/usr/bin/env bash
# Builds the Debian package and checks it the way a user meets it (issue 12):
# lintian clean (errors and warnings fail; an override would go in
# packaging/debian/lintian-overrides with its reason), then dpkg -i,
# the installed unit through systemd-analyze, the installed binaries, man
# pages and a lock taken and released, SIGTERM, and dpkg --purge leaving no
# file behind. Needs root or sudo (dpkg -i), and lintian, dpkg-dev, man-db,
# systemd (systemd-analyze), which .ci/run installs. Run from .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

echo "== build the package (packaging/build-deb.sh)"
deb=$(packaging/build-deb.sh | tail -n 1)
echo "$deb: $(stat -c %s "$deb") bytes, Installed-Size $(dpkg-deb -f "$deb" Installed-Size) KiB"
dpkg-deb --contents "$deb" | awk '{ print "  " $1, $3, $6 }'

echo "== lintian"
# --fail-on: warnings fail too (infos are shown, and pass).
lintian --fail-on error,warning --display-info "$deb"
echo "lintian: clean"

if dpkg -s dflockd >/dev/null 2>&1; then $sudo dpkg --purge dflockd >/dev/null; fi
echo "== dpkg -i"
# --path-include: man pages even where a minimal image excludes them.
$sudo dpkg -i --path-include="/usr/share/man/*" "$deb"
files_before=$(dpkg -L dflockd)

# Every unit the package installs (dflockd.service, and dflockd.socket once
# packaging/systemd has it); the exposure score is the service's, at most 2.0.
units=$(dpkg -L dflockd | grep '/systemd/system/dflockd\.')
echo "== systemd-analyze verify / security:" $units
# shellcheck disable=SC2086 # one path per word
systemd-analyze verify --man=no $units
service=$(echo "$units" | grep '\.service$')
systemd-analyze security --offline=yes --threshold=20 --no-pager "$service" | tail -n 1

echo "== installed binaries"
/usr/bin/dflockd --version
/usr/bin/dflockd --check-config | tail -n 1
/usr/bin/dflockctl --version
/usr/bin/dflock-load --version
pages=(dflockd dflockctl)
# The protocol page comes with the man pages of issue 12; check it once in the tree.
if [ -f man/dflockd-protocol.7 ]; then pages+=(dflockd-protocol); fi
man -w "${pages[@]}"

echo "== serve, lock, SIGTERM"
# As the runit service lays it out (systemd would make /var/lib/private/dflockd):
# the fence file in /var/lib/dflockd, which purge must remove.
$sudo mkdir -p /var/lib/dflockd /var/lib/private/dflockd
log=$(mktemp)
$sudo env DFLOCKD_FENCE_STATE_FILE=/var/lib/dflockd/fence \
    /usr/bin/dflockd --port 0 2>"$log" &
pid=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) (tcp).*/\1/p' "$log")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$log"; echo "dflockd did not start" >&2; exit 1; }
server=127.0.0.1:$port
# Held: a second try on the same key is refused (1, and dflockctl says "not
# acquired"); released: it succeeds.
/usr/bin/dflockctl -s "$server" lock -t 5 deb-check -- \
    sh -c '/usr/bin/dflockctl -s "$1" lock -t 0 deb-check -- true; test $? -eq 1' sh "$server"
/usr/bin/dflockctl -s "$server" lock -t 0 deb-check -- true
echo "lock taken and released on $server"
$sudo kill -TERM "$pid"
status=0
wait "$pid" || status=$?
cat "$log"
rm -f "$log"
[ "$status" -eq 0 ] || { echo "dflockd exited $status on SIGTERM" >&2; exit 1; }
$sudo test -f /var/lib/dflockd/fence

echo "== dpkg --purge"
$sudo dpkg --purge dflockd
left=""
while IFS= read -r path; do
    # Directories shared with other packages (/usr, /etc/default, ...) stay.
    if [ -e "$path" ] && [ ! -d "$path" ]; then left="$left $path"; fi
done <<<"$files_before"
# Plus what the services and deb-systemd-helper make outside the file list.
for path in /var/lib/dflockd /var/lib/private/dflockd /etc/sv/dflockd \
    /var/log/dflockd /usr/share/doc/dflockd /etc/default/dflockd \
    /etc/systemd/system/multi-user.target.wants/dflockd.service \
    /var/lib/systemd/deb-systemd-helper-enabled/dflockd.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-masked/dflockd.service; do
    if [ -e "$path" ]; then left="$left $path"; fi
done
if [ -n "$left" ]; then
    echo "left behind after purge:$left" >&2
    exit 1
fi
echo "purge: nothing left behind"
