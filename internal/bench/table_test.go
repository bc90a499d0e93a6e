package bench

import (
	"math"
	"testing"
)

func TestTarget(t *testing.T) {
	cases := []struct {
		t    Target
		v    float64
		want string
	}{
		{TargetAddedNs, 14.9, "PASS"},
		{TargetAddedNs, 15, "PASS"}, // <= 15
		{TargetAddedNs, 15.1, "MISS"},
		{TargetAddedNs, -0.4, "PASS"}, // noise below zero
		{TargetIdleCPU, 0.99, "PASS"},
		{TargetIdleCPU, 1, "MISS"}, // < 1
		{TargetRSS, 50, "MISS"},
		{TargetSlowdown, math.NaN(), "n/a"},
	}
	for _, c := range cases {
		if got := c.t.Verdict(c.v); got != c.want {
			t.Errorf("%v: Verdict(%v) = %s, want %s", c.t, c.v, got, c.want)
		}
	}
	if s := TargetAddedNs.String(); s != "<= 15 ns/event" {
		t.Errorf("String = %q", s)
	}
	if s := TargetIdleCPU.String(); s != "< 1 % of a core" {
		t.Errorf("String = %q", s)
	}
	if Num(math.NaN(), 1) != "-" || Num(1.25, 1) != "1.2" || Num(-0.04, 1) != "-0.0" {
		t.Errorf("Num: %q %q %q", Num(math.NaN(), 1), Num(1.25, 1), Num(-0.04, 1))
	}
	if MiB(3<<20) != 3 {
		t.Errorf("MiB")
	}
}
