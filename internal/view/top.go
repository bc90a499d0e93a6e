package view

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/incident"
)

// TopOptions configures a Top view.
type TopOptions struct {
	Sort  aggregate.SortKey // "" is aggregate.SortFragmenting
	Limit int               // rows per ranking; <= 0 shows every cgroup
	JSON  bool              // NDJSON "top" objects instead of tables
	TTY   bool              // the writer is a terminal: clear the screen before each table
}

// Top renders a ranking of cgroups at each Tick (`fragscope top`): who
// caused fragmenting extfrag fallbacks, made unmovable high-order
// allocations, or suffered failures, with the container and pod their
// cgroup path names. Rankings are by session counts (aggregate.Top); the
// latest interval's counts stand next to them.
type Top struct {
	w   io.Writer
	opt TopOptions
	buf bytes.Buffer

	bw  *bufio.Writer // JSON only
	enc *json.Encoder
}

var _ View = (*Top)(nil)

// NewTop returns a Top view writing to w.
func NewTop(w io.Writer, opt TopOptions) *Top {
	if opt.Sort == "" {
		opt.Sort = aggregate.SortFragmenting
	}
	t := &Top{w: w, opt: opt}
	if opt.JSON {
		t.bw = bufio.NewWriter(w)
		t.enc = json.NewEncoder(t.bw)
		t.enc.SetEscapeHTML(false)
	}
	return t
}

// Event renders the ranking at each Tick and ignores the other events.
func (t *Top) Event(ev event.Event, agg *aggregate.Aggregator) error {
	if ev.Kind() != event.KindTick {
		return nil
	}
	if t.opt.JSON {
		return t.writeJSON(agg, false)
	}
	t.buf.Reset()
	if t.opt.TTY {
		t.buf.WriteString(clearScreen)
	} else {
		t.buf.WriteString(strings.Repeat("-", width) + "\n")
	}
	iv := agg.Interval()
	fmt.Fprintf(&t.buf, "fragscope top  %s  interval %d: %s - %s (%s)\n",
		hostKernel(agg), iv.Seq, clock(iv.Begin), clock(iv.End), iv.Covered)
	t.table(agg, true)
	_, err := t.w.Write(t.buf.Bytes())
	return err
}

// Incident is not part of a ranking: `fragscope incidents` and watch report them.
func (t *Top) Incident(*incident.Incident, *aggregate.Aggregator) error { return nil }

// Close writes the session's final ranking.
func (t *Top) Close(agg *aggregate.Aggregator) error {
	if t.opt.JSON {
		return t.writeJSON(agg, true)
	}
	t.buf.Reset()
	if !t.opt.TTY {
		t.buf.WriteString(strings.Repeat("=", width) + "\n")
	}
	s := agg.Summary()
	fmt.Fprintf(&t.buf, "fragscope top session summary  %s\n", hostKernel(agg))
	fmt.Fprintf(&t.buf, "%s - %s  %d intervals (%s)\n", stamp(s.Begin), stamp(s.End), s.Ticks, s.Covered)
	t.table(agg, false)
	_, err := t.w.Write(t.buf.Bytes())
	return err
}

func (t *Top) table(agg *aggregate.Aggregator, withInterval bool) {
	b := &t.buf
	all := agg.Top(t.opt.Sort, 0)
	rows := all
	if t.opt.Limit > 0 && len(rows) > t.opt.Limit {
		rows = rows[:t.opt.Limit]
	}
	s := agg.Summary()
	writeOverflows(b, &s.Counts)
	what := "session"
	if withInterval {
		what = "this interval/session"
	}
	fmt.Fprintf(b, "cgroups by %s, %d of %d shown; counts: %s\n", sortTitle(t.opt.Sort), len(rows), len(all), what)
	if len(rows) == 0 {
		b.WriteString("  (no cgroup has counts yet)\n")
		return
	}
	writeLegend(b, "", t.opt.Sort)
	writeCgroupTable(b, "", rows, t.opt.Sort, withInterval)
}

// sortTitle says what a ranking is by, in words.
func sortTitle(k aggregate.SortKey) string {
	switch k {
	case aggregate.SortUnmovable:
		return fmt.Sprintf("unmovable allocations of order >= %d", aggregate.HighOrder)
	case aggregate.SortFailures:
		return "allocation failures suffered"
	case aggregate.SortHighOrder:
		return fmt.Sprintf("allocations of order >= %d", aggregate.HighOrder)
	case aggregate.SortStall:
		return "time stalled in compaction and reclaim"
	}
	return "fragmenting extfrag fallbacks"
}

