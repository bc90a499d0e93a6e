package flight

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/trace"
)

// Pin writes what OpenDir(dir, from, to) yields to a standalone trace at
// outPath (mode 0600). It writes a temporary file in the same directory and
// renames it, so a crash never leaves a partial file under outPath. Flush
// the Recorder first (or use Recorder.Pin) so its last second is included.
func Pin(dir, outPath string, from, to time.Time) error {
	src, err := OpenDir(dir, from, to)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(outPath), "."+filepath.Base(outPath)+".*.tmp")
	if err != nil {
		return fmt.Errorf("pin incident: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	w, err := trace.Create(tmpName)
	if err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("pin incident: %w", err)
	}
	var n int
	var werr error
	src.Run(context.Background(), func(ev event.Event) {
		if werr == nil {
			werr = w.Write(ev)
			n++
		}
	})
	if cerr := w.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil && n == 0 {
		werr = fmt.Errorf("no events recorded in %s between %s and %s: pick a window the agent was recording", dir, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if werr == nil {
		werr = os.Rename(tmpName, outPath)
	}
	if werr != nil {
		os.Remove(tmpName)
		return fmt.Errorf("pin incident %s: %w", outPath, werr)
	}
	syncDir(filepath.Dir(outPath))
	return nil
}

// syncDir makes a rename durable; failure only loses that guarantee.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// PruneIncidents deletes the oldest pinned incidents of dir/incidents while
// there are more than maxCount or they take more than maxBytes (a limit
// <= 0 is no limit). An incident is <name>.json and <name>.fst, deleted
// together; its age is that of its newer file.
//
// Names in keep (incidents being kept right now: the one just pinned, the
// groups still waiting for their window) are never deleted, even when one
// alone is over maxBytes: the newest evidence is what the bound protects.
func PruneIncidents(dir string, maxCount int, maxBytes int64, keep ...string) error {
	incDir := filepath.Join(dir, incidentsDir)
	ents, err := os.ReadDir(incDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("prune incidents: %w", err)
	}
	type incident struct {
		name  string
		files []string
		size  int64
		mod   time.Time
	}
	byName := map[string]*incident{}
	var total int64
	for _, e := range ents {
		ext := filepath.Ext(e.Name())
		if !e.Type().IsRegular() || (ext != ".json" && ext != segmentExt) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed since ReadDir
		}
		name := strings.TrimSuffix(e.Name(), ext)
		inc := byName[name]
		if inc == nil {
			inc = &incident{name: name}
			byName[name] = inc
		}
		inc.files = append(inc.files, filepath.Join(incDir, e.Name()))
		inc.size += info.Size()
		total += info.Size()
		if info.ModTime().After(inc.mod) {
			inc.mod = info.ModTime()
		}
	}
	incs := slices.Collect(maps.Values(byName))
	slices.SortFunc(incs, func(a, b *incident) int {
		return cmp.Or(a.mod.Compare(b.mod), strings.Compare(a.name, b.name))
	})
	var errs []error
	for i, inc := range incs {
		over := (maxCount > 0 && len(incs)-i > maxCount) || (maxBytes > 0 && total > maxBytes)
		if !over {
			break
		}
		if slices.Contains(keep, inc.name) {
			continue
		}
		for _, f := range inc.files {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		total -= inc.size
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("prune incidents: %w", err)
	}
	return nil
}
