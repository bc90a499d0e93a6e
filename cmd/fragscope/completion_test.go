package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// requireTool returns the path of a program a test needs, from the Debian
// package pkg. Missing, the test skips, but not under CI=true: CI must
// run it (install pkg in .ci/run).
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed and CI=true: apt-get install %s in .ci/run", name, pkg)
	}
	t.Skipf("%s is not installed: apt-get install %s (set CI=true to make this a failure)", name, pkg)
	return ""
}

// shell runs script in a shell that finds the test binary as fragscope.
func shell(t *testing.T, sh string, args ...string) string {
	t.Helper()
	cmd := exec.Command(sh, args...)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(buildBinary(t))+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("%s %q: %v\n%s%s", sh, args, err, out, stderr.Bytes())
	}
	return string(out)
}

// The protocol both scripts use: the words before the cursor, then
// --generate-bash-completion; the shell keeps what matches the word.
func TestGenerateBashCompletion(t *testing.T) {
	out, err := exec.Command(buildBinary(t), "--generate-bash-completion").Output()
	if err != nil {
		t.Fatal(err)
	}
	var re []string
	for _, w := range strings.Fields(string(out)) {
		if strings.HasPrefix(w, "re") {
			re = append(re, w)
		}
	}
	if want := []string{"record", "replay", "report"}; !slices.Equal(re, want) {
		t.Errorf("commands starting with re: %q, want %q (all: %q)", re, want, out)
	}
}

func TestCompletionNeedsKnownShell(t *testing.T) {
	for _, args := range [][]string{{"completion"}, {"completion", "fish"}} {
		out, err := exec.Command(buildBinary(t), args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "bash") || !strings.Contains(string(out), "zsh") || bytes.Count(out, []byte("\n")) != 1 {
			t.Errorf("%q: %v, want one line naming bash and zsh:\n%s", args, err, out)
		}
	}
}

func TestBashCompletion(t *testing.T) {
	bash := requireTool(t, "bash", "bash")
	out := shell(t, bash, "-c", "source <(fragscope completion bash); complete -p fragscope")
	if !strings.Contains(out, "-F _fragscope_complete fragscope") {
		t.Fatalf("complete -p fragscope: %q, want the completion function registered", out)
	}
	// What the shell offers for a line whose last word is being completed
	// (an empty one after a trailing space). None means file names.
	for _, tc := range []struct{ line, want string }{
		{"fragscope re", "record replay report"},
		{"fragscope replay --s", "--summary --speed --sort --since"},
		{"fragscope replay FILE --j", "--json"},
		{"fragscope replay --", "--json --summary --speed --top --sort --limit --since --until --help"},
		{"fragscope completion ", "bash zsh"},
		{"fragscope replay ", ""},
		{"fragscope replay FILE ", ""},
		// after --, urfave would run the command rather than complete it
		{"fragscope replay -- ", ""},
	} {
		script := `source <(fragscope completion bash)
read -ra COMP_WORDS <<<"$1"
[[ $1 == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_fragscope_complete
echo "${COMPREPLY[*]}"`
		if got := strings.TrimSpace(shell(t, bash, "-c", script, "bash", tc.line)); got != tc.want {
			t.Errorf("%q: bash offers %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestZshCompletion(t *testing.T) {
	zsh := requireTool(t, "zsh", "zsh")
	// _describe and _files are stubbed: they print what they would offer
	// (_describe filters by the word itself, so all commands come back).
	script := `autoload -Uz compinit && compinit -u -D
source <(fragscope completion zsh)
print -r -- "registered: $_comps[fragscope]"
_describe() { print -rl -- "${(@P)2}" }
_files() { print FILES }
words=(${=1})
[[ $1 == *" " ]] && words+=("")
CURRENT=$#words
_fragscope`
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"fragscope re", []string{"record:", "replay:"}},
		{"fragscope replay --s", []string{"--summary", "--speed", "--sort"}},
		{"fragscope completion ", []string{"bash:", "zsh:"}},
		{"fragscope replay ", []string{"FILES"}},
		{"fragscope replay -- ", []string{"FILES"}},
	} {
		out := shell(t, zsh, "-fc", script, "zsh", tc.line)
		if !strings.HasPrefix(out, "registered: _fragscope\n") {
			t.Fatalf("the zsh script did not register _fragscope:\n%s", out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, "\n"+w) {
				t.Errorf("%q: zsh offers no %q:\n%s", tc.line, w, out)
			}
		}
	}
}

func TestManPage(t *testing.T) {
	groff := requireTool(t, "groff", "groff-base")
	page, err := exec.Command(buildBinary(t), "man").Output()
	if err != nil {
		t.Fatal(err)
	}
	// -ww: every warning; -P-cbou: plain text, no bold or underlining.
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-P-cbou")
	cmd.Stdin = bytes.NewReader(page)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("groff -man -Tutf8 -ww: %v\n%s", err, stderr.Bytes())
	}
	for _, want := range []string{"NAME", "SYNOPSIS", "\nreplay\n", "--json: the NDJSON stream", "\ncompletion\n"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the rendered man page lacks %q", want)
		}
	}
}
