package trace

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/procfs"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// The binary snapshot codec names every field; a field added to the
// structs must be added to the codec too.
func TestSnapshotCodecCoversEveryField(t *testing.T) {
	if n := reflect.TypeOf(snapshot.Snapshot{}).NumField(); n != snapshotFields {
		t.Errorf("snapshot.Snapshot has %d fields, the trace codec encodes %d: update internal/trace/snapshot.go", n, snapshotFields)
	}
	if n := reflect.TypeOf(snapshot.Zone{}).NumField(); n != zoneFields {
		t.Errorf("snapshot.Zone has %d fields, the trace codec encodes %d: update internal/trace/snapshot.go", n, zoneFields)
	}
}

func TestSnapshotRoundTripAllFields(t *testing.T) {
	thr, pro := 400, 20
	in := &event.MemSnapshot{Reason: "failure", Snapshot: &snapshot.Snapshot{
		Time: aggtest.At(time.Second), PageSize: 4096, PageblockOrder: 9, ExtfragThreshold: &thr,
		Compaction: &procfs.CompactionStat{CompactStall: 7, CompactFail: 3, CompactSuccess: 4,
			THPFaultFallback: 2, THPFaultFallbackCharge: 1},
		CompactionProactiveness: &pro,
		Zones: []snapshot.Zone{{
			Node: 1, Name: "Normal", FreeBlocks: []uint64{5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0},
			FreeByMigratetype: map[string][]uint64{"Unmovable": {1, 2}, "Movable": {3, 4}},
			Managed:           1000, Min: 10, Low: 12, High: 14, HaveWatermarks: true,
			NrFree: 77, Present: 1100,
			PageblocksByMigratetype: map[string]uint64{"Movable": 9, "Unmovable": 2},
			FreeByMigratetypeCapped: true,
			Protection:              []uint64{0, 0, 0, 0, 0}, FreeCMA: 4096, ReservedHighatomic: 512,
			FreeTypeLetters: []string{"UME", "M", "", "H"},
		}, {Node: 0, Name: "DMA", FreeBlocks: []uint64{}, Protection: []uint64{0, 3018, 4810}}},
	}}
	var e encoder
	e.memSnapshot(in)
	d := decoder{buf: e.buf}
	out := d.memSnapshot()
	if d.err != nil {
		t.Fatal(d.err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out.Snapshot, in.Snapshot)
	}
}

// A version-2 recording made before Protection, FreeCMA, ReservedHighatomic
// and FreeTypeLetters were appended decodes with those fields empty.
func TestSnapshotDecodesPayloadWithoutZoneExtras(t *testing.T) {
	in := &event.MemSnapshot{Reason: "interval", Snapshot: &snapshot.Snapshot{
		Time: aggtest.At(time.Second), PageSize: 4096,
		Zones: []snapshot.Zone{{Node: 0, Name: "Normal", FreeBlocks: []uint64{1, 2}, Managed: 10,
			Protection: []uint64{0, 0, 0}, FreeCMA: 3}},
	}}
	var e encoder
	e.memSnapshot(in)
	// The old writer stopped after the zones: cut the appended section,
	// which is 1 (count) + 1 (presence) + 1+3 (counts) + 1 + 1 + 1 bytes.
	old := e.buf[:len(e.buf)-9]
	d := decoder{buf: old}
	out := d.memSnapshot()
	if d.err != nil {
		t.Fatal(d.err)
	}
	z := out.Snapshot.Zones[0]
	if z.Protection != nil || z.FreeCMA != 0 || z.Managed != 10 || len(z.FreeBlocks) != 2 {
		t.Errorf("old payload decoded as %+v", z)
	}
	// Zones without any of the appended fields encode as before.
	in.Snapshot.Zones[0].Protection, in.Snapshot.Zones[0].FreeCMA = nil, 0
	var e2 encoder
	e2.memSnapshot(in)
	if !slices.Equal(e2.buf, old) {
		t.Errorf("a snapshot without the appended fields encodes to %d bytes, the old layout to %d", len(e2.buf), len(old))
	}
	// A count that does not match the zones is corruption, not old data.
	bad := append(slices.Clone(old), 7)
	d = decoder{buf: bad}
	if d.memSnapshot(); d.err == nil {
		t.Error("mismatched extras count decoded without error")
	}
}
