package kallsyms

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// ErrHidden is returned when every address in the input is 0: the kernel
// hides them from readers without CAP_SYSLOG when kernel.kptr_restrict is
// set, and resolving against zeros would name every frame wrongly.
var ErrHidden = errors.New("kallsyms addresses hidden: run as root or set kernel.kptr_restrict=0")

// maxUnknownSize bounds the offset accepted into the last symbol of vmlinux
// or of a module, whose size the file does not tell (the next symbol belongs
// to someone else). No kernel function comes close to it.
const maxUnknownSize = 64 << 10

// meta is the part of a symbol that binary search does not need.
type meta struct {
	nameOff uint32
	nameLen uint16
	mod     uint16 // index into Table.mods; 0 is vmlinux
}

// Table is a symbolizer built once from /proc/kallsyms text symbols. It is
// immutable and safe for concurrent use.
type Table struct {
	addrs []uint64 // sorted ascending; stable, so aliases keep file order
	meta  []meta   // parallel to addrs
	names string   // every name, back to back
	mods  []string // module names; mods[0] == ""
}

// New parses kallsyms text ("ffffffff8120abd0 T _printk", optionally
// followed by "\t[module]"). Only text symbols (t, T, w, W) are kept: stack
// frames point into code. It returns ErrHidden when every address is 0.
func New(r io.Reader) (*Table, error) {
	t := &Table{mods: []string{""}}
	modIndex := map[string]uint16{}
	var names []byte
	br := bufio.NewReaderSize(r, 64<<10)
	lines, nonZero := 0, false
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer is not kallsyms; skip it.
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			continue
		}
		if len(line) > 0 {
			lines++
			addr, typ, name, mod, ok := parseLine(line)
			if ok && addr != 0 {
				nonZero = true
			}
			if ok && isText(typ) && len(name) <= 0xffff && len(names)+len(name) <= 1<<32-1 {
				mi := uint16(0)
				if len(mod) > 0 {
					idx, seen := modIndex[string(mod)]
					if !seen {
						if len(t.mods) > 0xffff {
							return nil, errors.New("parse kallsyms: too many modules")
						}
						idx = uint16(len(t.mods))
						name := string(mod)
						modIndex[name] = idx
						t.mods = append(t.mods, name)
					}
					mi = idx
				}
				t.addrs = append(t.addrs, addr)
				t.meta = append(t.meta, meta{nameOff: uint32(len(names)), nameLen: uint16(len(name)), mod: mi})
				names = append(names, name...)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read kallsyms: %w", err)
		}
	}
	if lines > 0 && !nonZero {
		return nil, ErrHidden
	}
	t.names = string(names)
	// Appending leaves up to a quarter of the capacity unused; the table
	// lives for the whole process, so trim it to size once.
	if cap(t.addrs)-len(t.addrs) > len(t.addrs)/16 {
		t.addrs = append([]uint64(nil), t.addrs...)
		t.meta = append([]meta(nil), t.meta...)
	}
	t.sortByAddr()
	return t, nil
}

// sortByAddr orders the parallel slices by address. /proc/kallsyms lists
// vmlinux in address order but modules and BPF programs after it in load
// order. The sort is stable so that aliases keep their file order.
func (t *Table) sortByAddr() {
	if slices.IsSorted(t.addrs) {
		return
	}
	type entry struct {
		addr uint64
		m    meta
	}
	es := make([]entry, len(t.addrs))
	for i := range es {
		es[i] = entry{t.addrs[i], t.meta[i]}
	}
	slices.SortStableFunc(es, func(a, b entry) int { return cmp.Compare(a.addr, b.addr) })
	for i, e := range es {
		t.addrs[i], t.meta[i] = e.addr, e.m
	}
}

// footprint is the heap the table keeps reachable, in bytes.
func (t *Table) footprint() int {
	n := cap(t.addrs)*8 + cap(t.meta)*int(unsafe.Sizeof(meta{})) + len(t.names) + cap(t.mods)*16
	for _, m := range t.mods {
		n += len(m)
	}
	return n
}

