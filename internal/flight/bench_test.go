package flight

import (
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
)

// BenchmarkWrite measures Recorder.Write per event of an allocation-failure
// storm (4 tasks, 3 stacks, a tick every 1000 events) with the default
// segment size, rotation and pruning included.
func BenchmarkWrite(b *testing.B) {
	comms := []string{"exe", "kworker/u4:2", "java", "containerd"}
	evs := make([]event.AllocFail, 4096)
	for i := range evs {
		evs[i] = event.AllocFail{
			Task:  event.Task{PID: uint32(1000 + i%4), TID: uint32(1000 + i%4), Comm: comms[i%4], CgroupID: uint64(1001 + i%3), NetnsIno: 4026531840},
			Order: uint8(i % 7), GFP: aggtest.SeedGFP, Hook: "tracepoint", Stack: aggtest.SeedStack[i%3:],
		}
	}
	m := &model{}
	r, err := Open(Options{Dir: b.TempDir(), State: m.State})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	st := aggtest.Start()
	r.Write(st)
	m.add(st)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at := aggtest.At(time.Duration(i) * 3 * time.Microsecond)
		if i%1000 == 999 {
			r.Write(tick(at, 1))
			continue
		}
		ev := &evs[i%len(evs)]
		ev.Time = at
		if err := r.Write(ev); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	s := r.Stats()
	b.ReportMetric(float64(s.Bytes)/float64(s.Events), "bytes/event")
}
