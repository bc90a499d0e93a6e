package procfs

import (
	"bufio"
	"fmt"
	"io"
)

// ParseError reports a malformed line. Kind is the file kind ("buddyinfo",
// "zoneinfo", ...) and Line is 1-based.
type ParseError struct {
	Kind string
	Line int
	Err  error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s line %d: %v", e.Kind, e.Line, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// maxLine bounds one line. Real lines are a few hundred bytes (a Mem-Info
// line with 14 orders and migratetype letters stays under 400); the bound
// only keeps a corrupt input from growing the buffer without limit.
const maxLine = 64 << 10

// lines calls fn for every line of r with its 1-based number. It stops at the
// first error from fn, which it returns wrapped in a *ParseError.
func lines(r io.Reader, kind string, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		if err := fn(n, sc.Text()); err != nil {
			return &ParseError{Kind: kind, Line: n, Err: err}
		}
	}
	if err := sc.Err(); err != nil {
		return &ParseError{Kind: kind, Line: n + 1, Err: err}
	}
	return nil
}
