package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Counts is what the benchmark reads from one "interval" or "summary"
// object of `fragscope watch --json` (internal/view/json.go, docs/json.md):
// its time span and the successful allocations it counted, in total and of
// order 0 (one 4 KiB page, the workload's unit).
type Counts struct {
	Type   string
	Begin  time.Time
	End    time.Time // the object's "time"
	Allocs uint64
	Order0 uint64
}

type jsonCounts struct {
	Type   string `json:"type"`
	Time   string `json:"time"`
	Begin  string `json:"begin"`
	Allocs uint64 `json:"allocs"`
	Orders []struct {
		Order  int    `json:"order"`
		Allocs uint64 `json:"allocs"`
	} `json:"orders"`
}

// ParseCounts decodes one NDJSON line. ok is false, with no error, for
// objects that are not "interval" or "summary" (start, snapshots, events).
func ParseCounts(line []byte) (c Counts, ok bool, err error) {
	var j jsonCounts
	if err := json.Unmarshal(line, &j); err != nil {
		return c, false, fmt.Errorf("fragscope json: %w", err)
	}
	if j.Type != "interval" && j.Type != "summary" {
		return c, false, nil
	}
	c.Type, c.Allocs = j.Type, j.Allocs
	if c.Begin, err = time.Parse(time.RFC3339Nano, j.Begin); err != nil {
		return c, false, fmt.Errorf("fragscope json: %s begin: %w", j.Type, err)
	}
	if c.End, err = time.Parse(time.RFC3339Nano, j.Time); err != nil {
		return c, false, fmt.Errorf("fragscope json: %s time: %w", j.Type, err)
	}
	for _, o := range j.Orders {
		if o.Order == 0 {
			c.Order0 += o.Allocs
		}
	}
	return c, true, nil
}

// ReadCounts reads a whole `fragscope watch --json` stream and returns its
// interval and summary objects in order.
func ReadCounts(r io.Reader) ([]Counts, error) {
	var out []Counts
	err := ScanCounts(r, func(c Counts) { out = append(out, c) })
	return out, err
}

// ScanCounts reads a `fragscope watch --json` stream as it is written and
// calls fn with each interval and summary object. Lines that are not JSON
// objects are an error: stdout carries nothing else.
func ScanCounts(r io.Reader, fn func(Counts)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20) // snapshot objects can be long
	for sc.Scan() {
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		c, ok, err := ParseCounts(line)
		if err != nil {
			return err
		}
		if ok {
			fn(c)
		}
	}
	return sc.Err()
}

// Order0Since sums the order-0 allocations of the interval objects that end
// after since: the intervals overlapping a window that began at since and
// lasted until the tracer stopped (its final interval covers the partial
// last one), and how many intervals that was (0: nothing to count from).
func Order0Since(cs []Counts, since time.Time) (n uint64, intervals int) {
	for _, c := range cs {
		if c.Type == "interval" && c.End.After(since) {
			n += c.Order0
			intervals++
		}
	}
	return n, intervals
}

// Attach is one line of fragscope's attach report on stderr.
type Attach struct {
	Hook      string
	Attached  bool
	Mechanism string // when attached
	Reason    string // when not
}

// ParseAttachReport picks the attach report lines out of fragscope's
// stderr: "fragscope: <hook> attached via <mechanism> <target>" and
// "fragscope: <hook> NOT attached: <reason>" (cmd/fragscope printAttachReport).
func ParseAttachReport(stderr string) map[string]Attach {
	out := map[string]Attach{}
	for _, line := range strings.Split(stderr, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "fragscope:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		switch {
		case len(f) >= 4 && f[1] == "attached" && f[2] == "via":
			out[f[0]] = Attach{Hook: f[0], Attached: true, Mechanism: f[3]}
		case len(f) >= 3 && f[1] == "NOT" && strings.HasPrefix(f[2], "attached"):
			_, reason, _ := strings.Cut(rest, "attached:")
			out[f[0]] = Attach{Hook: f[0], Reason: strings.TrimSpace(reason)}
		}
	}
	return out
}