func isText(typ byte) bool { return typ == 't' || typ == 'T' || typ == 'w' || typ == 'W' }

// parseLine splits "addr type name[\t[module]]" without allocating.
func parseLine(line []byte) (addr uint64, typ byte, name, mod []byte, ok bool) {
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1]
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || sp > 16 || len(line) < sp+4 || line[sp+2] != ' ' {
		return 0, 0, nil, nil, false
	}
	for _, c := range line[:sp] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, 0, nil, nil, false
		}
		addr = addr<<4 | uint64(d)
	}
	typ = line[sp+1]
	name = line[sp+3:]
	for i, c := range name {
		if c == '\t' || c == ' ' {
			name, mod = name[:i], bytes.TrimSpace(name[i+1:])
			if len(mod) >= 2 && mod[0] == '[' && mod[len(mod)-1] == ']' {
				mod = mod[1 : len(mod)-1]
			} else {
				mod = nil
			}
			break
		}
	}
	return addr, typ, name, mod, len(name) > 0
}

// Len returns the number of text symbols.
func (t *Table) Len() int { return len(t.addrs) }

// Resolve finds the text symbol containing addr. size is the distance to
// the next symbol at a higher address in the same module (the kernel's own
// notion of a symbol's size in call traces), or 0 when unknown: the last
// symbol of vmlinux or of a module. ok is false for addresses below the
// first symbol or too far past the last one of their group.
func (t *Table) Resolve(addr uint64) (sym string, off, size uint64, module string, ok bool) {
	// The last symbol at or below addr.
	lo, hi := 0, len(t.addrs)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if t.addrs[mid] <= addr {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	i := lo - 1
	if i < 0 {
		return "", 0, 0, "", false
	}
	// Aliases share an address; like the kernel, name the first of them.
	for i > 0 && t.addrs[i-1] == t.addrs[i] {
		i--
	}
	m := t.meta[i]
	j := i + 1
	for j < len(t.addrs) && t.addrs[j] == t.addrs[i] {
		j++
	}
	off = addr - t.addrs[i]
	if j < len(t.addrs) && t.meta[j].mod == m.mod {
		size = t.addrs[j] - t.addrs[i]
	} else if off >= maxUnknownSize {
		return "", 0, 0, "", false
	}
	return t.names[m.nameOff : m.nameOff+uint32(m.nameLen)], off, size, t.mods[m.mod], true
}

// FormatFrame renders addr as the kernel prints a call-trace entry:
// "__alloc_pages_slowpath+0x1a/0x940", with " [module]" for module symbols
// and without "/size" when the size is unknown. An address that resolves to
// nothing is printed as "0x" and its hex value.
func (t *Table) FormatFrame(addr uint64) string {
	sym, off, size, mod, ok := t.Resolve(addr)
	if !ok {
		return "0x" + strconv.FormatUint(addr, 16)
	}
	var num [40]byte // "+0x" and "/0x" with two 64-bit hex numbers
	n := strconv.AppendUint(append(num[:0], "+0x"...), off, 16)
	if size != 0 {
		n = strconv.AppendUint(append(n, "/0x"...), size, 16)
	}
	var b strings.Builder
	b.Grow(len(sym) + len(n) + len(mod) + 3)
	b.WriteString(sym)
	b.Write(n)
	if mod != "" {
		b.WriteString(" [")
		b.WriteString(mod)
		b.WriteByte(']')
	}
	return b.String()
}

// Lookup returns the address of the first text symbol called name. It scans
// the whole table: meant for tests and one-off checks, not for hot paths.
func (t *Table) Lookup(name string) (addr uint64, ok bool) {
	for i, m := range t.meta {
		if int(m.nameLen) == len(name) && t.names[m.nameOff:m.nameOff+uint32(m.nameLen)] == name {
			return t.addrs[i], true
		}
	}
	return 0, false
}
