package report

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/flight"
	"github.com/fragscope/fragscope/internal/pipeline"
	"github.com/fragscope/fragscope/internal/session"
)

// writeDataDir records src into an agent data dir, as the agent's flight
// recorder does (segments of 64 MiB, each with its preamble).
func writeDataDir(b *testing.B, dir string, src event.Source) {
	b.Helper()
	var clock time.Time
	s := session.New()
	rec, err := flight.Open(flight.Options{Dir: dir, RetainAge: 48 * time.Hour, Now: func() time.Time { return clock },
		State: func() (*event.Start, []event.CgroupPath, *event.MemSnapshot) {
			return s.Start(), s.LiveCgroups(s.Last()), s.Snapshot().MemSnapshot
		}})
	if err != nil {
		b.Fatal(err)
	}
	err = src.Run(context.Background(), func(ev event.Event) {
		if w := ev.When(); w.After(clock) {
			clock = w
		}
		s.Add(ev)
		rec.Write(ev)
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		b.Fatal(err)
	}
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// BenchmarkReportDataDir renders the report of a SYNTHETIC agent data dir
// of 1 h and of 24 h (a Tick and a snapshot every second, 40 pods, a
// failing clone every 7 min) beside a replay of the same dir with no view:
// the report's own cost is the difference. Reported: the HTML's size
// (html-bytes), the data dir's (dir-bytes).
func BenchmarkReportDataDir(b *testing.B) {
	for _, span := range []time.Duration{time.Hour, 24 * time.Hour} {
		dir := b.TempDir()
		writeDataDir(b, dir, &synthetic{Span: span, BurstEvery: 7*time.Minute + 13*time.Second, Seed: 1})
		name := span.String()
		b.Run("replay-only/"+name, func(b *testing.B) {
			for b.Loop() {
				d, err := flight.OpenDir(dir, time.Time{}, time.Time{})
				if err != nil {
					b.Fatal(err)
				}
				if err := pipeline.New(pipeline.Options{}).Run(context.Background(), d); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(dirBytes(dir)), "dir-bytes")
		})
		b.Run("report/"+name, func(b *testing.B) {
			var size int
			for b.Loop() {
				d, err := flight.OpenDir(dir, time.Time{}, time.Time{})
				if err != nil {
					b.Fatal(err)
				}
				var buf bytes.Buffer
				if err := Render(context.Background(), d, Options{Title: dir, Input: InputDataDir}, &buf); err != nil {
					b.Fatal(err)
				}
				size = buf.Len()
				io.Discard.Write(buf.Bytes())
			}
			b.ReportMetric(float64(size), "html-bytes")
			b.ReportMetric(float64(dirBytes(dir)), "dir-bytes")
		})
	}
}
