package trace

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
)

// stormTrace is an allocation-failure storm: n failures from a few tasks
// with one of a few stacks, a Tick every 1000 events.
func stormTrace(b *testing.B, n int) []byte {
	evs := []event.Event{aggtest.Start(), aggtest.Snapshot(aggtest.At(0), "start")}
	comms := []string{"exe", "kworker/u4:2", "java", "containerd"}
	for i := 0; i < n; i++ {
		at := aggtest.At(time.Duration(i) * 3 * time.Microsecond)
		evs = append(evs, &event.AllocFail{
			Time:  at,
			Task:  event.Task{PID: uint32(1000 + i%4), TID: uint32(1000 + i%4), Comm: comms[i%4], CgroupID: uint64(1001 + i%3), NetnsIno: 4026531840},
			Order: uint8(i % 7), GFP: aggtest.SeedGFP, Migratetype: 0, Hook: "tracepoint",
			Stack: aggtest.SeedStack[i%3:],
		})
		if i%1000 == 999 {
			tk := &event.Tick{Time: at, Interval: time.Second}
			tk.Allocs[0][1] = 123456
			evs = append(evs, tk)
		}
	}
	_, buf := record(b, evs)
	return buf
}

// BenchmarkReplay measures decode + aggregate on one core: the replay path.
func BenchmarkReplay(b *testing.B) {
	const n = 200000
	buf := stormTrace(b, n)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	events := 0
	for i := 0; i < b.N; i++ {
		r, err := NewReader(bytes.NewReader(buf))
		if err != nil {
			b.Fatal(err)
		}
		agg := aggregate.New(nil)
		for {
			ev, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			agg.Add(ev)
			events++
		}
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(len(buf))/float64(n), "bytes/event")
}

// BenchmarkRecord measures the recorder's cost per event.
func BenchmarkRecord(b *testing.B) {
	ev := &event.AllocFail{Time: aggtest.At(0), Task: event.Task{PID: 1, TID: 1, Comm: "exe"}, Order: 6, GFP: aggtest.SeedGFP, Hook: "tracepoint", Stack: aggtest.SeedStack}
	w, err := Create(b.TempDir() + "/b.fst")
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ev.Time = ev.Time.Add(time.Microsecond)
		if err := w.Write(ev); err != nil {
			b.Fatal(err)
		}
	}
}
