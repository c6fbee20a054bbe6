#!/bin/sh
# edgeferry installer for systemd boxes. Idempotent: run it again with the same or a newer
# release to repair or upgrade.
#
#   install.sh install edgeferry-<version>-linux-<arch>.tar.gz [--start]
#   install.sh rollback            # back to the release installed before the current one
#   install.sh uninstall [--purge] # keeps /etc/edgeferry and /var/lib/edgeferry unless --purge
#
# Layout: releases unpack into /opt/edgeferry/releases/<name>, /opt/edgeferry/current points at
# the running one (switched atomically, the previous ones kept for rollback); the config lives in
# /etc/edgeferry (an existing file is never overwritten: the shipped version is put beside it as
# <file>.dist); the buffer in /var/lib/edgeferry (systemd's StateDirectory). `edgeferry check`
# runs on the config with the new release before anything is switched or (re)started.
#
# DESTDIR=/some/dir installs into a scratch root instead of / (no systemctl calls then).
set -eu

DESTDIR=${DESTDIR:-}
OPT=$DESTDIR/opt/edgeferry
ETC=$DESTDIR/etc/edgeferry
UNIT=$DESTDIR/etc/systemd/system/edgeferry.service
SYSUSERS=$DESTDIR/usr/lib/sysusers.d/edgeferry.conf
BIN=$DESTDIR/usr/local/bin/edgeferry
KEEP_RELEASES=3

say() { printf 'edgeferry install: %s\n' "$*"; }
die() { printf 'edgeferry install: %s\n' "$1" >&2; exit "${2:-1}"; }
systemd_here() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

need_root() {
  [ -n "$DESTDIR" ] && return 0
  [ "$(id -u)" = 0 ] || die "run as root (or with DESTDIR=<scratch root> to try it out)"
}

machine_arch() {
  case "$(uname -m)" in
    aarch64|arm64) echo arm64 ;;
    x86_64|amd64) echo x64 ;;
    *) uname -m ;;
  esac
}

# Group id of "edgeferry" in the target root (created by systemd-sysusers), or empty.
edgeferry_gid() {
  [ -f "$DESTDIR/etc/group" ] && awk -F: '$1 == "edgeferry" { print $3 }' "$DESTDIR/etc/group" || true
}

install_config_file() { # $1 shipped file, $2 target path, $3 mode
  if [ ! -e "$2" ]; then
    mkdir -p "$(dirname "$2")"
    cp "$1" "$2"
    chmod "$3" "$2"
    say "config: wrote $2"
  elif ! cmp -s "$1" "$2"; then
    cp "$1" "$2.dist"
    chmod "$3" "$2.dist"
    say "config: kept your $2 (this release's version is beside it as $2.dist)"
  fi
}

