// Package source produces the event stream the aggregator and views consume.
// Live reads the BPF ringbuf and polls the in-kernel counters and procfs; a
// trace reader (replay) implements the same event.Source interface.
package source
