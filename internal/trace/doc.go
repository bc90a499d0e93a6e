// Package trace writes and reads fragscope recordings: a versioned stream
// of framed records (length, CRC-32C, kind, payload) holding every event a
// live session produced, each kernel stack symbolized once, so a recording
// replays on any machine through the same aggregator and views.
//
// The format is documented in docs/trace-format.md. Framing makes a file
// cut short by SIGKILL or a full disk readable up to its last complete
// record; the reader reports where and why it stopped instead of failing.
package trace
