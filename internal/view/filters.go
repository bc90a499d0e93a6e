package view

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/incident"
)

// SummaryOnly shows only v's final summary: replay --summary. Incidents
// still reach the terminal view, which keeps them for its summary in tty
// mode instead of printing them as they come.
func SummaryOnly(v View) View { return summaryOnly{v} }

type summaryOnly struct{ v View }

func (s summaryOnly) Event(event.Event, *aggregate.Aggregator) error { return nil }
func (s summaryOnly) Incident(inc *incident.Incident, agg *aggregate.Aggregator) error {
	if _, ok := s.v.(*Terminal); ok {
		return s.v.Incident(inc, agg)
	}
	return nil
}
func (s summaryOnly) Close(agg *aggregate.Aggregator) error { return s.v.Close(agg) }

// IncidentsOnly shows only the incidents of v, and the stalls:
// `fragscope incidents`. A hang is no failure with a verdict, but it is
// what someone looking for why a container did not start must see.
func IncidentsOnly(v View) View { return incidentsOnly{v} }

type incidentsOnly struct{ v View }

func (s incidentsOnly) Event(ev event.Event, agg *aggregate.Aggregator) error {
	if st, ok := ev.(*event.Stall); ok {
		return s.v.Event(st, agg)
	}
	return nil
}
func (s incidentsOnly) Incident(inc *incident.Incident, agg *aggregate.Aggregator) error {
	return s.v.Incident(inc, agg)
}
func (s incidentsOnly) Close(*aggregate.Aggregator) error { return nil }

// IncidentReports prints each incident's full text report, separated by
// rules; Count says how many it printed.
type IncidentReports struct {
	W      io.Writer
	Count  int
	Stalls int
}

// Event prints each stall's line; Stalls counts them.
func (t *IncidentReports) Event(ev event.Event, agg *aggregate.Aggregator) error {
	st, ok := ev.(*event.Stall)
	if !ok {
		return nil
	}
	t.Stalls++
	var b bytes.Buffer
	writeStallNotice(&b, st, agg)
	_, err := t.W.Write(b.Bytes())
	return err
}

func (t *IncidentReports) Close(*aggregate.Aggregator) error { return nil }
func (t *IncidentReports) Incident(inc *incident.Incident, _ *aggregate.Aggregator) error {
	if t.Count > 0 {
		fmt.Fprintln(t.W, strings.Repeat("-", 100))
	}
	t.Count++
	return incident.WriteText(t.W, inc)
}
