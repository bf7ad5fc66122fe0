#!/usr/bin/env bash
# Builds the harness's Docker images offline: no registry is needed, only Debian's package
# mirror (for the base root filesystem, via mmdebstrap) and PyPI (wheels for the reference
# backend, downloaded on the host).
#
#   .ci/images/build.sh [--force] [--rebuild-base] [all|postgres|reference|mock-clerk|python]...
#
# Images (see .ci/images/README.md):
#   clerk-harness/postgres:15               official postgres image contract, Debian's postgresql-15
#   clerk-harness/reference-backend:latest  backends/reference/ on Python 3.11 (uvicorn, port 8000)
#   clerk-harness/mock-clerk:latest         the mock-clerk release binary, FROM scratch with only
#                                           the libraries it links against and CA certificates
#   python:3.11-slim (also python:3.11)     stand-in for the official image, for backends' own
#                                           Dockerfiles (`[container] build` in a profile)
# All but mock-clerk are built FROM one shared base, clerk-harness/base:bookworm-<hash> (mmdebstrap
# minbase + postgresql-15, python3, python3-venv, ca-certificates, then `docker import`).
#
# Idempotent: an image is skipped when it exists and its label org.clerk-harness.inputs
# matches the hash of what it is built from (base, Dockerfile, scripts, app files,
# requirements, binary); --force rebuilds the images, --rebuild-base the base rootfs too.
#
# Environment:
#   MOCK_CLERK_IMAGE   the mock-clerk image's name (default clerk-harness/mock-clerk:latest;
#                      scripts/test packages its debug build as clerk-harness/mock-clerk:test)
#   MOCK_CLERK_BIN     mock-clerk binary to package (default: target/release/mock-clerk, built
#                      with `cargo build --release -p mock-clerk` first — a no-op when fresh)
#   REFERENCE_DIR      reference backend sources (default: backends/reference)
#   DEBIAN_MIRROR      default http://deb.debian.org/debian
#   PYTHON             host python used for `pip download` (default python3)
#   CLERK_HARNESS_CACHE  cache dir for the reference backend's wheels (default ~/.cache/clerk-harness)
set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

POSTGRES_IMAGE="clerk-harness/postgres:15"
REFERENCE_IMAGE="clerk-harness/reference-backend:latest"
MOCK_CLERK_IMAGE="${MOCK_CLERK_IMAGE:-clerk-harness/mock-clerk:latest}"
PYTHON_IMAGE="python:3.11-slim"
PYTHON_ALIASES=("python:3.11")
REFERENCE_VENV_CACHE="clerk-harness/reference-backend:venv-cache" # build cache of the venv stage
BASE_REPO="clerk-harness/base"
LABEL_INPUTS="org.clerk-harness.inputs"
LABEL_IMAGE="org.clerk-harness.image"

SUITE="bookworm"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_PACKAGES="ca-certificates,postgresql-15,python3,python3-venv"
# Everything that shapes the base rootfs; its hash names the base image's tag.
MMDEBSTRAP_OPTS=(
	--variant=minbase
	--include="$BASE_PACKAGES"
	--aptopt='APT::Install-Recommends "false"'
	--dpkgopt='path-exclude=/usr/share/man/*'
	--dpkgopt='path-exclude=/usr/share/info/*'
	--dpkgopt='path-exclude=/usr/share/locale/*'
	--dpkgopt='path-exclude=/usr/share/doc/*'
	--dpkgopt='path-include=/usr/share/doc/*/copyright'
	# No default cluster in /var/lib/postgresql/15/main: the entrypoint runs initdb itself.
	--essential-hook='mkdir -p "$1/etc/postgresql-common/createcluster.d" && echo "create_main_cluster = false" >"$1/etc/postgresql-common/createcluster.d/clerk-harness.conf"'
	--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin'
)
PYTHON="${PYTHON:-python3}"
WHEEL_CACHE="${CLERK_HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clerk-harness}/wheels"
REFERENCE_DIR="${REFERENCE_DIR:-$REPO_ROOT/backends/reference}"
DEFAULT_MOCK_CLERK_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/mock-clerk"

