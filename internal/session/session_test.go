package session_test

import (
	"reflect"
	"testing"

	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/session"
)

// TestCloneSnapshotCoversFields fails when snapshot.Zone or Snapshot gain a
// field that shares memory: cloneSnapshot must then copy it too.
func TestCloneSnapshotCoversFields(t *testing.T) {
	known := map[string]bool{
		"Snapshot.Zones": true, "Snapshot.ExtfragThreshold": true,
		"Snapshot.Compaction": true, "Snapshot.CompactionProactiveness": true,
		"Zone.FreeBlocks": true, "Zone.FreeByMigratetype": true, "Zone.PageblocksByMigratetype": true,
		"Zone.Protection": true, "Zone.FreeTypeLetters": true,
	}
	ms := aggtest.Snapshot(aggtest.T0, "start")
	for _, typ := range []reflect.Type{reflect.TypeOf(*ms.Snapshot), reflect.TypeOf(ms.Snapshot.Zones[0])} {
		for f := range typ.Fields() {
			switch f.Type.Kind() {
			case reflect.Slice, reflect.Map, reflect.Pointer:
				if !known[typ.Name()+"."+f.Name] {
					t.Errorf("%s.%s shares memory and cloneSnapshot does not copy it", typ.Name(), f.Name)
				}
			}
		}
	}
}

// A kept snapshot must not change when the source reuses the one it emitted.
func TestSnapshotIsPrivateCopy(t *testing.T) {
	s := session.New()
	ms := aggtest.Snapshot(aggtest.T0, "failure")
	s.Add(ms)
	ms.Snapshot.Zones[0].FreeBlocks[0] = 12345
	got := s.FailureSnapshot()
	if got.MemSnapshot == nil || got.Seq != 1 {
		t.Fatalf("failure snapshot = %+v, want the first event", got)
	}
	if got.Snapshot.Zones[0].FreeBlocks[0] == 12345 {
		t.Error("the kept snapshot shares the source's buffers")
	}
	if s.Snapshot().MemSnapshot != got.MemSnapshot {
		t.Error("the latest snapshot is not the failure one just added")
	}
}

// One naming of migratetypes and cgroups for every consumer.
func TestNamesAndCgroups(t *testing.T) {
	s := session.New()
	if got := s.FormatGFP(0xcc0); got != "0xcc0" {
		t.Errorf("FormatGFP before Start = %q, want the number", got)
	}
	if !s.Attached("page_alloc") {
		t.Error("before Start every hook must count as attached")
	}
	s.Add(&event.Start{Time: aggtest.T0, Migratetypes: []string{"Unmovable", "Movable", ""},
		Hooks: []event.HookStatus{{Hook: "ns_syscall", Attached: true}, {Hook: "netns", Reason: "no kprobes"}}})
	for mt, want := range map[int]string{-1: "unknown", 0: "Unmovable", 2: "mt2", 9: "mt9"} {
		if got := s.MigratetypeName(mt); got != want {
			t.Errorf("MigratetypeName(%d) = %q, want %q", mt, got, want)
		}
	}
	if s.Attached("netns") || !s.Attached("ns_syscall") || s.Attached("page_alloc") {
		t.Error("Attached does not follow Start.Hooks")
	}
	if hs := s.Hooks(); len(hs) != 2 || hs[0].Hook != "netns" {
		t.Errorf("Hooks() = %+v, want sorted by name", hs)
	}
	s.Add(&event.CgroupPath{Time: aggtest.T0, ID: 7, Path: "/kubepods.slice/kubepods-pod1234.slice/cri-containerd-abcd.scope", PodName: "web", PodNamespace: "prod"})
	s.Add(&event.CgroupPath{Time: aggtest.T0, ID: 8, Path: "/system.slice"})
	s.Add(&event.CgroupPath{Time: aggtest.T0, ID: 7, Path: "/kubepods.slice/kubepods-pod1234.slice/cri-containerd-abcd.scope", Removed: true})
	c, ok := s.Cgroup(7)
	if !ok || !c.Removed || c.PodName != "web" {
		t.Errorf("removed cgroup = %+v, want its pod kept", c)
	}
	live := s.LiveCgroups(aggtest.T0)
	if len(live) != 1 || live[0].ID != 8 {
		t.Errorf("LiveCgroups = %+v, want only the one not removed", live)
	}
}

// A Start without the kernel's gfp table decodes with its era's table.
func TestEraTableWhenStartHasNone(t *testing.T) {
	s := session.New()
	s.Add(&event.Start{Time: aggtest.T0, KernelRelease: "3.10.0-514.el7.x86_64"})
	if got := s.FormatGFP(0x10c0d0); got != "GFP_KERNEL|GFP_COMP|GFP_ZERO|GFP_KMEMCG" {
		t.Errorf("FormatGFP(0x10c0d0) on a 3.10 Start without a table = %q", got)
	}
	if !s.GFP().Has(0x10c0d0, "__GFP_KMEMCG") {
		t.Error("the 3.10 era table does not know __GFP_KMEMCG")
	}
}

// What a runtime said about a cgroup survives the session: a later record
// without it (a removal) keeps it, a new path drops it, and the preamble a
// reader starting mid-stream gets (LiveCgroups) carries it, so a kept
// incident's recording names the container as the live session did.
func TestRuntimeAnswersKept(t *testing.T) {
	s := session.New()
	s.Add(&event.CgroupPath{Time: aggtest.T0, ID: 9, Path: "/fsns/web1",
		Runtime: "containerd", ContainerID: "web1", ContainerName: "web1", RuntimeNamespace: "fsns"})
	s.Add(&event.CgroupPath{Time: aggtest.T0, ID: 9, Path: "/fsns/web1"})
	c, _ := s.Cgroup(9)
	if !c.Confirmed || c.Container.Runtime != "containerd" || c.Container.ContainerID != "web1" || c.ContainerName != "web1" || c.RuntimeNamespace != "fsns" {
		t.Fatalf("cgroup = %+v", c)
	}
	want := event.CgroupPath{Time: aggtest.T0, ID: 9, Path: "/fsns/web1",
		Runtime: "containerd", ContainerID: "web1", ContainerName: "web1", RuntimeNamespace: "fsns"}
	if live := s.LiveCgroups(aggtest.T0); len(live) != 1 || live[0] != want {
		t.Errorf("LiveCgroups = %+v, want %+v", live, want)
	}
	replayed := session.New()
	replayed.Add(&s.LiveCgroups(aggtest.T0)[0])
	if r, _ := replayed.Cgroup(9); r != c {
		t.Errorf("replayed %+v, want %+v", r, c)
	}
	s.Add(&event.CgroupPath{Time: aggtest.T0, ID: 9, Path: "/elsewhere/web1"})
	if c, _ := s.Cgroup(9); c.Confirmed || c.ContainerName != "" || c.Container.ContainerID != "" {
		t.Errorf("a new path kept the old answers: %+v", c)
	}
}
