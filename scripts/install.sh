#!/usr/bin/env bash
# Installs chatd: the binary, its manual pages, shell completions, a default configuration
# and a hardened systemd unit. Safe to run again: files already up to date are left alone
# and an existing configuration is never overwritten. Exit status: 0 done, 1 a step failed,
# 2 bad arguments.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/install.sh [--prefix DIR] [--sysconfdir DIR] [--binary PATH] [--dry-run]

Builds chatd in release mode (cargo build --release --locked) unless --binary is given,
then installs:

  PREFIX/bin/chatd                                    the binary
  PREFIX/share/man/man1/chatd*.1                      manual pages (from man/)
  PREFIX/share/bash-completion/completions/chatd      bash completions
  PREFIX/share/zsh/site-functions/_chatd              zsh completions
  PREFIX/share/fish/vendor_completions.d/chatd.fish   fish completions
  SYSCONFDIR/chatd/config.toml                        configuration (kept if it exists)
  PREFIX/lib/systemd/system/chatd.service             systemd unit (paths adjusted)
  PREFIX/lib/sysusers.d/chatd.conf                    declares the chatd system account

Options:
  --prefix DIR      installation prefix [default: /usr/local]
  --sysconfdir DIR  where chatd/config.toml goes [default: /etc for the prefixes /usr
                    and /usr/local, else PREFIX/etc]
  --binary PATH     install this chatd binary instead of building one
  --dry-run         print what would be done; change nothing
  -h, --help        print this help

Then, as root: systemd-sysusers && systemctl daemon-reload && systemctl enable --now chatd
EOF
}

die_usage() {
    echo "install.sh: error: $* (see --help)" >&2
    exit 2
}

prefix=/usr/local
sysconfdir=
binary=
dry_run=false
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die_usage "--prefix needs a directory"; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --sysconfdir) [ $# -ge 2 ] || die_usage "--sysconfdir needs a directory"; sysconfdir=$2; shift 2 ;;
        --sysconfdir=*) sysconfdir=${1#*=}; shift ;;
        --binary) [ $# -ge 2 ] || die_usage "--binary needs a path"; binary=$2; shift 2 ;;
        --binary=*) binary=${1#*=}; shift ;;
        --dry-run) dry_run=true; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown argument '$1'" ;;
    esac
done
[ -n "$prefix" ] || die_usage "--prefix must not be empty"
prefix=${prefix%/}
[ -n "$prefix" ] || prefix=/
# The unit names these paths; systemd only takes absolute ones.
case "$prefix" in /*) ;; *) die_usage "--prefix must be an absolute path, not '$prefix'" ;; esac
case "$sysconfdir" in '' | /*) ;; *) die_usage "--sysconfdir must be an absolute path, not '$sysconfdir'" ;; esac
if [ -z "$sysconfdir" ]; then
    case "$prefix" in
        /usr | /usr/local) sysconfdir=/etc ;;
        *) sysconfdir=$prefix/etc ;;
    esac
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bindir=$prefix/bin
mandir=$prefix/share/man/man1
unitdir=$prefix/lib/systemd/system
confdir=$sysconfdir/chatd

say() { printf '%s\n' "$*"; }

# --- the binary ----------------------------------------------------------------------------
if [ -n "$binary" ]; then
    # A bare name is a file here, as for cp, not a command looked up on PATH.
    case $binary in */*) ;; *) binary=./$binary ;; esac
    if ! { [ -f "$binary" ] && [ -x "$binary" ]; }; then
        die_usage "--binary $binary is not an executable file"
    fi
    # It generates the completions below: make sure it is chatd before anything is installed.
    case "$("$binary" --version 2>/dev/null)" in
        "chatd "*) ;;
        *) die_usage "--binary $binary is not a chatd binary ('$binary --version' does not say chatd)" ;;
    esac
elif $dry_run; then
    say "would build: cargo build --release --locked"
    binary=${CARGO_TARGET_DIR:-$repo/target}/release/chatd
else
    say "building: cargo build --release --locked"
    (cd "$repo" && cargo build --release --locked) || { echo "install.sh: error: build failed" >&2; exit 1; }
    binary=${CARGO_TARGET_DIR:-$repo/target}/release/chatd
fi

# Generated files (completions, the adjusted unit) are staged here, never in the prefix.
stage=$(mktemp -d "${TMPDIR:-/tmp}/chatd-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT

changed=0
# put SRC DEST MODE: installs SRC as DEST unless DEST already has that content and mode.
put() {
    local src=$1 dest=$2 mode=$3
    if [ -f "$dest" ] && [ -f "$src" ] && cmp -s "$src" "$dest" &&
        [ "$(stat -c %a "$dest")" = "${mode#0}" ]; then
        say "unchanged   $dest"
        return
    fi
    changed=$((changed + 1))
    if $dry_run; then
        say "would install $dest"
    else
        install -D -m "$mode" "$src" "$dest"
        say "installed   $dest"
    fi
}

put "$binary" "$bindir/chatd" 0755

# --- manual pages --------------------------------------------------------------------------
for page in "$repo"/man/*.1; do
    put "$page" "$mandir/$(basename "$page")" 0644
done

# --- completions ---------------------------------------------------------------------------
if [ -x "$binary" ]; then
    for shell in bash zsh fish; do
        "$binary" completions "$shell" >"$stage/completions.$shell"
    done
fi
put "$stage/completions.bash" "$prefix/share/bash-completion/completions/chatd" 0644
put "$stage/completions.zsh" "$prefix/share/zsh/site-functions/_chatd" 0644
put "$stage/completions.fish" "$prefix/share/fish/vendor_completions.d/chatd.fish" 0644

# --- configuration: an operator's edits are never overwritten ------------------------------
if [ -e "$confdir/config.toml" ]; then
    say "kept        $confdir/config.toml (exists)"
else
    put "$repo/config.toml" "$confdir/config.toml" 0644
fi

# --- systemd -------------------------------------------------------------------------------
# The unit names /usr/local/bin/chatd and /etc/chatd/; point it at this layout.
sed_replacement() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }
sed -e "s|/usr/local/bin/chatd|$(sed_replacement "$bindir/chatd")|g" \
    -e "s|/etc/chatd/|$(sed_replacement "$confdir/")|g" \
    "$repo/scripts/chatd.service" >"$stage/chatd.service"
put "$stage/chatd.service" "$unitdir/chatd.service" 0644
printf 'u chatd - "chatd server" /var/lib/chatd\n' >"$stage/chatd.sysusers"
put "$stage/chatd.sysusers" "$prefix/lib/sysusers.d/chatd.conf" 0644

if $dry_run; then
    say "dry run: $changed file(s) would be installed; nothing was changed"
else
    say "done: $changed file(s) installed"
    if [ "$changed" -gt 0 ]; then
        say "next, as root: systemd-sysusers && systemctl daemon-reload && systemctl enable --now chatd"
    fi
fi
