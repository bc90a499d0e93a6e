package kernlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/kmsg"
)

// DevKmsg is the kernel's log buffer as records (Documentation/ABI/testing/dev-kmsg).
const DevKmsg = "/dev/kmsg"

// maxRecord is larger than any record the kernel serves (PRINTK_MESSAGE_MAX
// plus the dictionary is under 2 kB); read(2) on /dev/kmsg returns one
// record per call and EINVAL for a buffer too small to hold it.
const maxRecord = 8 << 10

// openErr says, in one line, why /dev/kmsg could not be read and the fix.
func openErr(err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("open %s: %w: run as root, or with CAP_SYSLOG, or set kernel.dmesg_restrict=0", DevKmsg, err)
	}
	return fmt.Errorf("open %s: %w: name a log FILE instead", DevKmsg, err)
}

// OpenBuffer reads the running kernel's log buffer as it is now, without
// blocking, to its end, and returns its records one per line.
func OpenBuffer() (io.ReadCloser, error) {
	fd, err := unix.Open(DevKmsg, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openErr(&os.PathError{Op: "open", Path: DevKmsg, Err: err})
	}
	defer unix.Close(fd)
	var out bytes.Buffer
	buf := make([]byte, maxRecord)
	for {
		n, err := unix.Read(fd, buf)
		switch {
		case err == unix.EAGAIN:
			return io.NopCloser(&out), nil
		case err == unix.EPIPE:
			continue // records were overwritten while reading: the next read resumes after them
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", DevKmsg, err)
		}
		rec := buf[:n]
		out.Write(rec)
		if n > 0 && rec[n-1] != '\n' {
			out.WriteByte('\n')
		}
	}
}

// Follower follows /dev/kmsg in a live session: the records printed from
// now on become events, batch by batch, each batch a failure's events in
// order. It runs on its own goroutine; the live source emits the batches on
// its one emitting goroutine.
type Follower struct {
	Options Options
	// Quiet is how long the log must stay quiet before open reports are
	// taken as complete (the kernel prints no end marker); default 1 s.
	Quiet time.Duration

	fd int
}

// OpenFollower opens /dev/kmsg positioned at its end: what the kernel
// printed before the session is not part of it.
func OpenFollower(o Options) (*Follower, error) {
	fd, err := unix.Open(DevKmsg, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openErr(&os.PathError{Op: "open", Path: DevKmsg, Err: err})
	}
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("seek %s to its end: %w", DevKmsg, err)
	}
	if o.Source == "" {
		o.Source = DevKmsg
	}
	return &Follower{Options: o, fd: fd}, nil
}

// Close releases /dev/kmsg. Call it after Run returned.
func (f *Follower) Close() error { return unix.Close(f.fd) }

// Run reads records until ctx ends and sends each completed failure's
// events to out. It returns nil when ctx ends.
func (f *Follower) Run(ctx context.Context, out chan<- []event.Event) error {
	quiet := f.Quiet
	if quiet <= 0 {
		quiet = time.Second
	}
	var batch []event.Event
	conv := NewConverter(f.Options, func(ev event.Event) { batch = append(batch, ev) })
	parser := kmsg.NewParser(kmsg.Options{}, conv.Add)
	send := func() bool {
		if len(batch) == 0 {
			return true
		}
		select {
		case out <- batch:
			batch = nil
			return true
		case <-ctx.Done():
			return false
		}
	}
	buf := make([]byte, maxRecord)
	pfd := []unix.PollFd{{Fd: int32(f.fd), Events: unix.POLLIN}}
	var lastRecord time.Time
	open := false // records fed since the last flush
	for ctx.Err() == nil {
		n, err := unix.Read(f.fd, buf)
		switch {
		case err == nil:
			parser.Feed(bytes.TrimSuffix(buf[:n], []byte{'\n'}))
			lastRecord, open = time.Now(), true
			if !send() {
				return nil
			}
			continue
		case err == unix.EPIPE, err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return fmt.Errorf("read %s: %w", DevKmsg, err)
		}
		if open && time.Since(lastRecord) >= quiet {
			parser.Flush()
			conv.Flush()
			open = false
			if !send() {
				return nil
			}
		}
		// 200 ms bounds how late ctx's end is noticed.
		if _, err := unix.Poll(pfd, 200); err != nil && err != unix.EINTR {
			return fmt.Errorf("poll %s: %w", DevKmsg, err)
		}
	}
	return nil
}
