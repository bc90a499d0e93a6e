// Package flight is the always-on agent's flight recorder: the event stream
// written to a data directory as a series of trace segments, each a normal
// trace file that replays alone, rotated by size and age and pruned to a
// budget, so the minutes before an incident are on disk when it is noticed.
//
// A segment begins with the session's Start, the path of every live cgroup
// and the latest snapshot (its preamble), so cutting the directory anywhere
// still names every cgroup and shows free memory. Reading the directory as
// one recording (OpenDir) skips preambles that repeat what was already read.
// Pin copies a time window out as a standalone trace for an incident.
//
// The layout and the crash and disk-full behaviour are documented in
// docs/flight-recorder.md.
package flight
