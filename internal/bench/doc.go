// Package bench measures what running fragscope costs the machine it traces.
//
// The overhead benchmark (cmd/overhead, run by `make bench`) times a workload
// whose page allocations are known, mmap of anonymous memory with
// MAP_POPULATE and THP disabled so that every populated 4 KiB page is one
// kmem:mm_page_alloc event, with and without `fragscope watch` attached
// through each mechanism (raw_tp, tp_btf, classic tracepoint). Baseline and
// traced runs are interleaved in rounds so that drift of the machine (other
// load, frequency, memory state) falls on all of them alike; results are
// medians, and each traced round is compared with the baseline of its own
// round. Every run is timed by the wall clock and by the workload thread's
// CPU clock (the faults run in that thread, in the kernel, BPF included), as
// the latter is less disturbed by other load; CPU pressure (PSI) over the
// runs is reported so a reader can tell a busy machine. Each workload child
// starts with an untimed run, so that all conditions start equally warm.
//
// The number of events is counted by fragscope itself, from the order-0
// allocation counts of its JSON interval objects (docs/json.md): the
// workload starts right after a Tick and the tracer is stopped right after
// it, so the counted intervals hug it (the count is system-wide, so other
// processes' allocations in that window are included).
//
// It also measures the idle cost of a running tracer: CPU time from
// /proc/<pid>/stat (utime+stime) over wall time, and peak RSS (VmHWM in
// /proc/<pid>/status).
//
// The pure parts (procfs parsing, medians, ns-per-event arithmetic, reading
// fragscope's output, the verdict table) are here and unit-tested; the
// workload is in workload_linux.go. Benchmarks report, they do not gate: a
// missed target is printed as MISS, never turned into a failing exit code.
//
// The agent benchmark (cmd/agent, also run by `make bench`) measures one
// `fragscope agent` in rounds of an idle and a packet-ring load window: its
// CPU and memory, the flight recorder's growth and the events it counted,
// with the machine's CPU split (/proc/stat, PSI) and the host's own
// incidents beside each window, since on a shared machine those, not the
// agent, decide most of the noise; then the time of a /metrics scrape with
// thousands of real cgroups known.
package bench
