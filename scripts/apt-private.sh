# apt-private.sh: sourced by kernel.sh and kernel-src.sh. apt_private NAME "SUITE COMPONENT"
# sets the array APT_O to options that give apt-get/apt-cache a private state under
# $CACHE/NAME (its own sources.list, lists and archives), so Debian suites other than the
# machine's own (trixie, trixie-backports) can be read without touching /etc/apt or
# /var/lib/apt. The archive URI and keyring are the ones the machine's debian.sources (or
# sources.list) already uses. Needs CACHE set by the caller.
apt_private() {
	local name=$1 suite=$2 src=/etc/apt/sources.list.d/debian.sources uri="" key=""
	if [ -f "$src" ]; then
		uri=$(awk '/^URIs:/{u=$2} /^Suites:/ && /(bookworm|trixie)( |$)/{print u; exit}' "$src")
		key=$(awk '/^Signed-By:/{print $2; exit}' "$src")
	fi
	[ -n "$uri" ] || uri=$(awk '$1=="deb"{for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$uri" ] || { echo "apt-private: cannot find the Debian archive URI in $src or /etc/apt/sources.list" >&2; return 1; }
	[ -n "$key" ] || key=/usr/share/keyrings/debian-archive-keyring.gpg
	mkdir -p "$CACHE/$name/lists/partial" "$CACHE/$name/archives/partial"
	echo "deb [signed-by=$key] $uri $suite" > "$CACHE/$name/sources.list"
	APT_URI=$uri
	APT_O=(-o "Dir::Etc::SourceList=$CACHE/$name/sources.list" -o Dir::Etc::SourceParts=/dev/null
	       -o "Dir::State::Lists=$CACHE/$name/lists" -o "Dir::Cache::Archives=$CACHE/$name/archives"
	       -o Dir::State::Status=/var/lib/dpkg/status -o APT::Sandbox::User=root)
}
