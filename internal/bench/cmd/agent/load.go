package main

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/workload"
)

// ringLoad opens and closes AF_PACKET rings at a fixed rate: each ring is
// n order-6 unmovable allocations (256 KiB blocks), the kind of churn that
// fragments memory and that the agent counts.
type ringLoad struct {
	period time.Duration
	blocks uint32
	done   chan struct{}
	wg     sync.WaitGroup
	ok     int
	failed int
}

const ringBlock = 256 << 10

func newRingLoad(perSec float64, blocks uint32) *ringLoad {
	return &ringLoad{period: time.Duration(float64(time.Second) / perSec), blocks: blocks, done: make(chan struct{})}
}

func (r *ringLoad) start() {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.period)
		defer t.Stop()
		for {
			select {
			case <-r.done:
				return
			case <-t.C:
			}
			fd, err := workload.PacketRing(ringBlock, r.blocks)
			if err != nil {
				r.failed++
				continue
			}
			unix.Close(fd)
			r.ok++
		}
	}()
}

// stop ends the load and returns the rings opened and the ones that failed.
func (r *ringLoad) stop() (ok, failed int) {
	close(r.done)
	r.wg.Wait()
	return r.ok, r.failed
}
