package vmtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
)

// The subset of fragscope's NDJSON (docs/json.md) the VM tests assert on,
// decoded from the documented field names: the tests read the output a
// user reads, not internal types.

// Task is the shared "task" object.
type Task struct {
	PID        uint32 `json:"pid"`
	TID        uint32 `json:"tid"`
	Comm       string `json:"comm"`
	CgroupID   uint64 `json:"cgroup_id"`
	CgroupPath string `json:"cgroup_path"`
	NetnsIno   uint64 `json:"netns_ino"`
}

// CgroupRow is one row of a summary's cgroup ranking.
type CgroupRow struct {
	CgroupID           uint64 `json:"cgroup_id"`
	CgroupPath         string `json:"cgroup_path"`
	UnmovableHighOrder uint64 `json:"unmovable_high_order"`
	HighOrder          uint64 `json:"high_order"`
	Container          struct {
		ContainerID string `json:"container_id"`
		PodUID      string `json:"pod_uid"`
		QoS         string `json:"qos"`
		Driver      string `json:"driver"`
	} `json:"container"`
}

// HookStatus is one entry of the start object's "hooks".
type HookStatus struct {
	Hook      string `json:"hook"`
	Mechanism string `json:"mechanism"`
	Target    string `json:"target"`
	Attached  bool   `json:"attached"`
	Reason    string `json:"reason"`
}

// Zone is one zone of a mem_snapshot.
type Zone struct {
	Node             int      `json:"node"`
	Zone             string   `json:"zone"`
	ManagedPages     uint64   `json:"managed_pages"`
	FreePages        uint64   `json:"free_pages"`
	LargestFreeOrder int      `json:"largest_free_order"`
	FreeBlocks       []uint64 `json:"free_blocks"`
	FragIndex        []int    `json:"frag_index"`
	Verdict          []string `json:"verdict"`
}

// OrderCount is one entry of a summary's "orders".
type OrderCount struct {
	Order    int    `json:"order"`
	Allocs   uint64 `json:"allocs"`
	Failures uint64 `json:"failures"`
}

// Extfrag is a summary's "extfrag".
type Extfrag struct {
	Events      uint64 `json:"events"`
	Fragmenting uint64 `json:"fragmenting"`
}

// Object is one NDJSON line; which fields are set depends on Type.
type Object struct {
	Type string `json:"type"`
	Time string `json:"time"`

	// start
	KernelRelease string       `json:"kernel_release"`
	Hooks         []HookStatus `json:"hooks"`

	// alloc_fail, slab_create, netns_create, ns_syscall
	Task      *Task    `json:"task"`
	Order     int      `json:"order"`
	GFP       uint64   `json:"gfp"`
	GFPFlags  text     `json:"gfp_flags"` // alloc_fail's string (start's table is skipped)
	Hook      string   `json:"hook"`
	Stack     []string `json:"stack"`
	Name      string   `json:"name"`
	Size      uint32   `json:"size"`
	Failed    bool     `json:"failed"`
	Errno     int      `json:"errno"`
	ErrnoName string   `json:"errno_name"`
	Inode     uint64   `json:"inode"`
	Syscall   string   `json:"syscall"`
	Flags     uint64   `json:"flags"`
	NsFlags   string   `json:"namespace_flags"`

	// mem_snapshot
	Reason string `json:"reason"`
	Zones  []Zone `json:"zones"`

	// interval, summary
	Allocs   uint64       `json:"allocs"`
	Orders   []OrderCount `json:"orders"`
	Failures uint64       `json:"failures"`
	Extfrag  *Extfrag     `json:"extfrag"`
	Drops    uint64       `json:"drops"`
	Cgroups  []CgroupRow  `json:"cgroups"`

	// incident
	Incident *Incident `json:"incident"`

	Line int    `json:"-"` // 1-based line number in the stream
	Raw  []byte `json:"-"`
}

// Incident is the "incident" object's payload (internal/incident).
type Incident struct {
	ClosedBy string `json:"closed_by"`
	Syscall  struct {
		Name      string `json:"name"`
		Flags     uint64 `json:"flags"`
		FlagsText string `json:"flags_text"`
		Errno     int    `json:"errno"`
		ErrnoName string `json:"errno_name"`
	} `json:"syscall"`
	Task   Task     `json:"task"`
	Chain  []string `json:"chain"`
	Allocs []struct {
		Order   int      `json:"order"`
		GFP     uint64   `json:"gfp"`
		GFPText string   `json:"gfp_text"`
		Stack   []string `json:"stack"`
		Hook    string   `json:"hook"`
		Primary bool     `json:"primary"`
	} `json:"allocs"`
	Netns []struct {
		Errno     int    `json:"errno"`
		ErrnoName string `json:"errno_name"`
	} `json:"netns_failures"`
	Verdict struct {
		Cause   string   `json:"cause"`
		Reasons []string `json:"reasons"`
	} `json:"verdict"`
}

// text is a string field whose name other object types use for something
// else (start's "gfp_flags" is the flag table): non-strings decode as "".
type text string

func (s *text) UnmarshalJSON(b []byte) error {
	var v string
	if json.Unmarshal(b, &v) == nil {
		*s = text(v)
	}
	return nil
}

// ParseNDJSON decodes a stream; every line must be a JSON object with a type.
func ParseNDJSON(b []byte) ([]Object, error) {
	var out []Object
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var o Object
		if err := json.Unmarshal(line, &o); err != nil {
			return out, fmt.Errorf("line %d: %v", n, err)
		}
		if o.Type == "" {
			return out, fmt.Errorf("line %d: no type", n)
		}
		o.Line = n
		o.Raw = append([]byte(nil), line...)
		out = append(out, o)
	}
	return out, sc.Err()
}

// OfType returns the objects of one type, in stream order.
func OfType(objs []Object, typ string) []Object {
	var out []Object
	for _, o := range objs {
		if o.Type == typ {
			out = append(out, o)
		}
	}
	return out
}
