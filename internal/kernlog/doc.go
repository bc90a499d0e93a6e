// Package kernlog turns the kernel's own reports (internal/kmsg) into the
// events every other source produces, so a kernel log runs through the one
// pipeline: a file or stdin for `fragscope explain`, /dev/kmsg beside the
// BPF hooks for watch, record and agent.
//
// Per log a Start names the kernel (from the reports' "CPU: ... Comm:"
// line), its gfp table and migratetypes, and a synthetic "kmsg" hook, the
// only one attached. Per report come, in this order: an AllocFail (Hook
// "kmsg") for a page allocation failure, a "failure" MemSnapshot of its
// Mem-Info, a failed SlabCreate for a kmem_cache_create failure, and a
// KernelReport, which closes the incident of that task in the correlator.
// Reports of one failure (a kmem_cache_create failure before or after the
// page allocation failure under it, the caller's own "Unable to create
// nf_conn slab cache", a SLUB line) are grouped first: all but the last
// KernelReport of a group say More, so the group ends in one incident.
//
// Times: the log's wall clock when its prefix has one (syslog, journalctl,
// dmesg -T; a date without a year is put in Epoch's year unless told the
// year), else the printk uptime after Epoch (a fixed, documented
// anchor: the log does not say when the machine booted), else the time of
// the report before. Live, uptime is anchored at the boot time, as the BPF
// events' CLOCK_MONOTONIC stamps are.
package kernlog
