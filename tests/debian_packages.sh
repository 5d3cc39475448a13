# shellcheck shell=bash
# Shared by the scripts that make a Debian package's programs available to a test tier or the
# benchmark (tests/integration/setup_redis.sh, e2e/prometheus/setup.sh, bench/setup.sh). Source it
# after `set -euo pipefail`; it defines:
#
#   say MESSAGE...                 progress on stdout
#   die PROBLEM NEXT               the problem and what to do next on stderr, exit 1
#   apt_install TARGET MISSING HINT PACKAGE...
#                                  install PACKAGEs (no recommends) with apt-get, only as root;
#                                  anyone else gets "MISSING, ..." and HINT. TARGET is the make
#                                  target to run again after fixing apt.
#   stop_service NAME WHO          stop and disable the system service NAME that a package starts
#                                  (systemd, or its init script where systemd is not PID 1): the
#                                  tests and benchmarks start their own servers on free ports, so
#                                  WHO never need it; without root only a note is printed.

say() { echo "==> $*"; }

die() {
    echo "error: $1" >&2
    echo "next:  $2" >&2
    exit 1
}

apt_install() {
    local target=$1 missing=$2 hint=$3
    shift 3
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        die "$missing, and this script installs it only as root with apt-get" "$hint"
    fi
    say "installing the Debian package(s) $* (under a minute)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq ||
        die "apt-get update failed (see its output above)" "check the apt sources, then run $target again"
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
        die "apt-get install $* failed (see its output above)" \
            "check the apt sources, then run $target again"
}

stop_service() {
    local name=$1 who=$2 root=false
    [[ $(id -u) -eq 0 ]] && root=true
    if [[ -d /run/systemd/system ]] && systemctl list-unit-files "$name.service" >/dev/null 2>&1; then
        if systemctl is-active --quiet "$name" || systemctl is-enabled --quiet "$name" 2>/dev/null; then
            if $root; then
                say "stopping and disabling the system $name service ($who run their own)"
                systemctl disable --now "$name" >/dev/null 2>&1 ||
                    die "could not stop the $name service" "systemctl disable --now $name"
            else
                say "note: a system $name service is running or enabled; $who do not need it (sudo systemctl disable --now $name)"
            fi
        fi
    elif [[ -x /etc/init.d/$name ]]; then
        if "/etc/init.d/$name" status >/dev/null 2>&1; then
            if $root; then
                say "stopping the system $name service ($who run their own)"
                "/etc/init.d/$name" stop >/dev/null || die "could not stop the $name service" "/etc/init.d/$name stop"
            else
                say "note: a system $name service is running; $who do not need it (sudo service $name stop)"
            fi
        fi
        if $root && command -v update-rc.d >/dev/null && compgen -G "/etc/rc[2-5].d/S*$name" >/dev/null; then
            say "disabling the system $name service at boot"
            update-rc.d "$name" disable >/dev/null 2>&1 || true
        fi
    fi
}
