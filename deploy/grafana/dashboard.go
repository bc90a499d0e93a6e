// Package grafana reads the Grafana dashboard shipped beside it
// (fragscope.json), for the tests that parse its queries and run them against
// a real Prometheus. It knows only the parts of Grafana's dashboard model that
// those checks need.
package grafana

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Dashboard is a dashboard JSON model as Grafana exports it.
type Dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Refresh       string  `json:"refresh"`
	Panels        []Panel `json:"panels"`
	Time          struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Panel is a panel or a row; a collapsed row holds its panels in Panels.
type Panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Datasource  *DatasourceRef `json:"datasource"`
	GridPos     GridPos        `json:"gridPos"`
	Collapsed   bool           `json:"collapsed"`
	Repeat      string         `json:"repeat"`
	Interval    string         `json:"interval"`
	Panels      []Panel        `json:"panels"`
	Targets     []Target       `json:"targets"`
	Description string         `json:"description"`
}

// GridPos is a panel's place on Grafana's 24-column grid.
type GridPos struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// Overlaps reports whether two grid rectangles share a cell.
func (g GridPos) Overlaps(o GridPos) bool {
	return g.X < o.X+o.W && o.X < g.X+g.W && g.Y < o.Y+o.H && o.Y < g.Y+g.H
}

// DatasourceRef names a data source; UID may be a variable (${DS_PROMETHEUS}).
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is one query of a panel.
type Target struct {
	RefID        string         `json:"refId"`
	Expr         string         `json:"expr"`
	Datasource   *DatasourceRef `json:"datasource"`
	Instant      bool           `json:"instant"`
	Format       string         `json:"format"`
	LegendFormat string         `json:"legendFormat"`
}

// Variable is a templating variable.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *DatasourceRef  `json:"datasource"`
	Definition string          `json:"definition"`
	RawQuery   json.RawMessage `json:"query"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

// Query is the variable's query text: Grafana writes it as a string for
// datasource variables and as {"query": ...} for Prometheus query variables.
func (v Variable) Query() string {
	var s string
	if json.Unmarshal(v.RawQuery, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	json.Unmarshal(v.RawQuery, &o)
	return o.Query
}

var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*(\w+)\s*\)\s*$`)

// LabelValues splits a Prometheus variable query label_values(selector, label).
func (v Variable) LabelValues() (selector, label string, ok bool) {
	m := labelValuesRE.FindStringSubmatch(v.Query())
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// ValuesQuery is the PromQL that lists a label_values variable's values, one
// series per value, with the variables before it expanded from vals.
func (v Variable) ValuesQuery(vals map[string]string) (query, label string, err error) {
	sel, label, ok := v.LabelValues()
	if !ok {
		return "", "", fmt.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, v.Query())
	}
	query, err = Expand("count by ("+label+") ("+sel+")", vals)
	if err != nil {
		return "", "", fmt.Errorf("variable %s: %w", v.Name, err)
	}
	return query, label, nil
}

// Load reads a dashboard JSON file.
func Load(path string) (*Dashboard, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &d, nil
}

// Walk calls f for every panel, rows included, and for the panels a
// collapsed row holds. row is the row the panel sits under (nil above the
// first row): Grafana repeats a row's panels with the row, so a panel's
// repeat variable is its own or its row's.
func (d *Dashboard) Walk(f func(p, row *Panel)) {
	var row *Panel
	for i := range d.Panels {
		p := &d.Panels[i]
		if p.Type == "row" {
			f(p, nil)
			row = p
			for j := range p.Panels {
				f(&p.Panels[j], p)
			}
			continue
		}
		f(p, row)
	}
}

// RepeatVar is the variable Grafana repeats the panel over, or "".
func RepeatVar(p, row *Panel) string {
	if p.Repeat != "" || row == nil {
		return p.Repeat
	}
	return row.Repeat
}

// Grafana's variable syntaxes: $var, ${var}, ${var:format}, [[var]], [[var:format]].
var varRE = regexp.MustCompile(`\$(\w+)|\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]`)

// Expand replaces every variable in s with its value in vals, as Grafana
// interpolates a query before sending it; a variable missing from vals is an
// error, so a typo in a query fails instead of reaching Prometheus as "$...".
func Expand(s string, vals map[string]string) (string, error) {
	var missing []string
	out := varRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := varRE.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		v, ok := vals[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if missing != nil {
		return out, fmt.Errorf("undefined variables %s in %q", strings.Join(missing, ", "), s)
	}
	return out, nil
}

// RegexValues formats a selection the way Grafana's Prometheus data source
// does for a =~ matcher: each value regex-escaped, joined as (a|b). The
// escapes are doubled because the value lands inside a PromQL string
// literal, where \. alone is no valid escape.
func RegexValues(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = strings.ReplaceAll(regexp.QuoteMeta(v), `\`, `\\`)
	}
	if len(q) == 1 {
		return q[0]
	}
	return "(" + strings.Join(q, "|") + ")"
}
