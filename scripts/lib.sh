# Shared helpers for the project's scripts: output and installing what a
# script needs (each installer does nothing when the tool is already there).

section() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }

# Runs a command as root (directly, or through sudo when available).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1
  fi
}

ensure_rust() {
  command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; return 1; }
  if command -v rustup >/dev/null; then
    local have; have="$(rustup component list --installed 2>/dev/null)"
    for component in rustfmt clippy; do
      grep -q "^$component" <<<"$have" || rustup component add "$component"
    done
  fi
}

ensure_wasm_target() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
}

# The wasm-bindgen CLI must match the wasm-bindgen crate exactly: its
# version is read from the crate's `=X` pin in client-wasm/Cargo.toml, the
# one place it is written.
WASM_BINDGEN_VERSION="$(sed -nE 's/^wasm-bindgen = "=([0-9.]+)".*/\1/p' \
  "$(dirname "${BASH_SOURCE[0]}")/../client-wasm/Cargo.toml")"
ensure_wasm_bindgen() {
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
    section "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
}

# Release build of the wasm client with the size profile (opt-level z, fat
# LTO, one codegen unit, abort on panic), set for this build only so the
# workspace's release profile stays as it is.
#
# The standard library is rebuilt with `-Cpanic=immediate-abort`
# (`-Zbuild-std`, nightly only): a panic traps at once, so no panic
# message, location or formatting code reaches the module (about 4.5 KB
# gzipped as an app ships it); `-Zlocation-detail=none` drops the file
# names that `#[track_caller]` would still embed, and legacy symbol names keep
# wasm-bindgen's closure exports short. That needs one pinned nightly with
# `rust-src`, installed here once (about 20 s; the std build adds about
# 45 s). When it cannot be installed the build falls back to stable and
# says so: the module works the same but is larger. WASM_SIZE_STABLE=1
# asks for the stable build; WASM_SIZE_NIGHTLY names another nightly.
WASM_SIZE_NIGHTLY="${WASM_SIZE_NIGHTLY:-nightly-2026-05-20}"
ensure_size_nightly() {
  command -v rustup >/dev/null || return 1
  if rustup toolchain list | grep -q "^$WASM_SIZE_NIGHTLY-"; then
    local sysroot
    sysroot="$(rustup run "$WASM_SIZE_NIGHTLY" rustc --print sysroot)" &&
      [ -f "$sysroot/lib/rustlib/src/rust/library/Cargo.lock" ] && return 0
  fi
  section "installing $WASM_SIZE_NIGHTLY with rust-src for the wasm size build (once)"
  rustup toolchain install "$WASM_SIZE_NIGHTLY" --profile minimal --component rust-src --no-self-update
}

cargo_build_wasm_release() {
  local -a cargo=(cargo) extra=()
  local rustflags="${RUSTFLAGS:-}"
  if [ "${WASM_SIZE_STABLE:-0}" = 1 ]; then
    note "WASM_SIZE_STABLE=1: stable standard library (larger module)"
  elif ensure_size_nightly; then
    cargo=(cargo "+$WASM_SIZE_NIGHTLY")
    extra=(-Zbuild-std=std,panic_abort)
    rustflags="$rustflags -Zunstable-options -Cpanic=immediate-abort -Csymbol-mangling-version=legacy -Zlocation-detail=none"
  else
    echo "warning: $WASM_SIZE_NIGHTLY could not be installed: building with the stable" \
      "standard library, whose panic machinery makes the module about 6 KB gzipped larger" >&2
  fi
  CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
  CARGO_PROFILE_RELEASE_LTO=true \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
  CARGO_PROFILE_RELEASE_PANIC=abort \
  CARGO_PROFILE_RELEASE_DEBUG=false \
  RUSTFLAGS="$rustflags" \
    "${cargo[@]}" build --release --target wasm32-unknown-unknown -p logs-sse-client-wasm "${extra[@]}"
}

apt_install() {
  section "installing $*"
  as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@"
}

ensure_chromium() {
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || apt_install chromium chromium-driver
}

# The Redis backend's tests start their own redis-server on a free loopback
# port (no system service is used).
ensure_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
}

ensure_node() {
  command -v node >/dev/null && command -v npm >/dev/null || {
    echo "node and npm are needed (Node.js 18 or newer)" >&2; return 1
  }
}

# npm ci in a folder, skipped when node_modules matches the lock file.
npm_ci() {
  local dir="$1"
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || ! cmp -s "$dir/package-lock.json" "$dir/.npm-ci-stamp" 2>/dev/null; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) && cp "$dir/package-lock.json" "$dir/.npm-ci-stamp"
  fi
}

ensure_nginx() {
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx
  command -v openssl >/dev/null || apt_install openssl
}

ensure_promtool() {
  command -v promtool >/dev/null || apt_install prometheus
}
