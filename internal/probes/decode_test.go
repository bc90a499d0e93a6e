package probes

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

var testEpoch = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func testDecoder() *Decoder {
	return &Decoder{
		Clock: func(ns uint64) time.Time { return testEpoch.Add(time.Duration(ns)) },
		Stack: func(id int32) []string { return []string{"warn_alloc+0x0/0x10", "copy_net_ns+0x5/0x20"} },
	}
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func comm(s string) (c [16]int8) {
	for i := range s {
		c[i] = int8(s[i])
	}
	return c
}

func TestDecodeAllocFail(t *testing.T) {
	var r pageallocAllocFailEvent
	r.Hdr.Type = recAllocFail
	r.Hdr.TsNs = 5000
	r.Task.Pid, r.Task.Tid, r.Task.CgroupId, r.Task.NetnsIno = 18377, 18378, 42, 4026531840
	r.Task.Comm = comm("exe")
	r.In.EnterNs, r.In.Syscall = 1000, 1
	r.Gfp, r.Order, r.Migratetype, r.StackId, r.Hook = 0x10c0d0, 6, 0, 7, 1
	ev, err := testDecoder().Decode(encode(t, &r))
	if err != nil {
		t.Fatal(err)
	}
	af, ok := ev.(*event.AllocFail)
	if !ok {
		t.Fatalf("got %T", ev)
	}
	if af.Order != 6 || af.GFP != 0x10c0d0 || af.Task.Comm != "exe" || af.Task.PID != 18377 || af.Task.TID != 18378 ||
		af.Task.CgroupID != 42 || af.Task.NetnsIno != 4026531840 || af.Hook != "tracepoint" {
		t.Errorf("decoded %+v", af)
	}
	if af.In.Syscall != "clone" || !af.In.Enter.Equal(testEpoch.Add(1000)) || !af.Time.Equal(testEpoch.Add(5000)) {
		t.Errorf("syscall ref %+v time %v", af.In, af.Time)
	}
	if len(af.Stack) != 2 {
		t.Errorf("stack %v", af.Stack)
	}
}

func TestDecodeSlabNetnsSyscall(t *testing.T) {
	var s slabcreateSlabCreateEvent
	s.Hdr.Type = recSlabCreate
	s.Size, s.Failed, s.LatencyNs = 320, 1, 900
	name := "nf_conntrack_ffff8803eef66180"
	for i := range name {
		s.Name[i] = int8(name[i])
	}
	ev, err := testDecoder().Decode(encode(t, &s))
	if err != nil {
		t.Fatal(err)
	}
	if sc := ev.(*event.SlabCreate); sc.Name != name || !sc.Failed || sc.Size != 320 || sc.Latency != 900 {
		t.Errorf("slab %+v", sc)
	}

	var n netnsNetnsCreateEvent
	n.Hdr.Type = recNetnsCreate
	n.Err = -12
	ev, err = testDecoder().Decode(encode(t, &n))
	if err != nil {
		t.Fatal(err)
	}
	if nc := ev.(*event.NetnsCreate); nc.Errno != 12 {
		t.Errorf("netns %+v", nc)
	}

	var y nssyscallNsSyscallEvent
	y.Hdr.Type, y.Hdr.TsNs = recNsSyscall, 3000
	y.Syscall, y.Ret, y.Flags, y.EnterNs = 3, -28, 0x40000000, 1000
	ev, err = testDecoder().Decode(encode(t, &y))
	if err != nil {
		t.Fatal(err)
	}
	if ns := ev.(*event.NsSyscall); ns.Syscall != "unshare" || ns.Errno != 28 || ns.Flags != 0x40000000 || ns.Latency != 2000 {
		t.Errorf("ns syscall %+v", ns)
	}
}

func TestDecodeBadInput(t *testing.T) {
	d := testDecoder()
	for _, raw := range [][]byte{nil, {9, 0, 0}, {recAllocFail, 1, 2}, {recNsSyscall}} {
		if _, err := d.Decode(raw); err == nil {
			t.Errorf("Decode(%v) succeeded", raw)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{recAllocFail})
	f.Add(make([]byte, 200))
	d := testDecoder()
	f.Fuzz(func(t *testing.T, raw []byte) {
		d.Decode(raw) // must not panic
	})
}

func TestParseHooksAndModes(t *testing.T) {
	hs, err := ParseHooks("default,alloc_fexit")
	if err != nil || len(hs) != len(DefaultHooks)+1 {
		t.Fatalf("ParseHooks = %v, %v", hs, err)
	}
	if _, err := ParseHooks("page_alloc,bogus"); err == nil {
		t.Error("unknown hook accepted")
	}
	m, err := ParseModes("page_alloc=tracepoint,kprobe")
	if err != nil {
		t.Fatal(err)
	}
	if m[HookPageAlloc] != Tracepoint || m[HookSlabCreate] != Kprobe || m[HookNetns] != Kprobe {
		t.Errorf("modes %v", m)
	}
	if _, err := ParseModes("ns_syscall=fentry"); err == nil {
		t.Error("unsupported mechanism accepted")
	}
}

// A failure_stalls record unrolls its ring oldest first once it wrapped
// (next = 10: entries 2..9), is not taken for an event, and a short one is
// an error, not a panic.
func TestDecodeFailureStalls(t *testing.T) {
	var r pageallocFailureStallsEvent
	r.Hdr.Type = recFailureStalls
	r.Hdr.TsNs = 9000
	r.Tid = 18378
	r.T.Next = 10
	for i := uint64(0); i < 10; i++ {
		e := &r.T.S[i%8]
		e.EndNs, e.DurNs, e.Kind, e.Order, e.Result = 100*(i+1), 10, 1, 6, 8
	}
	raw := encode(t, &r)
	d := testDecoder()
	fs, ok, err := d.FailureStalls(raw)
	if !ok || err != nil {
		t.Fatalf("ok %v err %v", ok, err)
	}
	if fs.TID != 18378 || !fs.At.Equal(testEpoch.Add(9000)) || len(fs.Stalls) != 8 {
		t.Fatalf("decoded %+v", fs)
	}
	if fs.Stalls[0].EndNs != 300 || fs.Stalls[7].EndNs != 1000 || fs.Stalls[0].Kind != event.StallDirectCompaction || fs.Stalls[0].Order != 6 {
		t.Errorf("ring unrolled as %+v", fs.Stalls)
	}
	if _, ok, _ := d.FailureStalls(allocFailRecord(t)); ok {
		t.Error("an alloc_fail record taken for failure_stalls")
	}
	if _, ok, err := d.FailureStalls(raw[:40]); !ok || err == nil {
		t.Errorf("short record: ok %v err %v, want an error", ok, err)
	}
	if _, err := d.Decode(raw); err == nil {
		t.Error("Decode took a failure_stalls record for an event")
	}
}

func allocFailRecord(t *testing.T) []byte {
	var r pageallocAllocFailEvent
	r.Hdr.Type = recAllocFail
	return encode(t, &r)
}

// A zone_capture record gives the kernel's zones and orders, not the
// record's bounds: the 5 zones and 11 orders of a 6.x kernel, with what
// lies past them in the record ignored; it is not taken for an event, and
// a short one is an error.
func TestDecodeZoneCapture(t *testing.T) {
	var r pageallocZoneCaptureEvent
	r.Hdr.Type = recZoneCapture
	r.Hdr.TsNs = 7000
	r.Tid, r.Node, r.NrZones, r.NrOrders = 4242, 0, 5, 11
	for i := range r.Z {
		z := &r.Z[i]
		z.FreePages = uint64(1000 * (i + 1))
		z.Wmark = [3]uint64{uint64(10 * (i + 1)), uint64(12 * (i + 1)), uint64(14 * (i + 1))}
		z.Boost = uint64(i)
		for o := range z.NrFree {
			z.NrFree[o] = uint64(100*i + o) // past order 10 and zone 4: must not show
		}
	}
	raw := encode(t, &r)
	if len(raw) != 1040 {
		t.Errorf("record is %d bytes, want 1040 (a change to struct zone_capture_event?)", len(raw))
	}
	d := testDecoder()
	zc, ok, err := d.ZoneCapture(raw)
	if !ok || err != nil {
		t.Fatalf("ok %v err %v", ok, err)
	}
	if zc.TID != 4242 || zc.Node != 0 || !zc.At.Equal(testEpoch.Add(7000)) || len(zc.Zones) != 5 {
		t.Fatalf("decoded %+v", zc)
	}
	z := zc.Zones[2]
	if z.Index != 2 || len(z.FreeBlocks) != 11 || z.FreeBlocks[10] != 210 || z.NrFree != 3000 ||
		z.Min != 30 || z.Low != 36 || z.High != 42 || z.Boost != 2 {
		t.Errorf("zone 2 decoded as %+v", z)
	}
	r.NrZones, r.NrOrders = 200, 200 // a kernel beyond the bounds: cut, not a panic
	if zc, _, err := d.ZoneCapture(encode(t, &r)); err != nil || len(zc.Zones) != len(r.Z) || len(zc.Zones[0].FreeBlocks) != len(r.Z[0].NrFree) {
		t.Errorf("oversized counts: %v, %+v", err, zc)
	}
	if _, ok, _ := d.ZoneCapture(allocFailRecord(t)); ok {
		t.Error("an alloc_fail record taken for zone_capture")
	}
	if _, ok, err := d.ZoneCapture(raw[:100]); !ok || err == nil {
		t.Errorf("short record: ok %v err %v, want an error", ok, err)
	}
	if _, err := d.Decode(raw); err == nil {
		t.Error("Decode took a zone_capture record for an event")
	}
}
