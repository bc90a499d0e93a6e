package live

import (
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/testutil"
)

// pagetypeinfo is read at start, never on intervals, and on failures at
// most once per pagetypeinfoGap; a snapshot that read it has the pageblock
// order, one that did not has 0.
func TestSnapshotPolicy(t *testing.T) {
	testutil.RequireRoot(t) // /proc/pagetypeinfo is root-only
	now := time.Unix(1000, 0)
	p := &snapshotPolicy{now: func() time.Time { return now }}
	full := func(reason string) bool {
		t.Helper()
		s, err := p.take(reason)
		if err != nil {
			t.Fatal(err)
		}
		return s.PageblockOrder > 0
	}
	steps := []struct {
		after  time.Duration
		reason string
		full   bool
	}{
		{0, "start", true},
		{0, "interval", false},
		{0, "failure", true},
		{time.Second, "failure", false}, // a storm: buddyinfo and zoneinfo only
		{3 * time.Second, "failure", false},
		{2 * time.Second, "failure", true}, // pagetypeinfoGap after the last full one
		{0, "start", true},
	}
	for i, st := range steps {
		now = now.Add(st.after)
		if got := full(st.reason); got != st.full {
			t.Errorf("step %d (%s at +%v): pagetypeinfo read = %v, want %v", i, st.reason, st.after, got, st.full)
		}
	}
}
