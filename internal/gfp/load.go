package gfp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/fragscope/fragscope/internal/event"
)

// tracefsRoots are where tracefs is found: its own mount point (4.1+) and the
// old location under debugfs.
var tracefsRoots = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

const pageAllocFormat = "events/kmem/mm_page_alloc/format"

// LoadRunning reads the running kernel's gfp flag table and migratetype
// names. The flag table comes from tracefs, with BTF enum bits for kernels
// that print ___GFP_*_BIT names; without tracefs it falls back to the single
// bits of the BTF enum (no GFP_* combinations then). Migratetypes come from
// BTF, else from the kernel release. It fails only when neither tracefs nor
// BTF gives a flag table.
func LoadRunning() (flags []event.Flag, migratetypes []string, err error) {
	spec, btfErr := btf.LoadKernelSpec()
	var bits map[string]uint64
	if btfErr == nil {
		bits = EnumBits(spec)
		migratetypes = Migratetypes(spec)
	}
	if migratetypes == nil {
		migratetypes = FallbackMigratetypes(kernelRelease())
	}

	flags, tfErr := loadTracefs(bits)
	if tfErr == nil {
		return flags, migratetypes, nil
	}
	if len(bits) > 0 {
		return BitsTable(bits), migratetypes, nil
	}
	if btfErr == nil {
		btfErr = errors.New("no ___GFP_*_BIT enum (kernel older than 6.10)")
	}
	return nil, nil, fmt.Errorf("load gfp flag table: tracefs: %w; btf: %w", tfErr, btfErr)
}

func loadTracefs(bits map[string]uint64) ([]event.Flag, error) {
	var errs []error
	for _, root := range tracefsRoots {
		path := filepath.Join(root, pageAllocFormat)
		f, err := os.Open(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		flags, err := ParseTracefsFormatEnums(f, bits)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return flags, nil
	}
	return nil, fmt.Errorf("%w (is tracefs mounted? mount -t tracefs tracefs /sys/kernel/tracing)", errors.Join(errs...))
}

// BitsTable turns ___GFP_*_BIT enum constants into a single-bit flag table
// named like the kernel's (___GFP_IO_BIT -> "__GFP_IO"), in bit order. It
// lacks the GFP_* combinations, so Class says "other" for everything; it is
// the fallback when tracefs is unavailable.
func BitsTable(bits map[string]uint64) []event.Flag {
	flags := make([]event.Flag, 0, len(bits))
	for name, bit := range bits {
		short := strings.TrimSuffix(strings.TrimPrefix(name, "___GFP_"), "_BIT")
		if bit >= 64 || short == "LAST" || short == "UNUSED" {
			continue
		}
		flags = append(flags, event.Flag{Name: "__GFP_" + short, Value: 1 << bit})
	}
	sort.Slice(flags, func(i, j int) bool { return flags[i].Value < flags[j].Value })
	return flags
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