// writeOverflows warns that some counts are in no cgroup's row.
func writeOverflows(b *bytes.Buffer, s *aggregate.Counts) {
	if s.CgroupOverflow > 0 {
		fmt.Fprintf(b, "!! %d allocations not attributed to a cgroup (kernel cgroup map full)\n", s.CgroupOverflow)
	}
	if s.Extfrag.Overflow > 0 {
		fmt.Fprintf(b, "!! %d extfrag fallbacks not attributed (kernel map full)\n", s.Extfrag.Overflow)
	}
}

// column is one column of a cgroup table.
type column struct {
	head  string
	left  bool // left-aligned (text); numbers are right-aligned
	cells []string
	w     int
}

// writeLegend explains the count columns of writeCgroupTable.
func writeLegend(b *bytes.Buffer, indent string, key aggregate.SortKey) {
	fmt.Fprintf(b, "%sFRAG fragmenting fallbacks  UNMOV unmovable order>=%d", indent, aggregate.HighOrder)
	if key == aggregate.SortHighOrder {
		fmt.Fprintf(b, "  HIGH order>=%d", aggregate.HighOrder)
	}
	b.WriteString("  FAIL failures\n")
	if key == aggregate.SortStall {
		fmt.Fprintf(b, "%sSTALLS direct compaction and reclaim stalls  STALLED their time\n", indent)
	}
}