export DOCKER_BUILDKIT=0 # the engine (20.10) has no buildx: use the legacy builder explicitly

# ---------------------------------------------------------------------------------------------
START=$SECONDS
elapsed() { local s=$((SECONDS - START)); printf '%d:%02d' $((s / 60)) $((s % 60)); }
say() { printf '[images %s] %s\n' "$(elapsed)" "$*"; }
section() { printf '\n[images %s] ==== %s ====\n' "$(elapsed)" "$*"; }
die() {
	printf '\n[images %s] ERROR: %s\n' "$(elapsed)" "$1" >&2
	shift
	local line
	for line in "$@"; do printf '    %s\n' "$line" >&2; done
	exit 1
}
# Runs a command; its full output goes to a log file, and the lines matching $SHOW (a grep -E
# regex, default: every line) are shown live, indented. On failure, shows the log's last 60
# lines and dies with the given hint lines.
#   [SHOW=regex] run "what" "hint…" -- cmd args…
LOGN=0
run() {
	local what="$1"
	shift
	local hints=()
	while [ "$1" != "--" ]; do
		hints+=("$1")
		shift
	done
	shift
	local t0=$SECONDS rc=0 logf="$TMP/log.$((LOGN += 1))"
	"$@" 2>&1 | tee "$logf" | { grep -E --line-buffered "${SHOW:-.}" || :; } | sed -u 's/\x1b\[[0-9;]*m//g; s/^/    | /' || rc=$?
	if [ $rc -ne 0 ]; then
		if [ -n "${SHOW:-}" ]; then
			printf '    --- last lines of the output ---\n' >&2
			tail -n 60 "$logf" | sed 's/^/    | /' >&2
		fi
		die "$what failed (exit $rc)" "${hints[@]}"
	fi
	say "$what: done in $((SECONDS - t0)) s"
}
# Like run, but returns the command's status (after showing the log's tail) instead of dying.
run_soft() {
	local what="$1" t0=$SECONDS rc=0 logf
	shift 2 # what, --
	logf="$TMP/log.$((LOGN += 1))"
	"$@" 2>&1 | tee "$logf" | { grep -E --line-buffered "${SHOW:-.}" || :; } | sed -u 's/^/    | /' || rc=$?
	if [ $rc -ne 0 ]; then
		grep -E '^ERROR' "$logf" | head -n 5 | cut -c1-240 | sed 's/^/    | /' >&2 || :
		say "$what: failed (exit $rc)"
		return $rc
	fi
	say "$what: done in $((SECONDS - t0)) s"
}
sha() { sha256sum | cut -c1-64; }

usage() {
	sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

FORCE=0
REBUILD_BASE=0
TARGETS=()
while [ $# -gt 0 ]; do
	case "$1" in
		--force | -f) FORCE=1 ;;
		--rebuild-base) REBUILD_BASE=1 FORCE=1 ;;
		-h | --help) usage; exit 0 ;;
		all | postgres | reference | mock-clerk | python) TARGETS+=("$1") ;;
		*) die "unknown argument: $1" "expected: [--force] [--rebuild-base] [all|postgres|reference|mock-clerk|python]..." ;;
	esac
	shift
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(all)
want() {
	local t
	for t in "${TARGETS[@]}"; do
		[ "$t" = all ] || [ "$t" = "$1" ] && return 0
	done
	return 1
}

