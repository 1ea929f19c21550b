# shellcheck shell=sh
# What tools/deps, tools/demo and tools/test share (POSIX sh, sourced).
#
#   . "$(dirname "$0")/lib.sh"
#   become_root "$@"        first thing: root, or again through sudo
#   step "what" CMD ARGS... CMD's output goes to the log; one line here
#
# A fresh Debian 12 system used as root has no sudo, and a user's system has
# it: the scripts are run without "sudo" in front and take root themselves
# only when they are not root already, so "tools/demo" is the one command
# in both cases.

TOOL=${TOOL:-tools/$(basename "$0")}

# Re-runs the calling script as root through sudo unless it is root already.
# -E keeps IOVKIT_* and the proxy variables apt-get may need; IOVKIT_TOOLS_SUDO
# marks the second run, so a sudo that did not make us root stops here
# instead of calling sudo again.
become_root() {
	[ "$(id -u)" -eq 0 ] && return 0
	if [ -n "${IOVKIT_TOOLS_SUDO:-}" ]; then
		echo "$TOOL: still uid $(id -u) after sudo; run it as root" >&2
		exit 1
	fi
	if ! command -v sudo >/dev/null 2>&1; then
		echo "$TOOL: needs root (it installs Debian packages with apt-get): run it as root, or install sudo" >&2
		exit 1
	fi
	self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
	IOVKIT_TOOLS_SUDO=1
	export IOVKIT_TOOLS_SUDO
	exec sudo -E "$self" "$@"
}

# The log of apt-get, dpkg and the guest setup; appended to, so a second
# run's steps follow the first's. Relative to the repository (the scripts
# cd there).
TOOLS_LOG=${IOVKIT_TOOLS_LOG:-build/tools.log}

# step "what" CMD ARGS...: one line on the terminal ("tools/deps: what ...
# done"), everything CMD prints in $TOOLS_LOG; on failure the log's last
# lines and its name, and the script exits with CMD's status.
step() {
	what=$1
	shift
	mkdir -p "$(dirname "$TOOLS_LOG")"
	printf '%s: %s ... ' "$TOOL" "$what"
	printf '\n==== %s %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$TOOL" "$what" >>"$TOOLS_LOG"
	if "$@" >>"$TOOLS_LOG" 2>&1 </dev/null; then
		echo "done"
		return 0
	else
		rc=$?
	fi
	echo "FAILED (exit $rc)"
	echo "$TOOL: the last lines of $TOOLS_LOG:" >&2
	tail -n 25 "$TOOLS_LOG" | sed 's/^/  /' >&2
	exit "$rc"
}
