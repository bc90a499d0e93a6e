package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStepRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int, b int64) growthSample {
		return growthSample{t0.Add(time.Duration(ms) * time.Millisecond), b}
	}
	// Flushes of 100 bytes at 0.3, 1.3, 2.3 s: 200 bytes between the first
	// and the last step, 2 s apart, whatever the window's edges.
	ss := []growthSample{at(0, 0), at(100, 0), at(300, 100), at(1300, 200), at(2300, 300), at(2900, 300)}
	if got := stepRate(ss, 3*time.Second); got != 6000 {
		t.Errorf("stepRate = %v, want 6000 B/min", got)
	}
	// One step only: growth over the whole window.
	ss = []growthSample{at(0, 0), at(500, 50), at(30000, 50)}
	if got := stepRate(ss, 30*time.Second); got != 100 {
		t.Errorf("stepRate, one step = %v, want 100 B/min", got)
	}
	if got := stepRate([]growthSample{at(0, 0), at(1000, 0)}, time.Second); got != 0 {
		t.Errorf("stepRate, no growth = %v", got)
	}
}

func TestDirGrowth(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a", 100)
	g := newDirGrowth(dir) // what is there at the start does not count
	write("a", 150)
	write("b", 40)
	if got := g.look(); got != 90 {
		t.Errorf("after growth and a new file: %d, want 90", got)
	}
	os.Remove(filepath.Join(dir, "a")) // pruned: takes nothing back
	write("b", 60)
	if got := g.look(); got != 110 {
		t.Errorf("after a removal: %d, want 110", got)
	}
}
