package view

import (
	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/incident"
)

// View renders a session. Event is called after agg.Add(ev), so agg already
// includes ev; Incident is called right after the event that completed the
// incident; Close is called once after the last event.
type View interface {
	Event(ev event.Event, agg *aggregate.Aggregator) error
	Incident(inc *incident.Incident, agg *aggregate.Aggregator) error
	Close(agg *aggregate.Aggregator) error
}

var (
	_ View = (*Terminal)(nil)
	_ View = (*JSON)(nil)
)
