package event

import (
	"time"

	"github.com/fragscope/fragscope/internal/snapshot"
)

// MemSnapshot is a free-memory picture taken at start, every interval, and
// right after a failure event arrives; or, with Reason "at_failure"
// (snapshot.ReasonAtFailure), the free lists of the failing allocation's
// node as the kernel read them at the failure, emitted just before its
// AllocFail, the rest of each zone from the latest /proc snapshot.
type MemSnapshot struct {
	Reason   string             `json:"reason"` // "start", "interval", "failure", "at_failure"
	Snapshot *snapshot.Snapshot `json:"snapshot"`
}

func (e *MemSnapshot) Kind() Kind      { return KindMemSnapshot }
func (e *MemSnapshot) When() time.Time { return e.Snapshot.Time }