TMP="$(mktemp -d "${TMPDIR:-/tmp}/clerk-harness-images.XXXXXX")"
SMOKE_CONTAINER=""
cleanup() {
	if [ -n "$SMOKE_CONTAINER" ]; then docker rm -f -v "$SMOKE_CONTAINER" >/dev/null 2>&1 || :; fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- preflight --------------------------------------------------------------------------------
command -v docker >/dev/null || die "docker CLI not found" "install Docker (Debian: apt-get install docker.io)"
if ! docker info >/dev/null 2>&1; then
	die "the Docker daemon does not answer (docker info failed)" \
		"start it: 'dockerd >/tmp/dockerd.log 2>&1 &' (as root), or run .ci/run which starts it" \
		"check DOCKER_HOST ('${DOCKER_HOST:-unset}') and permissions on /var/run/docker.sock"
fi

# One build at a time on this machine (two sessions or two CI steps must not race).
if command -v flock >/dev/null; then
	exec 9>"${TMPDIR:-/tmp}/clerk-harness-images.lock"
	if ! flock -n 9; then
		say "another build.sh holds ${TMPDIR:-/tmp}/clerk-harness-images.lock; waiting (up to 30 min)…"
		flock -w 1800 9 || die "timed out waiting for the image build lock" "is another build.sh stuck? see: ps aux | grep build.sh"
	fi
fi

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
image_label() { docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || :; }
image_size() { docker image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1000000 }'; }
# up_to_date IMAGE HASH → 0 when the image exists with that inputs hash (and no --force).
up_to_date() {
	local image="$1" hash="$2" have
	[ "$FORCE" = 1 ] && { say "$image: --force → rebuilding"; return 1; }
	if ! image_exists "$image"; then say "$image: not present → building"; return 1; fi
	have="$(image_label "$image" "$LABEL_INPUTS")"
	if [ "$have" = "$hash" ]; then
		say "$image: up to date ($(image_size "$image"), inputs ${hash:0:12}) → skipping (--force rebuilds)"
		return 0
	fi
	say "$image: inputs changed (${have:0:12} → ${hash:0:12}) → rebuilding"
	return 1
}
# docker_build IMAGE HASH CONTEXT_DIR
docker_build() {
	local image="$1" hash="$2" ctx="$3"
	SHOW='^(Step [0-9]+/|Successfully)' run "docker build $image" \
		"see the build output above; the base image is $BASE_IMAGE" \
		"retry from scratch with: .ci/images/build.sh --rebuild-base ${image##*/}" -- \
		docker build --force-rm --pull=false \
		--build-arg "BASE=$BASE_IMAGE" \
		--label "$LABEL_INPUTS=$hash" --label "$LABEL_IMAGE=$image" \
		-t "$image" "$ctx"
	# The image this one replaced, if any, and build stages are now dangling: remove ours only.
	docker image prune -f --filter "label=$LABEL_IMAGE=$image" >/dev/null 2>&1 || :
	docker image prune -f --filter "label=org.clerk-harness.stage" >/dev/null 2>&1 || :
	say "$image: built, $(image_size "$image")"
}

# --- base rootfs --------------------------------------------------------------------------------
BASE_HASH="$(printf '%s\n' "$SUITE" "$DEBIAN_MIRROR" "${MMDEBSTRAP_OPTS[@]}" | sha)"
BASE_IMAGE="$BASE_REPO:$SUITE-${BASE_HASH:0:12}"

ensure_mmdebstrap() {
	command -v mmdebstrap >/dev/null && return 0
	say "mmdebstrap not found → installing it with apt-get"
	[ "$(id -u)" = 0 ] || die "mmdebstrap is missing and we are not root" "install it: sudo apt-get install mmdebstrap"
	command -v apt-get >/dev/null || die "mmdebstrap is missing and there is no apt-get" "install mmdebstrap (https://gitlab.mister-muffin.de/josch/mmdebstrap) by hand"
	run "apt-get update" "is Debian's mirror reachable? check /etc/apt/sources.list*" -- \
		env DEBIAN_FRONTEND=noninteractive apt-get update -q
	run "apt-get install mmdebstrap" "try by hand: apt-get install mmdebstrap" -- \
		env DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap
}

ensure_base() {
	if [ "$REBUILD_BASE" = 0 ] && image_exists "$BASE_IMAGE"; then
		say "base $BASE_IMAGE: present ($(image_size "$BASE_IMAGE")) → reusing"
		return 0
	fi
	section "base rootfs $BASE_IMAGE ($SUITE minbase + $BASE_PACKAGES)"
	ensure_mmdebstrap
	[ "$(id -u)" = 0 ] || die "building the base rootfs needs root (mmdebstrap in root mode, docker import)" "run as root"
	run "mmdebstrap" \
		"is $DEBIAN_MIRROR reachable (apt-get update on the host works)? set DEBIAN_MIRROR to another mirror" \
		"is there room in ${TMPDIR:-/tmp}? the rootfs tar is ~400 MB: df -h ${TMPDIR:-/tmp}" -- \
		mmdebstrap --quiet "${MMDEBSTRAP_OPTS[@]}" "$SUITE" "$TMP/rootfs.tar" "$DEBIAN_MIRROR"
	say "rootfs.tar: $(du -h "$TMP/rootfs.tar" | cut -f1)"
	run "docker import" "is there room in /var/lib/docker? df -h /var/lib/docker" -- \
		docker import \
		--change "LABEL $LABEL_INPUTS=$BASE_HASH" \
		--change "LABEL $LABEL_IMAGE=$BASE_REPO" \
		--change "ENV LANG=C.UTF-8" \
		--message "clerk-harness base: mmdebstrap $SUITE minbase + $BASE_PACKAGES" \
		"$TMP/rootfs.tar" "$BASE_IMAGE"
	rm -f "$TMP/rootfs.tar"
	say "base $BASE_IMAGE: $(image_size "$BASE_IMAGE")"
	# Older bases (another package list): untag them; images still built on them keep their layers.
	local old
	for old in $(docker image ls --format '{{.Repository}}:{{.Tag}}' "$BASE_REPO"); do
		if [ "$old" != "$BASE_IMAGE" ]; then docker image rm "$old" >/dev/null 2>&1 && say "removed old base $old" || :; fi
	done
}

# --- postgres -------------------------------------------------------------------------------------
build_postgres() {
	section "$POSTGRES_IMAGE"
	local src="$SCRIPT_DIR/postgres" ctx="$TMP/postgres" hash
	hash="$( (echo "$BASE_IMAGE"; cat "$src/Dockerfile" "$src/docker-entrypoint.sh") | sha)"
	up_to_date "$POSTGRES_IMAGE" "$hash" && return 0
	mkdir -p "$ctx"
	cp "$src/Dockerfile" "$src/docker-entrypoint.sh" "$ctx/"
	chmod 0755 "$ctx/docker-entrypoint.sh"
	docker_build "$POSTGRES_IMAGE" "$hash" "$ctx"
	smoke_postgres
}

# Starts the image as testcontainers would and waits for both "ready" lines.
smoke_postgres() {
	local t0=$SECONDS out err
	SMOKE_CONTAINER="$(docker run -d -e POSTGRES_PASSWORD=smoke "$POSTGRES_IMAGE" -c fsync=off)"
	local ready_line="database system is ready to accept connections"
	while :; do
		out="$(docker logs "$SMOKE_CONTAINER" 2>/dev/null | grep -c "$ready_line" || :)"
		err="$(docker logs "$SMOKE_CONTAINER" 2>&1 >/dev/null | grep -c "$ready_line" || :)"
		[ "$out" -ge 1 ] && [ "$err" -ge 1 ] && break
		if [ "$(docker inspect -f '{{.State.Running}}' "$SMOKE_CONTAINER")" != true ] || [ $((SECONDS - t0)) -gt 60 ]; then
			docker logs "$SMOKE_CONTAINER" 2>&1 | tail -n 30 | sed 's/^/    | /' >&2
			die "smoke test of $POSTGRES_IMAGE failed: no '$ready_line' on both stdout and stderr" \
				"see the container's log above; fix .ci/images/postgres/docker-entrypoint.sh and rerun with --force"
		fi
		sleep 0.3
	done
	docker exec "$SMOKE_CONTAINER" psql -U postgres -tAc 'select 1' >/dev/null ||
		die "smoke test of $POSTGRES_IMAGE: psql inside the container failed"
	docker rm -f -v "$SMOKE_CONTAINER" >/dev/null
	SMOKE_CONTAINER=""
	say "$POSTGRES_IMAGE: smoke test passed (ready on stdout and stderr in $((SECONDS - t0)) s)"
}

# --- reference backend ---------------------------------------------------------------------------
# Files of the reference backend that go into /app (no venv, caches, tests).
reference_files() {
	(cd "$REFERENCE_DIR" && find . \
		\( -name .venv -o -name venv -o -name __pycache__ -o -name .pytest_cache -o -name .mypy_cache \
		-o -name .ruff_cache -o -path ./tests \) -prune -o -type f ! -name '*.pyc' -print | LC_ALL=C sort)
}

# fetch_wheels REQUIREMENTS DEST: wheels for the image's Python (CPython 3.11, glibc 2.36,
# x86_64), downloaded on the host: the build then needs no network (a container would need the
# host's proxy CA to reach PyPI, and that CA must not end up in an image).
fetch_wheels() {
	local req="$1" dest="$2"
	mkdir -p "$dest"
	"$PYTHON" -m pip --version >/dev/null 2>&1 ||
		die "'$PYTHON -m pip' does not work on the host" "install pip for $PYTHON, or set PYTHON=/path/to/python3"
	local platforms=() v
	for v in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${v}_x86_64"); done
	platforms+=(--platform manylinux2014_x86_64)
	local target=(--python-version 3.11 --implementation cp --abi cp311 "${platforms[@]}")
	local pip=("$PYTHON" -m pip --disable-pip-version-check)
	local hint_net="does the host reach PyPI? try: $PYTHON -m pip download --no-deps -d /tmp/x six"
	local hint_ca="behind a TLS-intercepting proxy pip needs its CA: PIP_CERT=/etc/ssl/certs/ca-certificates.crt"
	if ! SHOW='x^' run_soft "pip download: wheels for cp311 manylinux x86_64 (with dependencies)" -- \
		"${pip[@]}" download --only-binary=:all: "${target[@]}" -r "$req" -d "$dest"; then
		# Some requirement has no wheel (svix 1.24.0 ships only an sdist). Fetch each pinned
		# requirement for the target (wheel, else sdist) and build the sdists into wheels on the
		# host; pip install in the image then checks that requirements.txt pins every dependency.
		say "falling back: download each requirement without resolving dependencies, build sdists into wheels on the host"
		rm -rf "$dest" && mkdir -p "$dest" "$dest.sdists"
		SHOW='^(ERROR|WARNING)' run "pip download --no-deps" "$hint_net" "$hint_ca" -- \
			"${pip[@]}" download --no-deps "${target[@]}" -r "$req" -d "$dest"
		local f
		for f in "$dest"/*.tar.gz "$dest"/*.zip; do
			if [ -e "$f" ]; then mv "$f" "$dest.sdists/"; fi
		done
		for f in "$dest.sdists"/*; do
			[ -e "$f" ] || continue
			SHOW='^(ERROR|WARNING)' run "pip wheel ${f##*/}" "$hint_net" \
				"an sdist with C code cannot be built for the image on the host: pin a version that ships a manylinux wheel" -- \
				"${pip[@]}" wheel --no-deps -w "$dest" "$f"
		done
		rm -rf "$dest.sdists"
		if ls "$dest" | grep -v -e '-none-any\.whl$' -e 'manylinux' | grep -q .; then
			die "wheels built on the host are platform-specific (not manylinux):" "$(ls "$dest" | grep -v -e '-none-any\.whl$' -e manylinux)" \
				"pin versions of these packages that ship manylinux wheels"
		fi
	fi
}

