package aggregate_test

import (
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
)

// benchTick is a busy interval: every order and migratetype counted and a
// few dozen extfrag keys, more than a real Tick carries.
func benchTick() *event.Tick {
	t := &event.Tick{Time: aggtest.At(time.Hour), Interval: time.Second, Drops: 1}
	for o := range 11 {
		for m := range 5 {
			t.Allocs[o][m] = uint64(1000 * (o + 1) * (m + 1))
		}
	}
	for i := range 32 {
		t.Extfrag = append(t.Extfrag, event.ExtfragCount{
			ExtfragKey: event.ExtfragKey{CgroupID: uint64(1000 + i%8), AllocOrder: uint8(i % 4), FallbackOrder: uint8(i % 11),
				AllocMT: uint8(i % 3), FallbackMT: uint8((i + 1) % 3), Fragmenting: i%11 < 9},
			Count: uint64(i + 1),
		})
	}
	return t
}

// benchCgroupTick is benchTick with the per-cgroup allocation counters of
// 64 cgroups, each active at several orders.
func benchCgroupTick() *event.Tick {
	t := benchTick()
	for i := range 64 {
		c := event.CgroupAlloc{CgroupID: uint64(1000 + i), HighOrder: uint64(i % 5), Failures: uint64(i % 7 / 6)}
		for o := range 11 {
			c.Unmovable[o] = uint64((i + o) % 9)
			c.Reclaimable[o] = uint64((i * o) % 4)
		}
		t.Cgroups = append(t.Cgroups, c)
	}
	return t
}

func benchFail() *event.AllocFail {
	return &event.AllocFail{
		Time: aggtest.At(time.Hour), Task: aggtest.Runc, Order: 6, GFP: aggtest.SeedGFP,
		Migratetype: aggtest.Unmovable, Stack: aggtest.SeedStack, Hook: "tracepoint",
		In: event.SyscallRef{Syscall: "clone", Enter: aggtest.At(time.Hour)},
	}
}

// BenchmarkAdd measures Add on a replay-like mix and on each hot kind
// alone. The mix is deliberately Tick-heavy (one Tick with 32 extfrag keys
// every 16 events; a real stream has one per second): mostly allocation
// failures, the event a storm produces, and the rarer kinds in between.
// Replay must sustain >= 2M events/s for decode plus this.
func BenchmarkAdd(b *testing.B) {
	var mix []event.Event
	for i := range 16 {
		switch i {
		case 0:
			mix = append(mix, benchTick())
		case 4:
			mix = append(mix, &event.NsSyscall{Time: aggtest.At(time.Hour), Task: aggtest.Runc, Syscall: "clone", Flags: 0x40000011, Errno: 12})
		case 8:
			mix = append(mix, &event.NetnsCreate{Time: aggtest.At(time.Hour), Task: aggtest.Runc, Errno: -12})
		case 12:
			mix = append(mix, &event.SlabCreate{Time: aggtest.At(time.Hour), Task: aggtest.Runc, Name: aggtest.ConntrackCache(i), Size: 320, Failed: true})
		default:
			mix = append(mix, benchFail())
		}
	}
	for _, bc := range []struct {
		name   string
		events []event.Event
	}{
		{"mix", mix},
		{"alloc_fail", []event.Event{benchFail()}},
		{"tick", []event.Event{benchTick()}},
		{"tick_cgroups", []event.Event{benchCgroupTick()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			agg := aggregate.New(nil)
			for _, ev := range aggtest.Session() {
				agg.Add(ev)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				agg.Add(bc.events[i%len(bc.events)])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
