package trace

import (
	"hash/crc32"

	"github.com/fragscope/fragscope/internal/event"
)

// Magic opens every trace file; Version is the format version after it.
//
// Version 2 packs mem_snapshot records in binary (JSON in version 1, where
// they were 90% of a quiet recording); readers accept both.
const (
	Magic      = "FRAGSCOP"
	Version    = 2
	minVersion = 1
)

// preambleLen is magic + u16 version + u16 flags + u32 reserved.
const preambleLen = 16

// frameHeaderLen is u32 payload length + u32 CRC-32C.
const frameHeaderLen = 8

// maxPayload bounds one record so a corrupt length cannot make the reader
// allocate gigabytes. The largest real records (snapshots) are a few KiB.
const maxPayload = 16 << 20

// Record kinds beyond the event kinds (which keep their event.Kind value).
const (
	kindStack byte = 100 // a symbolized kernel stack, referenced by AllocFail records
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Kinds encoded as JSON: rare, nested, and free to grow fields. Version 1
// wrote snapshots as JSON too.
func jsonKind(k event.Kind, version uint16) bool {
	return k == event.KindStart || k == event.KindCgroupPath || k == event.KindKernelReport ||
		k == event.KindStall ||
		k == event.KindMemcgState || k == event.KindTaskMemStalls ||
		(version == 1 && k == event.KindMemSnapshot)
}
