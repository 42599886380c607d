#!/bin/sh
# System set-up for edgekit's CI (called by .ci/run; idempotent, safe to rerun).
#  - Debian packages: qemu-user-static + debootstrap (emulated ARM64), OpenSSH server/client
#    (the SSH-board test starts its own sshd on 127.0.0.1), chromium (HTML report test).
#  - the ARM64 sysroot (Debian bookworm arm64 python3.11 + aarch64 onnxruntime/numpy wheels)
#    via `edgekit devices setup arm64-qemu`, cached in $EDGEKIT_SYSROOT
#    (default ~/.cache/edgekit/arm64-sysroot); a rerun with the cache present takes a second.
# Needs root (apt-get, debootstrap), the Debian mirror in /etc/apt/sources* and PyPI.
set -eu
cd "$(dirname "$0")/.."

need=""
for pair in qemu-aarch64-static:qemu-user-static debootstrap:debootstrap /usr/sbin/sshd:openssh-server \
            ssh:openssh-client ssh-keygen:openssh-client scp:openssh-client dpkg-deb:dpkg chromium:chromium; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || [ -x "$cmd" ] || need="$need $pkg"
done
if [ -n "$need" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need
fi
mkdir -p /run/sshd  # sshd's privilege-separation folder (the test starts sshd itself)

# The ARM64 sysroot; skipped quickly when already provisioned.
python -m edgekit devices setup arm64-qemu
