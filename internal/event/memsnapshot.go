package event

import (
	"time"

	"github.com/fragscope/fragscope/internal/snapshot"
)

// MemSnapshot is a free-memory picture taken at start, every interval, and
// right after a failure event arrives.
type MemSnapshot struct {
	Reason   string             `json:"reason"` // "start", "interval", "failure"
	Snapshot *snapshot.Snapshot `json:"snapshot"`
}

func (e *MemSnapshot) Kind() Kind      { return KindMemSnapshot }
func (e *MemSnapshot) When() time.Time { return e.Snapshot.Time }
