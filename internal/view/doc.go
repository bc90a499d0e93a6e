// Package view renders a session for people (Terminal) and for programs
// (JSON). Both implement View, so a command drives either the same way:
//
//	for each event: agg.Add(ev); v.Event(ev, agg)
//	at the end:     v.Close(agg)
//
// Views read counts from the aggregator, never from the clock or from map
// order, so a replayed recording renders byte for byte as the live session
// did.
//
// The terminal view redraws a full screen at every Tick. On a tty it clears
// the screen first and always shows the stack of the newest allocation
// failure; when the output is a file or a pipe, screens are appended with a
// separator, each failure is announced in one line as it arrives, and a
// stack is printed in the screen of the interval it happened in only, so a
// log does not repeat it every interval.
//
// The JSON view writes NDJSON: one object per event, one per interval, one
// final summary, in the format documented in docs/json.md.
//
// The Top view (`fragscope top`, `replay --top`) renders only a ranking of
// cgroups at each Tick and at the end, as a table or as "top" objects.
package view
