package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/fragscope/fragscope/deploy/grafana"
)

// promSeries runs an instant query and returns the label sets of the vector
// it answers.
func promSeries(base, q string) ([]map[string]string, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status, Error string
		Data          struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.Status, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %s, want a vector", r.Data.ResultType)
	}
	out := make([]map[string]string, len(r.Data.Result))
	for i, s := range r.Data.Result {
		out[i] = s.Metric
	}
	return out, nil
}

// checkDashboardQueries sends every query of the Grafana dashboard to the
// Prometheus at promBase, interpolated as Grafana would with every value of
// each variable selected, and wants at least one series from each: on a
// dashboard an empty panel cannot be told from a wrong query.
func checkDashboardQueries(t *testing.T, promBase string) {
	t.Helper()
	d, err := grafana.Load("../../deploy/grafana/fragscope.json")
	if err != nil {
		t.Fatal(err)
	}
	// The test has a few seconds of 1 s scrapes: 10 s windows hold the two
	// samples rate() and increase() need, and no more than there is.
	vals := map[string]string{"__rate_interval": "10s", "__interval": "10s", "__range": "10s"}
	values := map[string][]string{}
	// Grafana resolves the variables in order, each with the ones before it.
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, label, err := v.ValuesQuery(vals)
		if err != nil {
			t.Error(err)
			continue
		}
		series, err := promSeries(promBase, q)
		for _, s := range series {
			values[v.Name] = append(values[v.Name], s[label])
		}
		if err != nil || len(values[v.Name]) == 0 {
			t.Errorf("variable %s has no values: %s: %v", v.Name, q, err)
			return
		}
		vals[v.Name] = grafana.RegexValues(values[v.Name])
	}

	queries := 0
	d.Walk(func(p, row *grafana.Panel) {
		// A repeated panel is drawn once per value, each with that value alone.
		sets := []map[string]string{vals}
		if r := grafana.RepeatVar(p, row); r != "" {
			sets = nil
			for _, v := range values[r] {
				one := map[string]string{}
				for k, x := range vals {
					one[k] = x
				}
				one[r] = grafana.RegexValues([]string{v})
				sets = append(sets, one)
			}
		}
		for _, tg := range p.Targets {
			for _, set := range sets {
				q, err := grafana.Expand(tg.Expr, set)
				if err != nil {
					t.Errorf("%s / %s: %v", p.Title, tg.RefID, err)
					continue
				}
				queries++
				series, err := promSeries(promBase, q)
				if err != nil || len(series) == 0 {
					t.Errorf("dashboard panel %q / %s returns no series: %s: %v", p.Title, tg.RefID, q, err)
				}
			}
		}
	})
	t.Logf("dashboard: %d queries sent; variables %v", queries, values)
}
