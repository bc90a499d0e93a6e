package grafana

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// family is one row of a table in docs/metrics.md.
type family struct {
	labels map[string][]string // label -> the values the doc enumerates (nil: any)
	of     string              // a histogram's _bucket, _sum or _count: the family it belongs to
}

var (
	docLabelRE = regexp.MustCompile("^\\s*([a-z_]+)\\s*(?:=(.*))?$")
	backtickRE = regexp.MustCompile("`([^`]*)`")
)

// docFamilies parses the family tables of docs/metrics.md: the rows whose
// first cell is a `fragscope_...` name, and their labels column (`—` for
// none; `level=`min`\|`low“ enumerates the values).
func docFamilies(t *testing.T) map[string]family {
	t.Helper()
	b, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	fams := map[string]family{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `fragscope_") {
			continue
		}
		// Split on the cell separators, not on the \| inside a cell.
		cells := strings.Split(strings.ReplaceAll(line, `\|`, "\x00"), "|")
		if len(cells) < 4 {
			t.Fatalf("docs/metrics.md: short table row %q", line)
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		f := family{labels: map[string][]string{}}
		if cell := strings.TrimSpace(cells[3]); cell != "—" {
			for _, part := range strings.Split(cell, ",") {
				m := docLabelRE.FindStringSubmatch(strings.ReplaceAll(part, "\x00", "|"))
				if m == nil {
					// "errno (`""` for success)": the label name leads.
					m = []string{"", strings.Fields(part)[0], ""}
				}
				var vals []string
				for _, v := range backtickRE.FindAllStringSubmatch(m[2], -1) {
					vals = append(vals, v[1])
				}
				f.labels[m[1]] = vals
			}
		}
		fams[name] = f
		if strings.TrimSpace(cells[2]) == "histogram" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				g := family{labels: maps.Clone(f.labels), of: name}
				if suffix == "_bucket" {
					g.labels["le"] = nil
				}
				fams[name+suffix] = g
			}
		}
	}
	if len(fams) < 15 {
		t.Fatalf("docs/metrics.md: only %d families parsed from its tables", len(fams))
	}
	return fams
}

// Values Grafana would interpolate, enough for a parse: a duration for the
// interval variables, the All value for the dashboard's own variables.
func parseValues(d *Dashboard) map[string]string {
	vals := map[string]string{
		"__rate_interval": "1m", "__interval": "30s", "__range": "3h",
		"__interval_ms": "30000", "__range_s": "10800", "__range_ms": "10800000",
	}
	for _, v := range d.Templating.List {
		vals[v.Name] = ".*"
	}
	return vals
}

// targetLabel is attached by Prometheus to every series it scrapes; the
// doc's example queries group by it.
const targetLabel = "instance"

// checkExpr parses a PromQL expression and checks each selector against the
// documented families: the name, the labels it matches on, the values of its
// equality matchers; and every label an aggregation or a vector match names.
func checkExpr(expr string, fams map[string]family, used map[string]bool) (problems []string) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return []string{fmt.Sprintf("%q: %v", expr, err)}
	}
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	known := map[string]bool{targetLabel: true}
	var grouping []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			f, ok := fams[n.Name]
			if !ok {
				bad("%s is not a family docs/metrics.md documents", n.Name)
				return nil
			}
			used[n.Name] = true
			if f.of != "" {
				used[f.of] = true
			}
			for l := range f.labels {
				known[l] = true
			}
			for _, m := range n.LabelMatchers {
				if m.Name == labels.MetricName || m.Name == targetLabel {
					continue
				}
				vals, ok := f.labels[m.Name]
				if !ok {
					bad("%s has no label %q in docs/metrics.md", n.Name, m.Name)
					continue
				}
				if (m.Type == labels.MatchEqual || m.Type == labels.MatchNotEqual) && vals != nil && !slices.Contains(vals, m.Value) {
					bad("%s{%s} matches a value the doc does not list (%v)", n.Name, m, vals)
				}
			}
		case *parser.AggregateExpr:
			grouping = append(grouping, n.Grouping...)
		case *parser.BinaryExpr:
			if n.VectorMatching != nil {
				grouping = append(grouping, n.VectorMatching.MatchingLabels...)
				grouping = append(grouping, n.VectorMatching.Include...)
			}
		}
		return nil
	})
	for _, l := range grouping {
		if !known[l] {
			bad("%q names label %q, which no family it reads has", expr, l)
		}
	}
	return problems
}

// check reports checkExpr's problems as test errors.
func check(t *testing.T, where, expr string, fams map[string]family, used map[string]bool) {
	t.Helper()
	for _, p := range checkExpr(expr, fams, used) {
		t.Errorf("%s: %s", where, p)
	}
}

func TestDashboard(t *testing.T) {
	d, err := Load("fragscope.json")
	if err != nil {
		t.Fatal(err)
	}
	fams := docFamilies(t)
	vals := parseValues(d)
	used := map[string]bool{}

	if d.SchemaVersion < 36 || d.Title == "" || d.UID == "" || d.Refresh == "" || d.Time.From == "" {
		t.Errorf("dashboard header: schemaVersion %d, title %q, uid %q, refresh %q, time from %q",
			d.SchemaVersion, d.Title, d.UID, d.Refresh, d.Time.From)
	}
	vars := map[string]Variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if ds, ok := vars["DS_PROMETHEUS"]; !ok || ds.Type != "datasource" || ds.Query() != "prometheus" {
		t.Errorf("no Prometheus datasource variable DS_PROMETHEUS: %+v", ds)
	}
	for _, name := range []string{"instance", "node"} {
		if _, ok := vars[name]; !ok {
			t.Errorf("no %s variable", name)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if v.Definition != v.Query() {
			t.Errorf("variable %s: definition %q differs from its query %q", v.Name, v.Definition, v.Query())
		}
		expr, _, err := v.ValuesQuery(vals)
		if err != nil {
			t.Error(err)
			continue
		}
		check(t, "variable "+v.Name, expr, fams, used)
	}

	ids := map[int]string{}
	// Panels share the grid with the panels of their level: top-level ones
	// with each other, a collapsed row's with each other (Grafana lays them
	// out below the row when it is opened).
	placed := map[*Panel][]*Panel{}
	d.Walk(func(p, row *Panel) {
		where := p.Title
		if where == "" {
			where = fmt.Sprintf("panel %d", p.ID)
			t.Errorf("panel id %d (%s) has no title", p.ID, p.Type)
		}
		if prev, dup := ids[p.ID]; dup || p.ID <= 0 {
			t.Errorf("%s: id %d not unique and positive (also %q)", where, p.ID, prev)
		}
		ids[p.ID] = where
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("%s: datasource %+v, want the DS_PROMETHEUS variable", where, p.Datasource)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("%s: gridPos %+v off the 24-column grid", where, g)
		}
		level := row
		if row != nil && !row.Collapsed {
			level = nil
		}
		for _, o := range placed[level] {
			if g.Overlaps(o.GridPos) {
				t.Errorf("%s %+v overlaps %s %+v", where, g, o.Title, o.GridPos)
			}
		}
		placed[level] = append(placed[level], p)
		if r := RepeatVar(p, row); r != "" {
			if _, ok := vars[r]; !ok {
				t.Errorf("%s: repeats over undefined variable %s", where, r)
			}
		}

		if p.Type == "row" {
			if len(p.Targets) > 0 {
				t.Errorf("%s: a row with queries", where)
			}
			if !p.Collapsed && len(p.Panels) > 0 {
				t.Errorf("%s: an open row holding panels (Grafana keeps them only in collapsed rows)", where)
			}
			return
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no query", where)
		}
		for _, tg := range p.Targets {
			tw := where + " / " + tg.RefID
			if tg.Datasource != nil && *tg.Datasource != *p.Datasource {
				t.Errorf("%s: target datasource %+v differs from the panel's", tw, tg.Datasource)
			}
			expr, err := Expand(tg.Expr, vals)
			if err != nil {
				t.Errorf("%s: %v", tw, err)
				continue
			}
			check(t, tw, expr, fams, used)
		}
	})

	// A family the agent exports and no panel shows is a gap in the
	// dashboard: add a panel with the family (or a query to a panel).
	for name, f := range fams {
		if !used[name] && f.of == "" {
			t.Errorf("no panel shows %s", name)
		}
	}
}

// The checks themselves catch what they are for.
func TestCheckExprCatches(t *testing.T) {
	fams := map[string]family{"fragscope_x": {labels: map[string][]string{"zone": nil, "level": {"min", "low"}}}}
	for _, expr := range []string{
		`sum(rate(fragscope_x[1m])`,                     // parse error
		`fragscope_y`,                                   // undocumented family
		`fragscope_x{pod="a"}`,                          // undocumented label
		`fragscope_x{level="lowest"}`,                   // value the doc does not list
		`sum by (pod) (fragscope_x)`,                    // grouping by a label no family has
		`fragscope_x * on (pod) group_left fragscope_x`, // matching on one
	} {
		if checkExpr(expr, fams, map[string]bool{}) == nil {
			t.Errorf("checkExpr accepted %q", expr)
		}
	}
	if _, err := Expand(`fragscope_x{zone=~"$zon"}`, map[string]string{"zone": ".*"}); err == nil {
		t.Error("Expand accepted an undefined variable")
	}
	rv := RegexValues([]string{"127.0.0.1:9436", "b"})
	if rv != `(127\\.0\\.0\\.1:9436|b)` {
		t.Errorf("RegexValues = %s", rv)
	}
	if _, err := parser.NewParser(parser.Options{}).ParseExpr(`up{instance=~"` + rv + `"}`); err != nil {
		t.Errorf("RegexValues' output in a matcher: %v", err)
	}
	if got, _ := Expand(`a{b=~"${x:regex}", c="[[y]]"}[$__rate_interval]`, map[string]string{"x": "1", "y": "2", "__rate_interval": "5m"}); got != `a{b=~"1", c="2"}[5m]` {
		t.Errorf("Expand = %q", got)
	}
}
