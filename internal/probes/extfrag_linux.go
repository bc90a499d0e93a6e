package probes

import (
	"errors"

	"github.com/fragscope/fragscope/internal/tracefs"
)

func (s *Set) attachExtfrag(m Mechanism) (string, error) {
	spec, err := loadExtfrag()
	if err != nil {
		return "", err
	}
	const target = "kmem/mm_page_alloc_extfrag"
	consts := map[string]any{"pageblock_order": s.opts.PageblockOrder}
	coll, err := s.attachTracepointTwin(spec, "extfrag", target, m, consts, nil, func() (map[string]any, error) {
		f, err := tracefs.ReadFormat("kmem", "mm_page_alloc_extfrag")
		if err != nil {
			return nil, err
		}
		return extfragConsts(f)
	})
	if err != nil {
		return "", err
	}
	s.extfragCounts = coll.Maps["extfrag_counts"]
	s.extfragOverflow = coll.Maps["extfrag_overflow"]
	return target, nil
}

// extfragConsts reads the field offsets of the classic tracepoint record,
// whose argument list changed in 3.12, 3.12.30 and 3.19.2.
func extfragConsts(f *tracefs.Format) (map[string]any, error) {
	c := map[string]any{}
	for field, konst := range map[string]string{
		"alloc_order":          "tp_off_alloc_order",
		"fallback_order":       "tp_off_fallback_order",
		"alloc_migratetype":    "tp_off_alloc_mt",
		"fallback_migratetype": "tp_off_fallback_mt",
	} {
		fl, ok := f.Fields[field]
		if !ok {
			return nil, errors.New("mm_page_alloc_extfrag format lacks " + field)
		}
		c[konst] = fl.Offset
	}
	return c, nil
}
