// Command gengfp writes internal/gfp/eras_generated.go: the gfp flag table
// (in show_gfp_flags print order) and the enum migratetype order of each
// kernel era, evaluated from that kernel's own headers.
//
// Usage (from internal/gfp, via go generate):
//
//	go run ./internal/gengfp -src /tmp/gfp-src -o eras_generated.go
//
// -src is a directory with one subdirectory per era (named as in the eras
// list below), each holding that kernel's
//
//	include/linux/gfp.h             (all eras)
//	include/linux/gfp_types.h       (6.0+, where the bits moved)
//	include/linux/mmzone.h          (enum migratetype)
//	include/trace/events/gfpflags.h (before 4.8) or mmflags.h (4.8+)
//	SOURCE                          repo=, commit=, makefile= lines for the citation
//
// A kernel tree works as such a subdirectory too. The headers are kernel
// code and are never committed; only the evaluated names and values are.
// How to fetch them again is in ../../eras.go.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/gfp"
)

// distroConfig is the kernel config the conditional bits are evaluated with:
// an x86_64 distribution kernel (RHEL, Debian, Ubuntu and Fedora all build
// with these). Debug options that add gfp bits (LOCKDEP: ___GFP_NOLOCKDEP;
// KMEMCHECK, removed in 4.15: ___GFP_NOTRACK where it is conditional) and
// arm64-only KASAN_HW_TAGS (___GFP_SKIP_ZERO/SKIP_KASAN) are off in them.
// CMA is left off to match the migratetype order FallbackMigratetypes has
// always assumed (RHEL 7 builds without it); with CMA, MIGRATE_ISOLATE is
// one higher.
var distroConfig = []string{
	"CONFIG_64BIT", "CONFIG_X86", "CONFIG_X86_64", "CONFIG_MMU", "CONFIG_NUMA",
	"CONFIG_ZONE_DMA", "CONFIG_ZONE_DMA32", "CONFIG_TRANSPARENT_HUGEPAGE",
	"CONFIG_COMPACTION", "CONFIG_MIGRATION", "CONFIG_MEMORY_ISOLATION",
	"CONFIG_MEMCG", "CONFIG_MEMCG_KMEM", "CONFIG_MEMORY_FAILURE",
	"CONFIG_SPARSEMEM", "CONFIG_SPARSEMEM_VMEMMAP", "CONFIG_PM_SLEEP",
}

// slabObjExt is set from 6.10, where CONFIG_MEMCG selects SLAB_OBJ_EXT
// (its ___GFP_NO_OBJ_EXT_BIT is in the 6.18 BTF of the development machine).
var slabObjExt = []string{"CONFIG_SLAB_OBJ_EXT"}

type eraSpec struct {
	name         string // subdirectory of -src and Era.Name
	major, minor int
	distro       string
	config       []string
}

// eras are the versions tabled: the LTS lines distributions shipped, RHEL 7's
// own 3.10, 6.14 (the last with the old print order of the single bits, see
// below) and the newest release whose tree could be fetched.
var eras = []eraSpec{
	{name: "3.10", major: 3, minor: 10},
	{name: "3.10.0-el7", major: 3, minor: 10, distro: "el7"},
	{name: "4.4", major: 4, minor: 4},
	{name: "4.9", major: 4, minor: 9},
	{name: "4.14", major: 4, minor: 14},
	{name: "4.19", major: 4, minor: 19},
	{name: "5.4", major: 5, minor: 4},
	{name: "5.10", major: 5, minor: 10},
	{name: "5.15", major: 5, minor: 15},
	{name: "6.1", major: 6, minor: 1},
	{name: "6.6", major: 6, minor: 6},
	{name: "6.12", major: 6, minor: 12, config: slabObjExt},
	// 6.14 still lists the single bits in the old order; 6.16 prints them in
	// bit order (__GFP_ZERO before __GFP_COMP, as 6.18's TRACE_GFP_FLAGS
	// does), so the change is in 6.15 or 6.16. No 6.15 tree was at hand.
	{name: "6.14", major: 6, minor: 14, config: slabObjExt},
	{name: "6.18", major: 6, minor: 18, config: slabObjExt},
}

type result struct {
	spec         eraSpec
	source       string
	files        []string
	config       []string
	flags        []event.Flag
	migratetypes []string
}

