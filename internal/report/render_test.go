package report_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/kernlog"
	"github.com/fragscope/fragscope/internal/report"
	"github.com/fragscope/fragscope/internal/trace"
)

// render draws a fixture's report through the pipeline: a trace file as
// replay reads it, a kernel log as explain does.
func render(t *testing.T, input string) []byte {
	t.Helper()
	opt := report.Options{Title: filepath.Base(input), Input: report.InputRecording}
	var src event.Source
	if strings.HasSuffix(input, ".log") {
		f, err := os.Open(input)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		opt.Input = report.InputKernelLog
		src = &kernlog.File{R: f, Options: kernlog.Options{Source: filepath.Base(input)}, Version: "test"}
	} else {
		r, f, err := trace.Open(input)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		src = &trace.Source{Reader: r}
	}
	var buf bytes.Buffer
	if err := report.Render(context.Background(), src, opt, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
