// Package tracefs finds (and if needed mounts) tracefs and parses the format
// files of trace events, whose record layout differs across kernels: the
// classic tracepoint programs read fields at the offsets given here.
package tracefs
