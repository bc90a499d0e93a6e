//go:build !linux

package main

import (
	"errors"
	"io"
)

func openKernelBuffer() (io.ReadCloser, error) {
	return nil, errors.New("explain without a FILE reads /dev/kmsg, which exists on Linux only: name a log FILE, or '-' for stdin")
}
