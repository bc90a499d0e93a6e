package bench

import (
	"math"
	"testing"
)

// From 6.18: the aggregate line, then per-CPU lines the parser must skip.
const procStat = `cpu  1000 10 500 8000 20 5 15 450 0 0
cpu0 500 5 250 4000 10 2 8 225 0 0
intr 1 2 3
`

func TestParseSysCPU(t *testing.T) {
	c, err := ParseSysCPU(procStat)
	if err != nil {
		t.Fatal(err)
	}
	want := SysCPU{User: 1000, Nice: 10, System: 500, Idle: 8000, IOWait: 20, IRQ: 5, SoftIRQ: 15, Steal: 450}
	if c != want {
		t.Errorf("ParseSysCPU = %+v, want %+v", c, want)
	}
	if c.Total() != 10000 {
		t.Errorf("Total = %d", c.Total())
	}
	for _, bad := range []string{"", "cpu 1 2 3\n", "cpu  1 2 x 4 5 6 7 8\n"} {
		if _, err := ParseSysCPU(bad); err == nil {
			t.Errorf("ParseSysCPU(%q): no error", bad)
		}
	}
}

func TestShare(t *testing.T) {
	a := SysCPU{User: 100, Idle: 100}
	b := SysCPU{User: 130, System: 10, Idle: 150, IOWait: 2, Steal: 8}
	s := Share(a, b)
	if s.Busy != 40 || s.Idle != 50 || s.IOWait != 2 || s.Steal != 8 {
		t.Errorf("Share = %+v", s)
	}
	if !math.IsNaN(Share(a, a).Idle) {
		t.Errorf("Share over no ticks is not NaN")
	}
}
