// Package probes holds the BPF objects (generated from bpf/*.bpf.c by bpf2go),
// their loaders and attachers, and the decoders of their ringbuf records.
//
// Each hook is its own object: pagealloc, extfrag, slabcreate, netns,
// nssyscall. They share the ringbuf, the drop counters, the stack map and the
// in-flight syscall map, created once by the Set and handed to every object,
// so one hook that cannot load or attach never stops the others.
package probes
