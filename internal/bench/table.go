package bench

import (
	"fmt"
	"math"
)

// Target is a goal a measurement is printed against.
type Target struct {
	Limit  float64
	Strict bool // value must be < Limit; otherwise <= Limit
	Unit   string
}

// String renders the target as "<= 15 ns" or "< 1 %".
func (t Target) String() string {
	op := "<="
	if t.Strict {
		op = "<"
	}
	return fmt.Sprintf("%s %g %s", op, t.Limit, t.Unit)
}

// Verdict is PASS or MISS for a measured value, "n/a" for none (NaN).
func (t Target) Verdict(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case t.Strict && v < t.Limit, !t.Strict && v <= t.Limit:
		return "PASS"
	default:
		return "MISS"
	}
}

// The targets the overhead benchmark reports against.
var (
	TargetAddedNs  = Target{Limit: 15, Unit: "ns/event"}
	TargetSlowdown = Target{Limit: 2, Unit: "%"}
	TargetIdleCPU  = Target{Limit: 1, Strict: true, Unit: "% of a core"}
	TargetRSS      = Target{Limit: 50, Strict: true, Unit: "MiB"}
)

// Num formats a measurement with the given decimals, "-" for NaN.
func Num(v float64, decimals int) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.*f", decimals, v)
}

// MiB converts bytes to mebibytes.
func MiB(b uint64) float64 { return float64(b) / (1 << 20) }

// The targets the agent benchmark (cmd/agent) reports against: a node
// agent left running everywhere must cost next to nothing when idle and
// answer a scrape well inside Prometheus' default 10 s timeout even with a
// node's worth of cgroups.
var (
	TargetAgentIdleCPU = Target{Limit: 0.5, Strict: true, Unit: "% of a core"}
	TargetAgentRSS     = Target{Limit: 64, Strict: true, Unit: "MiB"}
	TargetAgentScrape  = Target{Limit: 50, Strict: true, Unit: "ms"}
)
