// Package kmsg finds and reads the kernel's allocation-failure reports in a
// log: page allocation failures (warn_alloc, warn_alloc_failed before 4.9),
// OOM-killer reports (dump_header, mem_cgroup_print_oom_info), slab cache
// creation failures (kmem_cache_create, and the caller's own "Unable to create
// nf_conn slab cache"), SLUB/SLAB "Unable to allocate memory", vmalloc
// failures and "N callbacks suppressed" lines, each with its call trace and
// its own Mem-Info dump (show_mem/show_free_areas).
//
// Logs reach people in many shapes, and the parser reads them all without
// being told which: bare dmesg, printk timestamps with caller ids, dmesg -T,
// syslog and journalctl prefixes (with #012 folding), /dev/kmsg records,
// Android logcat and vendor prefixes, mail quoting at any depth,
// quoted-printable soft breaks, lines wrapped at 72-80 columns (also inside a
// header or a free-list line), two CPUs printing into each other, elisions and
// Markdown that ate the '*' of "12*4kB". A line it cannot read costs that
// line, never the file: the report keeps what was read and lists the rest in
// Report.Unreadable.
//
// Parse reads a whole file; Parser is the same machine fed line by line, for
// a live source (/dev/kmsg) that must see a report as soon as it is complete.
// Reports come out in the order their first line appears in the input. The
// package interprets nothing: it reads numbers, and the verdicts are made by
// the consumer (a kmem_cache_create failure and the page allocation failure
// under it are two reports, in the order the kernel printed them).
//
// Formats follow mm/page_alloc.c (warn_alloc, show_free_areas up to 6.0),
// mm/show_mem.c (6.1+), mm/oom_kill.c (dump_header), mm/memcontrol.c,
// mm/slab_common.c, mm/slub.c, mm/slab.c, mm/vmalloc.c and
// kernel/printk/printk.c, from 2.6.32 to 6.x.
package kmsg
