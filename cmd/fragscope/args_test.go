package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// reorderCase is a command line, without the program name, and what
// reorderArgs makes of it.
type reorderCase struct{ in, want string }

func checkReorder(t *testing.T, app *cli.App, cases []reorderCase) {
	t.Helper()
	for _, tc := range cases {
		in := append([]string{app.Name}, strings.Fields(tc.in)...)
		want := append([]string{app.Name}, strings.Fields(tc.want)...)
		if got := reorderArgs(app, in); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %q, want %q", tc.in, got[1:], want[1:])
		}
	}
}

func TestReorderArgs(t *testing.T) {
	checkReorder(t, newApp(), []reorderCase{
		// a BoolFlag takes no value: FILE stays an argument
		{"replay FILE --json", "replay --json FILE"},
		{"replay --json FILE", "replay --json FILE"},
		{"replay FILE --speed max --json", "replay --speed max --json FILE"},
		{"replay FILE --summary --top --sort failures --limit 3", "replay --summary --top --sort failures --limit 3 FILE"},
		{"incidents FILE --json", "incidents --json FILE"},
		{"export FILE --format jsonl", "export --format jsonl FILE"},
		// =value forms carry their value; single and double dashes
		{"export FILE --format=jsonl", "export --format=jsonl FILE"},
		{"export FILE -format jsonl", "export -format jsonl FILE"},
		{"replay FILE -json=false", "replay -json=false FILE"},
		// a value is taken as is, like the flag package does, dash or not
		{"replay FILE --limit -1 --top", "replay --limit -1 --top FILE"},
		// a value flag without its value is left alone to be reported
		{"replay FILE --speed", "replay --speed"},
		// the help flag urfave adds at Run is known too
		{"replay FILE --help", "replay --help FILE"},
		{"replay FILE -h", "replay -h FILE"},
		// unknown flags move without a value, for urfave to report
		{"replay FILE --no-such-flag 10m --json", "replay --no-such-flag --json FILE 10m"},
		{"replay FILE --bogus=1", "replay --bogus=1 FILE"},
		// after -- nothing is a flag, and -- must come before the arguments
		{"replay FILE --json -- --odd", "replay --json -- FILE --odd"},
		{"replay -- FILE --json", "replay -- FILE --json"},
		{"replay --speed -- FILE", "replay --speed -- FILE"},
		// - is an argument (stdin, by convention)
		{"replay - --json", "replay --json -"},
		// root flags stay before the command, command flags after it
		{"--help replay FILE --json", "--help replay --json FILE"},
		{"replay FILE --version", "replay --version FILE"},
		// nested subcommands: the walk descends from the app
		{"completion bash --help", "completion bash --help"},
		{"completion --help bash", "completion --help bash"},
		// a command name later in the line is an argument, not a command
		{"replay export --json", "replay --json export"},
		{"", ""},
	})
}

// Every flag of every command of the real app, given after an argument,
// moves before it with its value: a flag added later is covered too.
func TestReorderArgsEveryFlag(t *testing.T) {
	app := newApp()
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := append(append([]string(nil), path...), c.Name)
			walk(p, c.Subcommands)
			for _, f := range c.Flags {
				for _, name := range f.Names() {
					flag := []string{"--" + name}
					if f.(cli.DocGenerationFlag).TakesValue() {
						flag = append(flag, "VALUE")
					}
					in := append(append(append([]string{"fragscope"}, p...), "ARG"), flag...)
					want := append(append(append([]string{"fragscope"}, p...), flag...), "ARG")
					if got := reorderArgs(app, in); !reflect.DeepEqual(got, want) {
						t.Errorf("got %q, want %q", got, want)
					}
				}
			}
		}
	}
	walk(nil, app.Commands)
}