cmd_install() {
  tarball=${1:-}; shift || true
  start=no
  for a in "$@"; do
    case "$a" in --start) start=yes ;; *) die "unknown option $a" 2 ;; esac
  done
  [ -f "$tarball" ] || die "usage: install.sh install edgeferry-<version>-linux-<arch>.tar.gz [--start]" 2
  need_root
  name=$(basename "$tarball" .tar.gz)
  case "$name" in edgeferry-*-linux-*) ;; *) die "$tarball: not an edgeferry release tarball" 2 ;; esac
  arch=${name##*-linux-}
  [ "$arch" = "$(machine_arch)" ] || die "$tarball is for linux-$arch, this machine is $(machine_arch)"

  # 1. Unpack (again, if a previous try was interrupted) into releases/<name>.
  mkdir -p "$OPT/releases"
  rel=$OPT/releases/$name
  if [ ! -f "$rel/RELEASE" ]; then
    tmp=$(mktemp -d "$OPT/releases/.unpack.XXXXXX")
    tar -xzf "$tarball" -C "$tmp"
    [ -f "$tmp/$name/RELEASE" ] || { rm -rf "$tmp"; die "$tarball does not hold $name/"; }
    rm -rf "$rel"
    mv "$tmp/$name" "$rel"
    rmdir "$tmp"
    say "unpacked $name into $rel"
  else
    say "$name is already unpacked in $rel"
  fi
  # Each release runs on the Node runtime it bundles (runtime/bin/node): nothing to match on the box.
  NODE=$rel/runtime/bin/node
  [ -x "$NODE" ] || die "$name has no runtime/bin/node: releases before 0.1.0 needed Node on the box; use a newer release"
  "$NODE" -e 0 2>/dev/null || die "$NODE does not run on this machine (wrong architecture, or glibc older than 2.28?)"

  # 2. The system user (sysusers.d: also applied at boot by systemd-sysusers).
  mkdir -p "$(dirname "$SYSUSERS")"
  cp "$rel/systemd/edgeferry.sysusers" "$SYSUSERS"
  if command -v systemd-sysusers >/dev/null 2>&1; then
    if [ -n "$DESTDIR" ]; then mkdir -p "$DESTDIR/etc"; systemd-sysusers --root="$DESTDIR" "$SYSUSERS"; else systemd-sysusers "$SYSUSERS"; fi
  else
    say "systemd-sysusers not found: create the user yourself (useradd --system --groups dialout edgeferry)"
  fi

  # 3. Config: examples where nothing is yet; never over an existing file.
  mkdir -p "$ETC"
  install_config_file "$rel/config/gateway.example.yaml" "$ETC/gateway.yaml" 0640
  for f in "$rel"/config/devices/*.yaml; do install_config_file "$f" "$ETC/devices/$(basename "$f")" 0640; done
  for f in "$rel"/config/secrets/*; do install_config_file "$f" "$ETC/secrets/$(basename "$f")" 0640; done
  gid=$(edgeferry_gid)
  if [ -n "$gid" ]; then
    chown -R "0:$gid" "$ETC"
    chmod 0750 "$ETC" "$ETC/devices" "$ETC/secrets"
  fi

  # The JSON schemas the maps' $schema comments point at (../schema from devices/): not config, always this release's.
  rm -rf "$ETC/schema"
  cp -R "$rel/config/schema" "$ETC/schema"
  chmod -R u=rwX,g=rX,o= "$ETC/schema"
  [ -n "$gid" ] && chown -R "0:$gid" "$ETC/schema"

  # 4. Check the config with the new release before switching or (re)starting anything — unless it
  # is still the shipped example, whose placeholders keep the service from starting anyway.
  example=no
  if cmp -s "$rel/config/gateway.example.yaml" "$ETC/gateway.yaml"; then
    example=yes
    say "$ETC/gateway.yaml is the shipped example: it names no real broker or device, and the service refuses to start until its placeholders are replaced (edgeferry check $ETC/gateway.yaml lists them)"
  else
    say "checking $ETC/gateway.yaml with $name"
    if ! "$NODE" "$rel/dist/src/main.js" check "$ETC/gateway.yaml"; then
      die "the configuration has problems (above); nothing was switched or restarted. Fix them and run install again." 3
    fi
  fi

  # 5. Switch current → this release (atomically), unit, command.
  prev=$(readlink "$OPT/current" 2>/dev/null || true)
  ln -sfn "releases/$name" "$OPT/.current.new"
  mv -T "$OPT/.current.new" "$OPT/current"
  [ -n "$prev" ] && [ "$prev" != "releases/$name" ] && echo "$prev" > "$OPT/previous"
  mkdir -p "$(dirname "$UNIT")" "$(dirname "$BIN")"
  cp "$rel/systemd/edgeferry.service" "$UNIT.new"
  mv "$UNIT.new" "$UNIT"
  ln -sfn /opt/edgeferry/current/bin/edgeferry "$BIN"
  say "current → $name${prev:+ (was ${prev#releases/})}"

  # 6. Old releases beyond the last $KEEP_RELEASES go (never current or previous).
  keep_prev=$(cat "$OPT/previous" 2>/dev/null || true)
  ls -1t "$OPT/releases" | tail -n +$((KEEP_RELEASES + 1)) | while read -r old; do
    [ "releases/$old" = "releases/$name" ] || [ "releases/$old" = "$keep_prev" ] || { rm -rf "${OPT:?}/releases/$old"; say "removed old release $old"; }
  done

  # 7. systemd.
  if systemd_here; then
    systemctl daemon-reload
    if [ "$example" = yes ]; then
      say "installed, not started; edit $ETC/gateway.yaml and the device maps, check them (edgeferry check $ETC/gateway.yaml), then: systemctl enable --now edgeferry"
    elif systemctl is-active --quiet edgeferry; then
      systemctl restart edgeferry && say "restarted edgeferry"
    elif [ "$start" = yes ]; then
      systemctl enable --now edgeferry && say "enabled and started edgeferry"
    else
      say "installed; edit $ETC/gateway.yaml and the device maps, then: systemctl enable --now edgeferry"
    fi
  else
    say "installed into ${DESTDIR:-/} (no systemctl calls)"
  fi
}

cmd_rollback() {
  need_root
  prev=$(cat "$OPT/previous" 2>/dev/null || true)
  [ -n "$prev" ] && [ -d "$OPT/$prev" ] || die "no previous release to roll back to"
  "$OPT/$prev/runtime/bin/node" "$OPT/$prev/dist/src/main.js" check "$ETC/gateway.yaml" || die "the configuration has problems with ${prev#releases/}; nothing changed" 3
  cur=$(readlink "$OPT/current")
  ln -sfn "$prev" "$OPT/.current.new"
  mv -T "$OPT/.current.new" "$OPT/current"
  echo "$cur" > "$OPT/previous"
  cp "$OPT/$prev/systemd/edgeferry.service" "$UNIT"
  say "current → ${prev#releases/} (was ${cur#releases/})"
  if systemd_here; then
    systemctl daemon-reload
    systemctl is-active --quiet edgeferry && systemctl restart edgeferry && say "restarted edgeferry"
  fi
  return 0
}

cmd_uninstall() {
  purge=no
  for a in "$@"; do
    case "$a" in --purge) purge=yes ;; *) die "unknown option $a" 2 ;; esac
  done
  need_root
  if systemd_here; then
    systemctl disable --now edgeferry 2>/dev/null || true
  fi
  rm -f "$UNIT" "$BIN" "$SYSUSERS"
  rm -rf "$OPT"
  systemd_here && systemctl daemon-reload
  if [ "$purge" = yes ]; then
    rm -rf "$ETC" "$DESTDIR/var/lib/edgeferry" "$DESTDIR/var/lib/private/edgeferry"
    say "removed edgeferry, its config and its buffer"
  else
    say "removed edgeferry; kept the config in $ETC and the buffer in $DESTDIR/var/lib/edgeferry (uninstall --purge removes them)"
  fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  install) cmd_install "$@" ;;
  rollback) cmd_rollback ;;
  uninstall) cmd_uninstall "$@" ;;
  *) die "usage: install.sh install TARBALL [--start] | rollback | uninstall [--purge]" 2 ;;
esac
