package main

import (
	"strings"
	"testing"
)

// The constructs the kernel's gfp headers use, in small.
func TestCPP(t *testing.T) {
	p := newCPP([]string{"CONFIG_ON"})
	src := `
#ifndef GUARD
#define GUARD
enum {
	___A_BIT,
	___B_BIT, /* comment */
#ifdef CONFIG_OFF
	___C_BIT,
#endif
	___LAST_BIT
};
#define ___A BIT(___A_BIT)
#ifdef CONFIG_ON
#define ___B 0x2u
#else
#define ___B 0
#endif
#if defined(CONFIG_OFF) && (FOO - 1) <= 4
#define ___X 1
#elif IS_ENABLED(CONFIG_ON)
#define ___X 2
#endif
#define __A ((__force gfp_t)___A)
#define __B ((__force gfp_t)___B)
#define COMBO (__A | \
	__B)
#define STR(flag) {(unsigned long)flag, #flag}
#define EM(a) STR(__##a),
#define NAMES STR(COMBO), EM(A) EM(B) { 0, NULL }
#define show(f) (f) ? __print_flags(f, "|", NAMES) : "none"
#endif
`
	if err := p.file(src); err != nil {
		t.Fatal(err)
	}
	if p.enums["___LAST_BIT"] != 2 {
		t.Errorf("___LAST_BIT = %d, want 2 (___C_BIT is under an unset option)", p.enums["___LAST_BIT"])
	}
	if got := strings.TrimSpace(p.expand("___X", nil)); got != "2" {
		t.Errorf("#elif: ___X = %q", got)
	}
	got := p.expand("show(REC->gfp_flags)", nil)
	for _, want := range []string{`"COMBO"}`, `"__A"}`, `"__B"}`, `(1UL << (___A_BIT))`, `0x2u`, `__print_flags(REC->gfp_flags, "|"`} {
		if !strings.Contains(got, want) {
			t.Errorf("expansion lacks %s:\n%s", want, got)
		}
	}
}
