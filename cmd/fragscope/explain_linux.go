package main

import (
	"io"

	"github.com/fragscope/fragscope/internal/kernlog"
)

// openKernelBuffer returns the running kernel's log buffer as it is now,
// read without blocking to its end: /dev/kmsg needs root (or
// kernel.dmesg_restrict=0).
func openKernelBuffer() (io.ReadCloser, error) {
	return kernlog.OpenBuffer()
}
