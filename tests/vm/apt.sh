# tests/vm/apt.sh — sourced by tests/vm/setup and tests/vm/build-kernel (which
# define say()): enabling bookworm-backports, where the VM tier takes a newer
# QEMU (igb) and the 6.12 kernel source from when bookworm's suites lack them.

# Adds <codename>-backports on the host of the Debian mirror already in use.
enable_backports() {
    local codename uri
    codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
    [[ $codename == bookworm ]] || return 1
    if grep -rqs -- "$codename-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        return 0
    fi
    # The first configured URI of the main archive (not -security, not -ports).
    uri=$( { grep -hsE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                 | sed -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/'
             grep -hsE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources \
                 | sed -E 's/^[[:space:]]*URIs:[[:space:]]*//' | tr ' ' '\n'
           } | grep -E '^(https?|file)://.*/debian/?$' | head -n1)
    [[ -n $uri ]] || return 1
    local opts=
    # the keyring the deb822 sources of Debian 12 name, when present
    [[ ! -r /usr/share/keyrings/debian-archive-keyring.gpg ]] ||
        opts="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
    say "enabling $codename-backports (${uri%/}) in /etc/apt/sources.list.d/iovkit-backports.list"
    echo "deb $opts${uri%/} $codename-backports main" >/etc/apt/sources.list.d/iovkit-backports.list
    apt-get update >&2 || return 1
}