build_reference() {
	section "$REFERENCE_IMAGE"
	local src="$SCRIPT_DIR/reference-backend" ctx="$TMP/reference" req="$REFERENCE_DIR/requirements.txt" hash
	[ -d "$REFERENCE_DIR" ] || die "reference backend not found at $REFERENCE_DIR" "set REFERENCE_DIR or check out backends/reference/"
	[ -f "$req" ] || die "$req not found" "the reference backend must list its Python dependencies there (pip requirements format)"
	hash="$( (echo "$BASE_IMAGE"; cat "$src/Dockerfile" "$src/entrypoint.sh"
		cd "$REFERENCE_DIR" && reference_files | tr '\n' '\0' | xargs -0 -r sha256sum) | sha)"
	up_to_date "$REFERENCE_IMAGE" "$hash" && return 0

	mkdir -p "$ctx/app" "$ctx/wheels"
	cp "$src/Dockerfile" "$src/entrypoint.sh" "$ctx/"
	chmod 0755 "$ctx/entrypoint.sh"
	cp "$req" "$ctx/requirements.txt"
	(cd "$REFERENCE_DIR" && reference_files | tar -cf - --no-recursion -T -) | tar -xf - -C "$ctx/app"
	say "app files: $(reference_files | wc -l) from ${REFERENCE_DIR#"$REPO_ROOT"/}"

	# Wheels: from the cache when requirements.txt is unchanged, else downloaded on the host.
	local wkey wcache
	wkey="$( (echo wheels-v1 cp311 manylinux_2_36_x86_64; cat "$ctx/requirements.txt") | sha)"
	wcache="$WHEEL_CACHE/${wkey:0:16}"
	if [ "$FORCE" = 0 ] && [ -f "$wcache/.complete" ]; then
		cp -a "$wcache/." "$ctx/wheels/" && rm -f "$ctx/wheels/.complete"
		say "wheels: reusing the cache $wcache"
	else
		fetch_wheels "$ctx/requirements.txt" "$ctx/wheels"
		# Keep one set of wheels: the one for the current requirements.
		if mkdir -p "$WHEEL_CACHE" 2>/dev/null; then
			rm -rf "$WHEEL_CACHE"/* && cp -a "$ctx/wheels" "$wcache.tmp" && touch "$wcache.tmp/.complete" &&
				mv "$wcache.tmp" "$wcache" || say "warning: could not write the wheel cache $wcache"
		fi
	fi
	say "wheels: $(ls "$ctx/wheels" | wc -l) files, $(du -sh "$ctx/wheels" | cut -f1)"

	# The venv stage, tagged so that it stays in the build cache: when only the app's files
	# change, the next build reuses it instead of reinstalling every wheel.
	SHOW='^(Step [0-9]+/|Successfully)' run "docker build (venv stage) $REFERENCE_VENV_CACHE" \
		"see the build output above (pip install --no-index from the downloaded wheels)" -- \
		docker build --force-rm --pull=false --target venv --build-arg "BASE=$BASE_IMAGE" \
		-t "$REFERENCE_VENV_CACHE" "$ctx"
	docker_build "$REFERENCE_IMAGE" "$hash" "$ctx"
	run "smoke test (uvicorn importable, update-ca-certificates present)" \
		"the venv in $REFERENCE_IMAGE is broken: rebuild with --force and read the pip output" -- \
		docker run --rm --entrypoint sh "$REFERENCE_IMAGE" -c \
		'python -c "import sys, uvicorn; print(sys.version.split()[0], \"uvicorn\", uvicorn.__version__)" && command -v update-ca-certificates'
}

# --- mock-clerk ---------------------------------------------------------------------------------------
build_mock_clerk() {
	section "$MOCK_CLERK_IMAGE"
	local src="$SCRIPT_DIR/mock-clerk" ctx="$TMP/mock-clerk" bin="${MOCK_CLERK_BIN:-}" hash
	if [ -z "$bin" ]; then
		bin="$DEFAULT_MOCK_CLERK_BIN"
		command -v cargo >/dev/null || die "cargo not found: cannot build $bin" "install Rust, or set MOCK_CLERK_BIN=/path/to/mock-clerk"
		SHOW='^(error|\s*(Finished|Compiling mock-clerk))' run "cargo build --release -p mock-clerk" \
			"fix the build error above, or set MOCK_CLERK_BIN=/path/to/a/prebuilt/mock-clerk" -- \
			bash -c "cd '$REPO_ROOT' && cargo build --release -p mock-clerk"
	fi
	[ -f "$bin" ] || die "mock-clerk binary not found: $bin" \
		"build it: cargo build --release -p mock-clerk (the crate must have a [[bin]] named mock-clerk)" \
		"or set MOCK_CLERK_BIN=/path/to/mock-clerk"
	[ "$(head -c 4 "$bin" | od -An -c | tr -d ' ')" = '177ELF' ] || die "$bin is not an ELF executable"
	# The shared libraries the binary links against, as the build host resolves them (the
	# binary was linked there): ldd's absolute paths, the dynamic loader included.
	local libs
	libs="$(ldd "$bin" | grep -o '/[^ ]*' | LC_ALL=C sort -u)" || die "ldd $bin failed"
	local missing
	missing="$(ldd "$bin" | grep 'not found' || :)"
	[ -z "$missing" ] || die "$bin needs shared libraries this host lacks:" "$missing"
	local ca=/etc/ssl/certs/ca-certificates.crt
	[ -f "$ca" ] || die "$ca not found on the host" "install Debian's ca-certificates package (apt-get install ca-certificates)"
	hash="$( (echo scratch-v1; cat "$src/Dockerfile"; sha256sum <"$bin"; for l in $libs; do echo "$l"; sha256sum <"$l"; done; sha256sum <"$ca") | sha)"
	up_to_date "$MOCK_CLERK_IMAGE" "$hash" && return 0
	mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/tmp"
	chmod 1777 "$ctx/rootfs/tmp"
	cp "$src/Dockerfile" "$ctx/"
	cp "$bin" "$ctx/rootfs/usr/local/bin/mock-clerk"
	chmod 0755 "$ctx/rootfs/usr/local/bin/mock-clerk"
	local l
	for l in $libs; do cp -L --parents "$l" "$ctx/rootfs/"; done
	cp -L "$ca" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
	say "binary: $bin ($(du -h "$bin" | cut -f1)); libraries: $(echo $libs); root filesystem $(du -sh "$ctx/rootfs" | cut -f1)"
	docker_build "$MOCK_CLERK_IMAGE" "$hash" "$ctx"
	run "smoke test (the binary starts in the image: its libraries resolve)" \
		"the image lacks a library the binary needs: see the output above" -- \
		docker run --rm "$MOCK_CLERK_IMAGE" --version
}

# --- python:3.11-slim stand-in ---------------------------------------------------------------------
build_python() {
	section "$PYTHON_IMAGE (stand-in for the official image)"
	local src="$SCRIPT_DIR/python" ctx="$TMP/python" hash alias
	hash="$( (echo "$BASE_IMAGE"; cat "$src/Dockerfile") | sha)"
	if ! up_to_date "$PYTHON_IMAGE" "$hash"; then
		mkdir -p "$ctx"
		cp "$src/Dockerfile" "$ctx/"
		docker_build "$PYTHON_IMAGE" "$hash" "$ctx"
		run "smoke test (python, pip)" "the venv in $PYTHON_IMAGE is broken: rebuild with --force" -- \
			docker run --rm "$PYTHON_IMAGE" sh -c 'python --version && pip --version'
	fi
	for alias in "${PYTHON_ALIASES[@]}"; do docker tag "$PYTHON_IMAGE" "$alias"; done
}

# --- main -------------------------------------------------------------------------------------------
say "targets: ${TARGETS[*]}; repo: $REPO_ROOT; temp: $TMP"
# Fail early on a missing input before spending minutes on the base.
if want reference; then
	[ -f "$REFERENCE_DIR/requirements.txt" ] || die "$REFERENCE_DIR/requirements.txt not found" \
		"the reference backend must list its Python dependencies there; build other images with: .ci/images/build.sh postgres mock-clerk"
fi
# mock-clerk is FROM scratch: it alone needs no base.
if want postgres || want reference || want python; then ensure_base; fi
want postgres && build_postgres
want reference && build_reference
want mock-clerk && build_mock_clerk
want python && build_python

section "summary ($(elapsed))"
for image in "$BASE_IMAGE" "$POSTGRES_IMAGE" "$REFERENCE_IMAGE" "$MOCK_CLERK_IMAGE" "$PYTHON_IMAGE"; do
	if image_exists "$image"; then
		printf '    %-42s %8s  %s\n' "$image" "$(image_size "$image")" "$(docker image inspect --format '{{.Created}}' "$image" | cut -c1-19)"
	else
		printf '    %-42s %8s\n' "$image" "absent"
	fi
done
echo "    (sizes include the shared base layer, stored once)"
