package bench

import (
	"testing"
	"time"
)

func TestPopulate(t *testing.T) {
	ss, err := Populate(4<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 3 {
		t.Fatalf("got %d runs", len(ss))
	}
	for _, s := range ss {
		// Faulting 1024 pages takes CPU; a thread cannot use more CPU than
		// wall time, give or take the two clocks: the CPU window encloses the
		// wall one, and on this VM the thread CPU clock ran up to 95 µs past
		// a 746 µs wall window (a CI run). The check is for plausibility.
		if s.Wall <= 0 || s.CPU <= 0 || s.CPU > s.Wall+s.Wall/5+200*time.Microsecond {
			t.Errorf("run: %+v", s)
		}
	}
}
