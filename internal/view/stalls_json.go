package view

import (
	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/event"
)

// The "mem_stalls" and "task_mem_stalls" objects (docs/json.md).

type jsonBucket struct {
	LeNS  uint64 `json:"le_ns"` // the bucket holds stalls shorter than this, and at least half as long
	Count uint64 `json:"count"`
}

type jsonResult struct {
	Result string `json:"result"`
	Count  uint64 `json:"count"`
}

type jsonMemStall struct {
	CgroupID   uint64       `json:"cgroup_id"`
	CgroupPath string       `json:"cgroup_path"`
	Kind       string       `json:"kind"`
	Order      uint8        `json:"order"`
	Count      uint64       `json:"count"`
	TotalNS    uint64       `json:"total_ns"`
	Reclaimed  uint64       `json:"reclaimed_pages"`
	Retries    uint64       `json:"retries"`
	GiveUps    uint64       `json:"give_ups"`
	Results    []jsonResult `json:"results"`
	Buckets    []jsonBucket `json:"buckets"`
}

type jsonZoneCompaction struct {
	Node    int          `json:"node"`
	Zone    string       `json:"zone"`
	Direct  bool         `json:"direct"`
	Count   uint64       `json:"count"`
	TotalNS uint64       `json:"total_ns"`
	Results []jsonResult `json:"results"`
	Buckets []jsonBucket `json:"buckets"`
}

type jsonPSI struct {
	CgroupID   uint64 `json:"cgroup_id"`
	CgroupPath string `json:"cgroup_path"`
	SomeUS     uint64 `json:"some_us"`
	FullUS     uint64 `json:"full_us"`
}

type jsonMemStalls struct {
	jsonHeader
	Stalls         []jsonMemStall       `json:"stalls"`
	Zones          []jsonZoneCompaction `json:"zones"`
	KcompactdWakes []jsonNamedOrder     `json:"kcompactd_wakes"`
	PSI            []jsonPSI            `json:"psi"`
	Overflow       uint64               `json:"overflow"`
}

type jsonNamedOrder struct {
	Order int    `json:"order"`
	Count uint64 `json:"count"`
}

type jsonRecentStall struct {
	End        string `json:"end"`
	DurationNS int64  `json:"duration_ns"`
	Kind       string `json:"kind"`
	Order      uint8  `json:"order"`
	GFP        uint64 `json:"gfp"`
	GFPFlags   string `json:"gfp_flags"`
	Reclaimed  uint64 `json:"reclaimed_pages"`
	Result     string `json:"result,omitempty"`
}

type jsonTaskMemStalls struct {
	jsonHeader
	Task   jsonTask          `json:"task"`
	Stalls []jsonRecentStall `json:"stalls"`
	Cgroup []jsonMemStall    `json:"cgroup"`
}

func bucketsOf(b *[event.StallBuckets]uint64) []jsonBucket {
	out := []jsonBucket{}
	for i, n := range b {
		if n > 0 {
			out = append(out, jsonBucket{LeNS: uint64(aggregate.BucketBound(i)), Count: n})
		}
	}
	return out
}

func resultsOf(r []event.ResultCount) []jsonResult {
	out := make([]jsonResult, 0, len(r))
	for _, x := range r {
		out = append(out, jsonResult(x))
	}
	return out
}

func memStallsOf(l []event.StallHist, agg *aggregate.Aggregator) []jsonMemStall {
	out := make([]jsonMemStall, 0, len(l))
	for i := range l {
		s := &l[i]
		out = append(out, jsonMemStall{CgroupID: s.CgroupID, CgroupPath: agg.Session().CgroupPath(s.CgroupID),
			Kind: s.Kind, Order: s.Order, Count: s.Count, TotalNS: s.TotalNs, Reclaimed: s.Reclaimed,
			Retries: s.Retries, GiveUps: s.GiveUps, Results: resultsOf(s.Results), Buckets: bucketsOf(&s.Buckets)})
	}
	return out
}

func jsonMemStallsOf(e *event.MemStalls, agg *aggregate.Aggregator) jsonMemStalls {
	o := jsonMemStalls{jsonHeader: header(e), Stalls: memStallsOf(e.Stalls, agg), Zones: []jsonZoneCompaction{},
		KcompactdWakes: []jsonNamedOrder{}, PSI: []jsonPSI{}, Overflow: e.Overflow}
	for i := range e.Zones {
		z := &e.Zones[i]
		o.Zones = append(o.Zones, jsonZoneCompaction{Node: z.Node, Zone: z.Zone, Direct: z.Direct, Count: z.Count,
			TotalNS: z.TotalNs, Results: resultsOf(z.Results), Buckets: bucketsOf(&z.Buckets)})
	}
	for ord, n := range e.KcompactdWakes {
		if n > 0 {
			o.KcompactdWakes = append(o.KcompactdWakes, jsonNamedOrder{ord, n})
		}
	}
	for _, p := range e.PSI {
		path := ""
		if p.CgroupID != 0 {
			path = agg.Session().CgroupPath(p.CgroupID)
		}
		o.PSI = append(o.PSI, jsonPSI{CgroupID: p.CgroupID, CgroupPath: path, SomeUS: p.SomeUs, FullUS: p.FullUs})
	}
	return o
}

func jsonTaskMemStallsOf(e *event.TaskMemStalls, agg *aggregate.Aggregator) jsonTaskMemStalls {
	o := jsonTaskMemStalls{jsonHeader: header(e), Task: taskOf(e.Task, agg), Stalls: []jsonRecentStall{},
		Cgroup: memStallsOf(e.Cgroup, agg)}
	for _, r := range e.Stalls {
		o.Stalls = append(o.Stalls, jsonRecentStall{End: formatTime(r.End), DurationNS: int64(r.Duration), Kind: r.Kind,
			Order: r.Order, GFP: r.GFP, GFPFlags: agg.FormatGFP(r.GFP), Reclaimed: r.Reclaimed, Result: r.Result})
	}
	return o
}

type jsonCompaction struct {
	CompactStall           uint64 `json:"compact_stall"`
	CompactFail            uint64 `json:"compact_fail"`
	CompactSuccess         uint64 `json:"compact_success"`
	THPFaultFallback       uint64 `json:"thp_fault_fallback"`
	THPFaultFallbackCharge uint64 `json:"thp_fault_fallback_charge"`
	Proactiveness          *int   `json:"compaction_proactiveness,omitempty"`
}

type jsonNodeScore struct {
	Node  int `json:"node"`
	Score int `json:"score"`
}
