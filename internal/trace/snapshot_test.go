package trace

import (
	"reflect"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
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
	thr := 400
	in := &event.MemSnapshot{Reason: "failure", Snapshot: &snapshot.Snapshot{
		Time: aggtest.At(time.Second), PageSize: 4096, PageblockOrder: 9, ExtfragThreshold: &thr,
		Zones: []snapshot.Zone{{
			Node: 1, Name: "Normal", FreeBlocks: []uint64{5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0},
			FreeByMigratetype: map[string][]uint64{"Unmovable": {1, 2}, "Movable": {3, 4}},
			Managed:           1000, Min: 10, Low: 12, High: 14, HaveWatermarks: true,
			NrFree: 77, Present: 1100,
			PageblocksByMigratetype: map[string]uint64{"Movable": 9, "Unmovable": 2},
			FreeByMigratetypeCapped: true,
		}, {Node: 0, Name: "DMA", FreeBlocks: []uint64{}}},
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
