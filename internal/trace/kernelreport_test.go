package trace

import (
	"bytes"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// A kernel_report record and a duplicate alloc_fail round-trip; a
// non-duplicate alloc_fail is encoded as before the field existed.
func TestKernelReportRoundTrip(t *testing.T) {
	at := time.Date(2017, 11, 12, 15, 15, 41, 0, time.UTC)
	kr := &event.KernelReport{Time: at, Task: event.Task{PID: 18377, TID: 18377, Comm: "exe"},
		ReportKind: "page_alloc_failure", Header: "exe: page allocation failure: order:6, mode:0x10c0d0",
		Source: "kern.log", FirstLine: 25, LastLine: 86, Order: 6, GFP: 0x10c0d0, HaveGFP: true,
		Trace: []string{"warn_alloc_failed+0x110/0x180"}, HaveMemInfo: true, More: true,
		OOM: &event.OOM{Constraint: "CONSTRAINT_MEMCG", Counters: []event.MemcgCounter{{Name: "memory", UsageKB: 1, LimitKB: 1}}}}
	dup := &event.AllocFail{Time: at, Task: kr.Task, Order: 6, GFP: 0x10c0d0, Migratetype: -1, Hook: "kmsg", Duplicate: true}
	plain := *dup
	plain.Duplicate = false

	var e1, e2 encoder
	e1.allocFail(&plain, 0)
	e2.allocFail(dup, 0)
	if !bytes.Equal(e2.buf[:len(e1.buf)], e1.buf) || len(e2.buf) != len(e1.buf)+1 {
		t.Errorf("a duplicate's payload must be the plain one plus one byte: %x, %x", e1.buf, e2.buf)
	}

	r := writeRead(t, kr, dup, &plain)
	ev, err := r.Next()
	if err != nil || !reflect.DeepEqual(ev, kr) {
		t.Fatalf("kernel_report read back as %+v (%v)", ev, err)
	}
	for _, want := range []bool{true, false} {
		ev, err = r.Next()
		if af, ok := ev.(*event.AllocFail); err != nil || !ok || af.Duplicate != want {
			t.Fatalf("alloc_fail read back as %+v (%v), want duplicate %v", ev, err, want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("want the end, got %v", err)
	}
}
