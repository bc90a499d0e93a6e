# Helpers for the vmtest guest scenarios (busybox sh). Sourced.

# say: a line on the console, prefixed with the guest's uptime (where the
# time of a boot goes).
say() { echo "vmtest: [$(cut -d' ' -f1 /proc/uptime)] $*" >/dev/console; }

# emit NAME FILE: sends FILE to the host on ttyS1, gzipped and base64'd
# between markers (internal/vmtest parses them).
emit() {
	{
		echo "=== FRAGSCOPE-VMTEST FILE $1 ==="
		gzip -c "$2" | base64
		echo "=== FRAGSCOPE-VMTEST END $1 ==="
	} >/dev/ttyS1
}

# emit_text NAME TEXT: a small result given inline.
emit_text() {
	printf '%s\n' "$2" >/tmp/emit.$$
	emit "$1" /tmp/emit.$$
	rm -f /tmp/emit.$$
}

# watch_start NAME HOOKS ATTACH [more fragscope flags]: starts
# `fragscope watch --json --record` in the background and waits until every
# hook is attached (--ready-file) or fragscope has exited.
watch_start() {
	local name=$1 hooks=$2 attach=$3 i
	shift 3
	rm -f "/tmp/$name.ready"
	say "session $name: --hooks $hooks --attach $attach $*"
	fragscope watch --json --hooks "$hooks" --attach "$attach" --ready-file "/tmp/$name.ready" \
		--record "/tmp/$name.trace" "$@" </dev/null >"/tmp/$name.ndjson" 2>"/tmp/$name.stderr" &
	WATCH_PID=$!
	i=0
	while [ ! -f "/tmp/$name.ready" ] && kill -0 "$WATCH_PID" 2>/dev/null && [ $i -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -f "/tmp/$name.ready" ] || say "session $name: fragscope not ready after $i polls"
}

# watch_stop NAME: lets one more interval pass, stops fragscope with SIGINT
# and emits its NDJSON, stderr, exit status and recording.
watch_stop() {
	local name=$1 rc
	sleep 1.5
	kill -INT "$WATCH_PID" 2>/dev/null
	rc=0
	wait "$WATCH_PID" || rc=$?
	say "session $name: fragscope exited $rc"
	echo "$rc" >"/tmp/$name.rc"
	emit "$name.ndjson" "/tmp/$name.ndjson"
	emit "$name.stderr" "/tmp/$name.stderr"
	emit "$name.rc" "/tmp/$name.rc"
	[ -f "/tmp/$name.trace" ] && emit "$name.trace" "/tmp/$name.trace"
	return 0
}

# run NAME CMD...: runs a workload step, keeps its output and status.
run() {
	local name=$1 rc
	shift
	rc=0
	"$@" </dev/null >"/tmp/$name.out" 2>&1 || rc=$?
	echo "rc=$rc" >>"/tmp/$name.out"
	say "$name: $(tr '\n' ' ' <"/tmp/$name.out")"
	emit "$name.out" "/tmp/$name.out"
}

# load_conntrack: insmod nf_conntrack and its dependencies in order
# (fetch-kernels.sh writes the order); a module already loaded is skipped.
load_conntrack() {
	local dir m
	dir=/lib/modules/$(uname -r)
	for m in $(cat "$dir/load"); do
		grep -q "^$m " /proc/modules || insmod "$dir/$m.ko" || return 1
	done
}

# run_held NAME CMD...: like run, for a workload that prints "held" once it
# has allocated what it keeps, then stays in the background (until the
# guest powers off).
run_held() {
	local name=$1 i=0 pid
	shift
	"$@" </dev/null >"/tmp/$name.out" 2>&1 &
	pid=$!
	while ! grep -q '^held' "/tmp/$name.out" && kill -0 "$pid" 2>/dev/null && [ $i -lt 1200 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if grep -q '^held' "/tmp/$name.out"; then
		echo "rc=0" >>"/tmp/$name.out"
	else
		wait "$pid"
		echo "rc=$? (exited before holding)" >>"/tmp/$name.out"
	fi
	say "$name: $(tr '\n' ' ' <"/tmp/$name.out")"
	emit "$name.out" "/tmp/$name.out"
}
