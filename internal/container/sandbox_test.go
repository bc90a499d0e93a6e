package container

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGuessSandbox(t *testing.T) {
	at := time.Unix(5000, 0)
	dir := t.TempDir()
	mk := func(name string, ago time.Duration) {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, at.Add(-ago), at.Add(-ago))
	}
	const (
		running = "11111111-1111-4111-8111-111111111111"
		old     = "22222222-2222-4222-8222-222222222222"
		fresh   = "33333333-3333-4333-8333-333333333333"
	)
	mk("shop_web-0_"+running, time.Hour)
	mk("shop_cron-1_"+old, time.Minute)
	mk("shop_db-0_"+fresh, 20*time.Millisecond)
	mk("not-a-pod-dir", 0)
	sbs := []Sandbox{
		{ID: "s1", Pod: Pod{UID: running, Name: "web-0", Namespace: "shop"}, Ready: true, Created: at.Add(-time.Hour)},
	}
	// containerd 1.6: the failing sandbox is not listed; the newest pod
	// kubelet made a log directory for, with no sandbox, is the guess.
	g, ok := guessSandbox(sbs, at, podLogs(dir))
	if !ok || g.Pod != (Pod{UID: fresh, Name: "db-0", Namespace: "shop"}) || g.Candidates != 2 || g.SandboxID != "" ||
		!strings.Contains(g.Why, "kubelet log directory (made 20ms before the failure)") {
		t.Errorf("guess %+v %v", g, ok)
	}
	// A runtime that lists a NOTREADY sandbox made seconds before: that one.
	sbs = append(sbs, Sandbox{ID: "s2", Pod: Pod{UID: old, Name: "cron-1", Namespace: "shop"}, Created: at.Add(-2 * time.Second)})
	g, ok = guessSandbox(sbs, at, podLogs(dir))
	if !ok || g.SandboxID != "s2" || g.Pod.Name != "cron-1" || g.Candidates != 2 {
		t.Errorf("guess %+v %v", g, ok)
	}
	// Long-dead NOTREADY sandboxes and pods that have one are no candidates.
	sbs[1].Created = at.Add(-time.Hour)
	sbs = append(sbs, Sandbox{ID: "s3", Pod: Pod{UID: fresh, Name: "db-0", Namespace: "shop"}, Ready: true, Created: at})
	if g, ok := guessSandbox(sbs, at, podLogs(dir)); ok {
		t.Errorf("guessed %+v with every pod listed", g)
	}
	if g, ok := guessSandbox(nil, at, podLogs(filepath.Join(dir, "absent"))); ok {
		t.Errorf("guessed %+v from nothing", g)
	}
}

func TestCreatesPodNetns(t *testing.T) {
	const newnet = 0x40000000
	for _, c := range []struct {
		comm, sys string
		flags     uint64
		want      bool
	}{
		{"containerd", "unshare", newnet, true},
		{"pinns", "unshare", newnet | 0x20000, true},
		{"crio", "clone3", newnet, true},
		{"containerd", "setns", newnet, false},
		{"containerd", "unshare", 0x20000, false},
		{"runc:[1:CHILD]", "unshare", newnet, false},
	} {
		if got := CreatesPodNetns(c.comm, c.sys, c.flags); got != c.want {
			t.Errorf("%+v: %v", c, got)
		}
	}
}
