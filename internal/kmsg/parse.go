package kmsg

import (
	"bufio"
	"bytes"
	"io"
)

// Options tune the parser. The zero value is right for most inputs.
type Options struct {
	// Year is given to syslog and journalctl dates, which print none. 0
	// leaves the year 0 (the date is still kept as month, day and time).
	Year int
	// MaxGap is how many consecutive lines of other messages an open report
	// tolerates before it is closed (another CPU printing, a daemon's lines
	// in syslog). 0 means 100.
	MaxGap int
}

func (o Options) maxGap() int {
	if o.MaxGap <= 0 {
		return 100
	}
	return o.MaxGap
}

// maxLine bounds one input line. Real kernel lines stay under 1 kB, a syslog
// line with #012 folding under 8 kB; the bound only keeps a corrupt input
// from growing the buffer without limit. Longer lines are cut, not fatal.
const maxLine = 256 << 10

// Parse reads r to the end and returns every report in it, in input order.
// The error is r's, never the content's: what cannot be read is skipped and
// named in the report's Unreadable.
func Parse(r io.Reader, opts Options) ([]Report, error) {
	var out []Report
	p := NewParser(opts, func(rep Report) { out = append(out, rep) })
	err := feedAll(p, r)
	p.Flush()
	return out, err
}

// feedAll feeds every line of r to p. A line longer than maxLine is cut to
// maxLine and the rest of it dropped.
func feedAll(p *Parser, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	for {
		b, err := br.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			if len(long) < maxLine {
				long = append(long, b[:min(len(b), maxLine-len(long))]...)
			}
			continue
		case long != nil:
			if len(long) < maxLine {
				long = append(long, b[:min(len(b), maxLine-len(long))]...)
			}
			b, long = long, nil
		}
		if len(b) > 0 {
			p.Feed(bytes.TrimSuffix(b, []byte{'\n'}))
		}
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// Parser assembles reports from lines fed one at a time. It is what Parse
// runs, exposed for live sources: feed each line (or each /dev/kmsg record,
// "prio,seq,usec,flags;text" with its " KEY=VALUE" dictionary lines) as it
// arrives, and call Flush when the source goes quiet, because the kernel
// prints no end marker: a report is known complete only when something else
// follows it or nothing does.
//
// A Parser is not safe for concurrent use. Emit is called from Feed and
// Flush; the Report is the caller's to keep.
type Parser struct {
	opts Options
	emit func(Report)
	m    machine
	t    transport
}

// NewParser returns a Parser that calls emit with each completed report.
func NewParser(opts Options, emit func(Report)) *Parser {
	p := &Parser{opts: opts, emit: emit}
	p.m.init(opts, emit)
	p.t.init(opts, p.m.line)
	return p
}

// Feed reads one input line, without its newline. A /dev/kmsg record may be
// fed whole (text and dictionary lines separated by '\n'). Feed does not
// retain line.
func (p *Parser) Feed(line []byte) {
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		for len(line) > 0 {
			i = bytes.IndexByte(line, '\n')
			if i < 0 {
				p.t.physical(line)
				return
			}
			p.t.physical(line[:i])
			line = line[i+1:]
		}
		return
	}
	p.t.physical(line)
}

// Flush completes and emits every report still open, as at the end of the
// input. Lines fed afterwards start afresh (a wrapped line is not joined
// across a Flush).
func (p *Parser) Flush() {
	p.t.flush()
	p.m.flush()
}

// Scanner yields the reports of a stream one at a time, as soon as each is
// complete, like bufio.Scanner yields lines. At the end of the input it
// flushes, so the last report is not lost.
type Scanner struct {
	p     *Parser
	br    *bufio.Reader
	ready []Report
	cur   Report
	err   error
	done  bool
}

// NewScanner returns a Scanner reading r.
func NewScanner(r io.Reader, opts Options) *Scanner {
	s := &Scanner{br: bufio.NewReaderSize(r, 64<<10)}
	s.p = NewParser(opts, func(rep Report) { s.ready = append(s.ready, rep) })
	return s
}

// Scan advances to the next report, reading as much input as it takes. It
// returns false at the end of the input or on a read error (see Err).
func (s *Scanner) Scan() bool {
	for len(s.ready) == 0 && !s.done {
		b, err := s.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// An overlong line: keep its head, as feedAll does.
			s.p.Feed(b)
			for err == bufio.ErrBufferFull {
				_, err = s.br.ReadSlice('\n')
			}
		} else if len(b) > 0 {
			s.p.Feed(bytes.TrimSuffix(b, []byte{'\n'}))
		}
		if err != nil {
			if err != io.EOF {
				s.err = err
			}
			s.done = true
			s.p.Flush()
		}
	}
	if len(s.ready) == 0 {
		return false
	}
	s.cur = s.ready[0]
	s.ready[0] = Report{}
	s.ready = s.ready[1:]
	return true
}

// Report returns the report Scan found.
func (s *Scanner) Report() Report { return s.cur }

// Err returns the first read error, nil at a clean end of input.
func (s *Scanner) Err() error { return s.err }
