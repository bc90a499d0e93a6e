// Package kallsyms turns kernel text addresses (stack trace entries from a
// BPF stack map) into the kernel's call-trace form,
// "__alloc_pages_slowpath+0x1a/0x940", using /proc/kallsyms.
//
// /proc/kallsyms has 100k to 200k lines. A Go string per symbol would cost
// about 40 bytes of headers and allocations each on top of the text, so the
// table keeps every name in one string and each symbol in 16 bytes: its
// address in one sorted slice (binary search touches only that), and the
// name offset, length and module index in a parallel one.
package kallsyms