func main() {
	src := flag.String("src", "", "directory with one kernel header tree per era (see the package comment)")
	out := flag.String("o", "eras_generated.go", "output file")
	flag.Parse()
	if *src == "" {
		log.Fatal("gengfp: -src is required (see go doc ./internal/gengfp)")
	}
	var results []result
	for _, e := range eras {
		r, err := generate(filepath.Join(*src, e.name), e)
		if err != nil {
			log.Fatalf("gengfp: era %s: %v", e.name, err)
		}
		results = append(results, r)
	}
	code, err := render(results)
	if err != nil {
		log.Fatalf("gengfp: %v", err)
	}
	if err := os.WriteFile(*out, code, 0o644); err != nil {
		log.Fatal(err)
	}
}

// generate evaluates one era's headers in the order the kernel includes
// them: gfp_types.h (from gfp.h), gfp.h, mmzone.h, then the trace header.
func generate(dir string, e eraSpec) (result, error) {
	r := result{spec: e, config: append(append([]string(nil), distroConfig...), e.config...)}
	p := newCPP(r.config)
	trace := "include/trace/events/mmflags.h"
	if _, err := os.Stat(filepath.Join(dir, trace)); err != nil {
		trace = "include/trace/events/gfpflags.h"
	}
	for _, f := range []string{"include/linux/gfp_types.h", "include/linux/gfp.h", "include/linux/mmzone.h", trace} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if os.IsNotExist(err) && f == "include/linux/gfp_types.h" {
			continue // before 6.0 the bits are in gfp.h
		}
		if err != nil {
			return r, err
		}
		if err := p.file(string(data)); err != nil {
			return r, fmt.Errorf("%s: %w", f, err)
		}
		r.files = append(r.files, f)
	}
	// What a TP_printk with show_gfp_flags(REC->gfp_flags) leaves in the
	// tracefs format once the preprocessor is done, parsed the way a
	// running kernel's format file is.
	printed := p.expand("show_gfp_flags(REC->gfp_flags)", nil)
	flags, err := gfp.ParseTracefsFormatEnums(strings.NewReader(printed), p.enums)
	if err != nil {
		return r, fmt.Errorf("show_gfp_flags: %w", err)
	}
	r.flags = flags
	var mt []gfp.EnumValue
	for _, c := range p.enumLists["MIGRATE_UNMOVABLE"] {
		mt = append(mt, gfp.EnumValue{Name: c.name, Value: c.value})
	}
	if r.migratetypes = gfp.MigratetypeNames(mt); r.migratetypes == nil {
		return r, fmt.Errorf("no enum migratetype in mmzone.h")
	}
	r.source, err = readSource(dir)
	return r, err
}

// readSource turns the SOURCE file into the citation.
func readSource(dir string) (string, error) {
	f, err := os.Open(filepath.Join(dir, "SOURCE"))
	if os.IsNotExist(err) {
		return dir, nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	kv := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), "="); ok {
			kv[k] = v
		}
	}
	c := "github.com/" + kv["repo"] + " at " + kv["commit"] + " (Makefile: " + kv["makefile"] + ")"
	if kv["prefix"] != "" {
		c += ", under " + kv["prefix"]
	}
	return c, s.Err()
}

func render(results []result) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by internal/gengfp from each kernel's headers; DO NOT EDIT.\n\n")
	b.WriteString("package gfp\n\nimport \"github.com/fragscope/fragscope/internal/event\"\n\n")
	b.WriteString("// eras are the generated tables, oldest first. See eras.go.\nvar eras = []Era{\n")
	for _, r := range results {
		fmt.Fprintf(&b, "\t// %s: %s.\n", r.spec.name, r.source)
		fmt.Fprintf(&b, "\t// Files: %s.\n", strings.Join(r.files, ", "))
		fmt.Fprintf(&b, "\t{\n\t\tName: %q, Major: %d, Minor: %d, Distro: %q,\n", r.spec.name, r.spec.major, r.spec.minor, r.spec.distro)
		fmt.Fprintf(&b, "\t\tSource: %q,\n", r.source+": "+strings.Join(r.files, ", "))
		fmt.Fprintf(&b, "\t\tConfig: %q,\n", sortedConfig(r.config))
		b.WriteString("\t\tFlags: []event.Flag{\n")
		for _, f := range r.flags {
			fmt.Fprintf(&b, "\t\t\t{Name: %q, Value: %#x},\n", f.Name, f.Value)
		}
		b.WriteString("\t\t},\n\t\tMigratetypes: []string{")
		for i, m := range r.migratetypes {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", m)
		}
		b.WriteString("},\n\t},\n")
	}
	b.WriteString("}\n")
	return format.Source(b.Bytes())
}
