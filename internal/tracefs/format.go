package tracefs

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Field is one field of a trace event record.
type Field struct {
	Name   string
	Type   string // C declaration without the name, e.g. "unsigned long"
	Offset uint32
	Size   uint32
	Signed bool
}

// Format is a parsed events/<group>/<event>/format file.
type Format struct {
	Name   string
	ID     uint32
	Fields map[string]Field
	Print  string // the "print fmt:" line, which holds __print_flags tables
}

// ParseFormat parses a tracefs event format file.
func ParseFormat(r io.Reader) (*Format, error) {
	f := &Format{Fields: map[string]Field{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20) // print fmt lines run to tens of KiB
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(s, "name:"):
			f.Name = strings.TrimSpace(strings.TrimPrefix(s, "name:"))
		case strings.HasPrefix(s, "ID:"):
			id, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(s, "ID:")), 10, 32)
			if err != nil {
				return nil, fmt.Errorf("format line %d: bad ID: %w", line, err)
			}
			f.ID = uint32(id)
		case strings.HasPrefix(s, "field:"):
			fld, err := parseField(s)
			if err != nil {
				return nil, fmt.Errorf("format line %d: %w", line, err)
			}
			f.Fields[fld.Name] = fld
		case strings.HasPrefix(s, "print fmt:"):
			f.Print = strings.TrimSpace(strings.TrimPrefix(s, "print fmt:"))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read format: %w", err)
	}
	if len(f.Fields) == 0 {
		return nil, fmt.Errorf("format has no fields")
	}
	return f, nil
}

// parseField parses "field:unsigned long pfn;	offset:8;	size:8;	signed:0;".
func parseField(s string) (Field, error) {
	var fld Field
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		key, val, ok := strings.Cut(part, ":")
		if !ok {
			continue
		}
		switch key {
		case "field":
			decl := strings.TrimSpace(val)
			// Arrays ("char comm[16]") keep their brackets on the name.
			i := strings.LastIndexAny(decl, " *")
			if i < 0 {
				return fld, fmt.Errorf("field %q: no type", decl)
			}
			fld.Type = strings.TrimSpace(decl[:i+1])
			fld.Name = decl[i+1:]
			if b := strings.IndexByte(fld.Name, '['); b >= 0 {
				fld.Name = fld.Name[:b]
			}
		case "offset", "size", "signed":
			n, err := strconv.ParseUint(strings.TrimSpace(val), 10, 32)
			if err != nil {
				return fld, fmt.Errorf("field %s: %w", key, err)
			}
			switch key {
			case "offset":
				fld.Offset = uint32(n)
			case "size":
				fld.Size = uint32(n)
			default:
				fld.Signed = n != 0
			}
		}
	}
	if fld.Name == "" {
		return fld, fmt.Errorf("field without a name: %q", s)
	}
	return fld, nil
}