// Subcommands of subcommands, each level with its own flags, aliases and
// short option handling: nothing in the walk knows fragscope's commands.
func TestReorderArgsNested(t *testing.T) {
	app := &cli.App{
		Name:                   "x",
		UseShortOptionHandling: true,
		Flags:                  []cli.Flag{&cli.StringFlag{Name: "config", Aliases: []string{"c"}}},
		Commands: []*cli.Command{{
			Name:    "outer",
			Aliases: []string{"o"},
			Flags:   []cli.Flag{&cli.IntFlag{Name: "n"}},
			Subcommands: []*cli.Command{{
				Name: "inner",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "all", Aliases: []string{"a"}},
					&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}},
					&cli.StringFlag{Name: "output", Aliases: []string{"o"}},
					&cli.DurationFlag{Name: "since"},
				},
			}},
		}},
	}
	checkReorder(t, app, []reorderCase{
		{"-c cfg outer inner A -o out B --since 10m -a", "-c cfg outer inner -o out --since 10m -a A B"},
		{"o -n 3 inner A -o=out", "o -n 3 inner -o=out A"},
		{"outer inner A --output out", "outer inner --output out A"},
		// -av is -a -v; -avo takes the next argument for -o
		{"outer inner A -av B", "outer inner -av A B"},
		{"outer inner A -avo out B", "outer inner -avo out A B"},
		// -n after the subcommand is not outer's: inner reports it
		{"outer inner A -n 3", "outer inner -n A 3"},
		// the first argument of outer that is no subcommand ends the walk
		{"outer A inner -n 3", "outer -n 3 A inner"},
	})
}

// A completion request stays as the shell sent it: urfave reads the word
// being completed from its place before --generate-bash-completion.
func TestReorderArgsLeavesCompletion(t *testing.T) {
	in := []string{"fragscope", "replay", "FILE", "--s", "--generate-bash-completion"}
	if got := reorderArgs(newApp(), in); !reflect.DeepEqual(got, in) {
		t.Errorf("got %q, want %q", got, in)
	}
}

// The real binary on the recordings: flags after FILE print what flags
// before it print, byte for byte, and unknown flags are reported as such.
func TestFlagsAfterArguments(t *testing.T) {
	bin := buildBinary(t)
	traces, err := filepath.Glob(filepath.Join(tracesDir, "*.fst"))
	if err != nil || len(traces) == 0 {
		t.Fatalf("no recordings in %s (%v)", tracesDir, err)
	}
	run := func(args ...string) (stdout, stderr []byte, err error) {
		var o, e bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &o, &e
		err = cmd.Run()
		return o.Bytes(), e.Bytes(), err
	}
	compared := 0
	for _, tr := range traces {
		for _, tc := range []struct {
			cmd   string
			flags []string
		}{
			{"replay", []string{"--json"}},
			{"replay", []string{"--summary"}},
			{"replay", []string{"--speed", "max", "--json"}},
			{"replay", []string{"--top", "--sort", "failures", "--limit", "3"}},
			{"incidents", []string{"--json"}},
			{"export", []string{"--format", "jsonl"}},
			{"export", []string{"--format=jsonl"}},
		} {
			first := append(append([]string{tc.cmd}, tc.flags...), tr)
			after := append([]string{tc.cmd, tr}, tc.flags...)
			t.Run(filepath.Base(tr)+"/"+tc.cmd+" "+strings.Join(tc.flags, " "), func(t *testing.T) {
				want, wantErr, err := run(first...)
				if err != nil {
					t.Fatalf("%q: %v\n%s", first, err, wantErr)
				}
				got, gotErr, err := run(after...)
				if err != nil {
					t.Fatalf("%q: %v\n%s", after, err, gotErr)
				}
				compared += len(want)
				if !bytes.Equal(got, want) || !bytes.Equal(gotErr, wantErr) {
					t.Errorf("%q prints other output than %q", after, first)
				}
			})
		}
	}
	if compared == 0 {
		t.Error("the recordings printed nothing: nothing was compared")
	}
	_, stderr, err := run("replay", traces[0], "--bogus")
	if err == nil || !strings.Contains(string(stderr), "flag provided but not defined: -bogus") {
		t.Errorf("replay FILE --bogus: %v, want the unknown flag reported:\n%s", err, stderr)
	}
}
