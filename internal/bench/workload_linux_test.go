package bench

import "testing"

func TestPopulate(t *testing.T) {
	ss, err := Populate(4<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 3 {
		t.Fatalf("got %d runs", len(ss))
	}
	for _, s := range ss {
		// Faulting 1024 pages takes CPU; a thread cannot use more CPU than wall time (plus clock granularity).
		if s.Wall <= 0 || s.CPU <= 0 || s.CPU > s.Wall+s.Wall/10+1000 {
			t.Errorf("run: %+v", s)
		}
	}
}
