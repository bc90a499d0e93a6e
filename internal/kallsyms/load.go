package kallsyms

import (
	"fmt"
	"os"
	"sync"
)

const procKallsyms = "/proc/kallsyms"

var (
	loadOnce  sync.Once
	loadTable *Table
	loadErr   error
)

// Load returns the process-wide table of the running kernel, reading
// /proc/kallsyms on the first call only: the file takes tens of
// milliseconds to generate and the table a few MiB to hold, and kernel text
// does not move while the process runs. Module loads after the first call
// are not seen. The error, including ErrHidden, is cached as well.
func Load() (*Table, error) {
	loadOnce.Do(func() {
		f, err := os.Open(procKallsyms)
		if err != nil {
			loadErr = fmt.Errorf("open kallsyms: %w", err)
			return
		}
		defer f.Close()
		loadTable, loadErr = New(f)
		if loadErr != nil {
			loadErr = fmt.Errorf("load %s: %w", procKallsyms, loadErr)
		}
	})
	return loadTable, loadErr
}
