#!/usr/bin/env bash
# Makes a container engine usable on this machine, with no registry reachable. Idempotent:
# quiet and quick when everything is in place. Needs root (uses sudo when not root).
#
#   1. podman, runc, debootstrap, podman-compose (scripts/install-deps.sh container);
#   2. /etc/containers/containers.conf: default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
#      in [containers] (raising rlimits is not permitted here) and runtime = "runc" in [engine]
#      (crun refuses this kernel's cgroups); other settings in the file are kept;
#   3. the base image localhost/debian:bookworm, made by debootstrap --variant=minbase from this
#      machine's own apt source (read from /etc/apt, never written in the repo), tagged as
#      docker.io/library/debian:bookworm and :bookworm-slim. Skipped when the image exists.
#
# Run podman here with `--runtime runc --network host`.
# Exit 0 when ready; otherwise 1 with the reason and a hint on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  echo "container-setup: error: $1" >&2
  [ $# -lt 2 ] || echo "hint: $2" >&2
  exit 1
}

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# One set-up at a time (two test modules may call this at once).
exec 9>"${TMPDIR:-/tmp}/statherd-container-setup.lock"
flock 9

scripts/install-deps.sh container

# --- 2. containers.conf ------------------------------------------------------------------------
# Sets key = value inside [table] of a TOML file: replaces the key's line if the table has it,
# else adds it under the table's header, else appends the table. Other lines are kept as they are.
conf=/etc/containers/containers.conf
merge_conf() {
  $sudo mkdir -p /etc/containers
  $sudo /usr/bin/python3 - "$conf" <<'EOF'
import os, re, sys
path = sys.argv[1]
wanted = {"containers": ("default_ulimits", '["nofile=1024:1024", "nproc=4096:4096"]'),
          "engine": ("runtime", '"runc"')}
lines = open(path).read().splitlines() if os.path.exists(path) else []
for table, (key, value) in wanted.items():
    entry = f"{key} = {value}"
    header = next((i for i, l in enumerate(lines) if l.strip() == f"[{table}]"), None)
    if header is None:
        lines += ["", f"[{table}]", entry]
        continue
    end = next((i for i in range(header + 1, len(lines))
                if re.match(r"\s*\[", lines[i])), len(lines))
    found = [i for i in range(header + 1, end) if re.match(rf"\s*{key}\s*=", lines[i])]
    if found:
        lines[found[0]] = entry
    else:
        lines.insert(header + 1, entry)
text = "\n".join(lines).lstrip("\n") + "\n"
if not os.path.exists(path) or open(path).read() != text:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    print(f"container-setup: updated {path}", file=sys.stderr)
EOF
}
merge_conf

# --- 3. base image -----------------------------------------------------------------------------
image=localhost/debian:bookworm
podman_bin=$(type -P podman) || die "podman is not installed" "scripts/install-deps.sh container"
podman() { $sudo "$podman_bin" --runtime runc "$@"; }
if ! info_err=$(podman info 2>&1 >/dev/null); then
  echo "$info_err" | tail -5 >&2
  die "podman does not work on this machine (above)" "check $conf and podman info --runtime runc"
fi

if ! podman image exists "$image"; then
  # shellcheck source=/dev/null
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ "$codename" = bookworm ] || die "this machine is not Debian bookworm (${codename:-unknown})" \
    "the base image is debootstrapped from this machine's own apt source for bookworm"
  # The machine's own Debian mirror: the first active apt source (deb822 *.sources or one-line
  # *.list) that serves the suite "bookworm" itself (not -security, not -updates).
  mirror=$(/usr/bin/python3 - <<'EOF'
import glob, re
files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")) \
    + sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
for path in files:
    try:
        text = open(path).read()
    except OSError:
        continue
    if path.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for line in stanza.splitlines():
                m = re.match(r"([A-Za-z-]+):\s*(.*)", line)
                if m and not line.startswith("#"):
                    fields[m.group(1).lower()] = m.group(2).split()
            if ("deb" in fields.get("types", []) and "bookworm" in fields.get("suites", [])
                    and fields.get("enabled", ["yes"])[0] != "no" and fields.get("uris")):
                print(fields["uris"][0]); raise SystemExit
    else:
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == "bookworm":
                print(words[1]); raise SystemExit
EOF
)
  [ -n "$mirror" ] || die "no apt source for the suite bookworm in /etc/apt/sources.list{,.d/}" \
    "debootstrap needs the Debian mirror this machine's apt uses"
  rootfs=$(mktemp -d /var/tmp/statherd-bookworm.XXXXXX)
  trap '$sudo rm -rf "$rootfs" "$rootfs.log"' EXIT
  echo "container-setup: debootstrap --variant=minbase bookworm from $mirror (a few minutes)" >&2
  if ! $sudo debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
    tail -20 "$rootfs.log" >&2
    die "debootstrap from $mirror failed (log above)" "is the mirror reachable? apt-get update"
  fi
  $sudo rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  $sudo tar -C "$rootfs" -c . | podman import - "$image" >/dev/null \
    || die "podman import of the debootstrapped tree failed" "podman info --runtime runc"
fi
for tag in docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim \
           localhost/debian:bookworm-slim; do
  podman image exists "$tag" || podman tag "$image" "$tag"
done