// writeCgroupTable writes rows as a table that fits width: the path column
// gets what the others leave. Counts are "interval/session" with
// withInterval, the session's otherwise. The column of key is always
// there, so a ranking shows what it is by.
func writeCgroupTable(b *bytes.Buffer, indent string, rows []aggregate.CgroupRank, key aggregate.SortKey, withInterval bool) {
	count := func(r *aggregate.CgroupRank, k aggregate.SortKey) string {
		if withInterval {
			return fmt.Sprintf("%d/%d", k.Of(&r.Interval), k.Of(&r.CgroupCounts))
		}
		return fmt.Sprint(k.Of(&r.CgroupCounts))
	}
	rank := &column{head: "#"}
	path := &column{head: "CGROUP", left: true}
	ctr := &column{head: "CONTAINER", left: true}
	pod := &column{head: "POD", left: true}
	qos := &column{head: "QOS", left: true}
	frag := &column{head: "FRAG"}
	unmov := &column{head: "UNMOV"}
	high := &column{head: "HIGH"}
	fail := &column{head: "FAIL"}
	stalls := &column{head: "STALLS"}
	stalled := &column{head: "STALLED"}
	gone := &column{left: true}
	anyContainer, anyRemoved := false, false
	for i := range rows {
		r := &rows[i]
		rank.cells = append(rank.cells, fmt.Sprint(r.Rank))
		path.cells = append(path.cells, r.Label())
		id := r.Container
		ctr.cells = append(ctr.cells, containerLabel(id.Runtime, id.ContainerID, r.ContainerName))
		pod.cells = append(pod.cells, podLabel(&r.CgroupStat))
		qos.cells = append(qos.cells, id.QoS)
		frag.cells = append(frag.cells, count(r, aggregate.SortFragmenting))
		unmov.cells = append(unmov.cells, count(r, aggregate.SortUnmovable))
		high.cells = append(high.cells, count(r, aggregate.SortHighOrder))
		fail.cells = append(fail.cells, count(r, aggregate.SortFailures))
		if withInterval {
			stalls.cells = append(stalls.cells, fmt.Sprintf("%d/%d", r.Interval.Stalls, r.Stalls))
			stalled.cells = append(stalled.cells, stallTime(r.Interval.StallNs)+"/"+stallTime(r.StallNs))
		} else {
			stalls.cells = append(stalls.cells, fmt.Sprint(r.Stalls))
			stalled.cells = append(stalled.cells, stallTime(r.StallNs))
		}
		mark := ""
		if r.Removed {
			mark, anyRemoved = "removed", true
		}
		gone.cells = append(gone.cells, mark)
		anyContainer = anyContainer || !id.IsZero()
	}
	cols := []*column{rank, path}
	if anyContainer {
		cols = append(cols, ctr, pod, qos)
	}
	cols = append(cols, frag, unmov)
	if key == aggregate.SortHighOrder {
		cols = append(cols, high)
	}
	cols = append(cols, fail)
	if key == aggregate.SortStall {
		cols = append(cols, stalls, stalled)
	}
	if anyRemoved {
		cols = append(cols, gone)
	}
	used := len(indent) + len(cols) - 1 // separating spaces
	for _, c := range cols {
		c.w = len(c.head)
		for _, s := range c.cells {
			c.w = max(c.w, len(s))
		}
		if c != path {
			used += c.w
		}
	}
	// The path takes the rest of the line, at least minPath columns.
	const minPath = 16
	fit := max(width-used, minPath)
	path.w = len(path.head)
	for i := range path.cells {
		path.cells[i] = shortenPath(path.cells[i], fit)
		path.w = max(path.w, len(path.cells[i]))
	}
	line := func(cell func(c *column) string) {
		var l strings.Builder
		l.WriteString(indent)
		for i, c := range cols {
			if i > 0 {
				l.WriteByte(' ')
			}
			if c.left {
				fmt.Fprintf(&l, "%-*s", c.w, cell(c))
			} else {
				fmt.Fprintf(&l, "%*s", c.w, cell(c))
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	line(func(c *column) string { return c.head })
	for i := range rows {
		line(func(c *column) string { return c.cells[i] })
	}
}

// containerLabel is "containerd 3c1d9a8b7c6d": the runtime and the short
// id docker and crictl print, or the runtime's name for the container
// ("docker web", "containerd web1") when it gave one. kubelet's cgroupfs
// driver names no runtime.
func containerLabel(runtime, id, name string) string {
	const most = 28
	id = shortID(id, 12)
	if name != "" {
		id = name
		if len(id) > most {
			id = id[:most-2] + ".."
		}
	}
	switch {
	case runtime == "":
		return id
	case id == "":
		return runtime
	}
	return runtime + " " + id
}

// podLabel is "namespace/name" when the CRI named the pod, else the
// start of its UID.
func podLabel(s *aggregate.CgroupStat) string {
	const most = 28
	if s.PodName == "" {
		return shortID(s.Container.PodUID, 8)
	}
	l := s.PodName
	if s.PodNamespace != "" {
		l = s.PodNamespace + "/" + l
	}
	if len(l) > most {
		l = l[:most-2] + ".."
	}
	return l
}

func shortID(id string, n int) string {
	if len(id) > n {
		return id[:n]
	}
	return id
}

// Container ids (64 hex digits) and pod UIDs (with dashes, or the
// underscores of kubelet's systemd driver) as they appear in cgroup paths.
var (
	longHex = regexp.MustCompile(`[0-9a-f]{32,}`)
	podUID  = regexp.MustCompile(`[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}`)
)

// shortenPath fits a cgroup path into w columns: first container ids and
// pod UIDs are cut to their first 12 and 8 characters, as docker and
// kubectl users know them (the JSON output has them whole); then leading
// components go, since the end of a path names the cgroup; a last
// component still too long loses its start.
func shortenPath(p string, w int) string {
	if len(p) <= w {
		return p
	}
	p = podUID.ReplaceAllStringFunc(p, func(s string) string { return s[:8] })
	p = longHex.ReplaceAllStringFunc(p, func(s string) string { return s[:12] })
	if len(p) <= w {
		return p
	}
	const elided = "..."
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && len(elided)+len(p)-i <= w {
			return elided + p[i:]
		}
	}
	return elided + p[len(p)-(w-len(elided)):]
}

// topFew is how many cgroups the watch screens and the summary rank.
const topFew = 3

// writeTopFragmenters ranks the cgroups that fragment memory: by
// fragmenting fallbacks, then by unmovable high-order allocations, each
// list only the cgroups with a non-zero count. withInterval shows the
// latest interval next to the session (the watch screen).
func writeTopFragmenters(b *bytes.Buffer, agg *aggregate.Aggregator, withInterval bool) {
	var lists [][]aggregate.CgroupRank
	keys := []aggregate.SortKey{aggregate.SortFragmenting, aggregate.SortUnmovable}
	for _, k := range keys {
		var rows []aggregate.CgroupRank
		for _, r := range agg.Top(k, topFew) {
			if k.Of(&r.CgroupCounts) > 0 {
				rows = append(rows, r)
			}
		}
		lists = append(lists, rows)
	}
	if len(lists[0]) == 0 && len(lists[1]) == 0 {
		return
	}
	b.WriteString("\nTOP FRAGMENTERS (")
	if withInterval {
		b.WriteString("this interval/session")
	} else {
		b.WriteString("session")
	}
	b.WriteString(")\n")
	writeLegend(b, "  ", aggregate.SortFragmenting)
	for i, rows := range lists {
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(b, "  by %s\n", sortTitle(keys[i]))
		writeCgroupTable(b, "  ", rows, keys[i], withInterval)
	}
}

// jsonTop is the object `fragscope top --json` writes at each Tick and,
// with final set, once at the end (docs/json.md).
type jsonTop struct {
	jsonHeader
	Final           bool         `json:"final"`
	Seq             uint64       `json:"seq"`
	Begin           string       `json:"begin"`
	IntervalNS      int64        `json:"interval_ns"`
	Sort            string       `json:"sort"`
	CgroupsActive   int          `json:"cgroups_active"`
	CgroupOverflow  uint64       `json:"cgroup_overflow"`
	ExtfragOverflow uint64       `json:"extfrag_overflow"`
	Cgroups         []jsonCgroup `json:"cgroups"`
}

func (t *Top) writeJSON(agg *aggregate.Aggregator, final bool) error {
	s := agg.Summary()
	all := agg.Top(t.opt.Sort, 0)
	rows := all
	if t.opt.Limit > 0 && len(rows) > t.opt.Limit {
		rows = rows[:t.opt.Limit]
	}
	obj := jsonTop{
		Final:           final,
		Sort:            string(t.opt.Sort),
		CgroupsActive:   len(all),
		CgroupOverflow:  s.CgroupOverflow,
		ExtfragOverflow: s.Extfrag.Overflow,
		Cgroups:         make([]jsonCgroup, 0, len(rows)),
	}
	if final {
		obj.jsonHeader = jsonHeader{Type: "top", Time: formatTime(s.End)}
		obj.Seq, obj.Begin, obj.IntervalNS = s.Ticks, formatTime(s.Begin), int64(s.Covered)
	} else {
		iv := agg.Interval()
		obj.jsonHeader = jsonHeader{Type: "top", Time: formatTime(iv.End)}
		obj.Seq, obj.Begin, obj.IntervalNS = iv.Seq, formatTime(iv.Begin), int64(iv.Covered)
	}
	for i := range rows {
		r := &rows[i]
		c := cgroupOf(r.Rank, &r.CgroupStat)
		iv := cgroupCountsOf(&r.Interval)
		c.Interval = &iv
		obj.Cgroups = append(obj.Cgroups, c)
	}
	if err := t.enc.Encode(obj); err != nil {
		return err
	}
	return t.bw.Flush()
}

// jsonCgroup is one row of a cgroup ranking: the "cgroups" list of top,
// interval and summary objects.
type jsonCgroup struct {
	Rank      int           `json:"rank"`
	ID        uint64        `json:"cgroup_id"`
	Path      string        `json:"cgroup_path"`
	Removed   bool          `json:"removed"`
	Container jsonContainer `json:"container"`
	jsonCgroupCounts
	Interval *jsonCgroupCounts `json:"interval,omitempty"`
}

type jsonContainer struct {
	Runtime     string `json:"runtime"`
	ContainerID string `json:"container_id"`
	// Name and RuntimeNamespace are the runtime's (docker's name, a ctr
	// id and its containerd namespace), "" when no runtime answered.
	Name             string `json:"name"`
	RuntimeNamespace string `json:"runtime_namespace"`
	PodUID           string `json:"pod_uid"`
	PodName          string `json:"pod_name"`
	PodNamespace     string `json:"pod_namespace"`
	QoS              string `json:"qos"`
	Driver           string `json:"driver"`
}

type jsonCgroupCounts struct {
	Fragmenting          uint64 `json:"fragmenting"`
	Fallbacks            uint64 `json:"fallbacks"`
	UnmovableHighOrder   uint64 `json:"unmovable_high_order"`
	ReclaimableHighOrder uint64 `json:"reclaimable_high_order"`
	Unmovable            uint64 `json:"unmovable"`
	Reclaimable          uint64 `json:"reclaimable"`
	HighOrder            uint64 `json:"high_order"`
	Failures             uint64 `json:"failures"`
	Stalls               uint64 `json:"stalls,omitempty"`
	StallNs              uint64 `json:"stall_ns,omitempty"`
}

func cgroupCountsOf(c *aggregate.CgroupCounts) jsonCgroupCounts { return jsonCgroupCounts(*c) }

func cgroupOf(rank int, s *aggregate.CgroupStat) jsonCgroup {
	id := s.Container
	return jsonCgroup{
		Rank: rank, ID: s.ID, Path: s.Path, Removed: s.Removed,
		Container: jsonContainer{
			Runtime: id.Runtime, ContainerID: id.ContainerID, Name: s.ContainerName, RuntimeNamespace: s.RuntimeNamespace, PodUID: id.PodUID,
			PodName: s.PodName, PodNamespace: s.PodNamespace, QoS: id.QoS, Driver: id.Driver,
		},
		jsonCgroupCounts: cgroupCountsOf(&s.CgroupCounts),
	}
}

// jsonCgroupsMax bounds the "cgroups" list of interval and summary objects:
// a busy node has thousands of cgroups, and `fragscope top --json` gives
// the full ranking.
const jsonCgroupsMax = 10

func cgroupsOf(s []aggregate.CgroupStat) []jsonCgroup {
	s = s[:min(len(s), jsonCgroupsMax)]
	out := make([]jsonCgroup, 0, len(s))
	for i := range s {
		out = append(out, cgroupOf(i+1, &s[i]))
	}
	return out
}
