package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// reorderArgs moves each (sub)command's flags ahead of its positional
// arguments, so `fragscope replay FILE --json` means what
// `fragscope replay --json FILE` does: urfave/cli v2 (Go's flag package)
// stops parsing flags at the first positional argument. It walks the
// commands of app, so a new command or flag needs nothing here.
//
// A flag's value stays with it: the command's flag definitions say which
// flags take one (BoolFlag does not). Unknown flags move too and keep no
// value, so urfave reports them ("flag provided but not defined") instead
// of a confusing argument count. After `--` nothing is a flag. Shell
// completion requests are passed through untouched: urfave reads the
// partial word from its place in os.Args.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 || args[len(args)-1] == "--generate-bash-completion" {
		return args
	}
	out := make([]string, 0, len(args)+1)
	out = append(out, args[0])
	level := rootLevel(app)
	rest := args[1:]
	for {
		flags, positional, sub, tail := splitLevel(level, rest)
		out = append(out, flags...)
		if sub == nil {
			return append(out, positional...)
		}
		out = append(out, positional[0])
		level, rest = commandLevel(sub, app.UseShortOptionHandling), tail
	}
}

// argLevel is what the parser of one (sub)command knows: its flags and
// whether each takes a value, and its subcommands.
type argLevel struct {
	takesValue  map[string]bool
	subcommands []*cli.Command
	shortOpts   bool // -abc is -a -b -c (UseShortOptionHandling)
}

func rootLevel(app *cli.App) argLevel {
	l := newLevel(app.Flags, app.Commands, app.UseShortOptionHandling)
	// app.Setup adds these later, at Run; they are flags like any other.
	if !app.HideHelp && cli.HelpFlag != nil {
		l.add(cli.HelpFlag)
	}
	if !app.HideVersion && cli.VersionFlag != nil {
		l.add(cli.VersionFlag)
	}
	return l
}

func commandLevel(c *cli.Command, shortOpts bool) argLevel {
	l := newLevel(c.Flags, c.Subcommands, shortOpts || c.UseShortOptionHandling)
	if !c.HideHelp && cli.HelpFlag != nil {
		l.add(cli.HelpFlag) // added by urfave when the command runs
	}
	return l
}

func newLevel(flags []cli.Flag, subs []*cli.Command, shortOpts bool) argLevel {
	l := argLevel{takesValue: map[string]bool{}, subcommands: subs, shortOpts: shortOpts}
	for _, f := range flags {
		l.add(f)
	}
	return l
}

func (l argLevel) add(f cli.Flag) {
	// A flag type that cannot say is assumed to take a value: that keeps
	// `--flag VALUE` together, and only a bool of such a type given
	// between two positional arguments would take the second as its value.
	takes := true
	if d, ok := f.(cli.DocGenerationFlag); ok {
		takes = d.TakesValue()
	}
	for _, name := range f.Names() {
		l.takesValue[name] = takes
	}
}

// splitLevel sorts one command's arguments into its flags (with their
// values) and its positional arguments. When the first positional argument
// names a subcommand, it stops there: sub is that command and tail is
// everything after its name, for the subcommand's own flags.
func splitLevel(l argLevel, args []string) (flags, positional []string, sub *cli.Command, tail []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			// `--` must precede the positional arguments for the flag
			// package to drop it and stop there.
			flags = append(flags, a)
			return flags, append(positional, args[i+1:]...), nil, nil
		}
		if len(a) < 2 || a[0] != '-' {
			if len(positional) == 0 {
				if c := findCommand(l.subcommands, a); c != nil {
					return flags, []string{a}, c, args[i+1:]
				}
			}
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		if l.needsValue(a) {
			if i+1 == len(args) {
				// The line is wrong whatever its arguments; alone, the
				// flag gets urfave's "flag needs an argument" instead of
				// taking an argument as its value.
				return flags, nil, nil, nil
			}
			i++
			flags = append(flags, args[i]) // taken as is, like the flag package does
		}
	}
	return flags, positional, nil, nil
}

// needsValue reports whether the flag argument a takes the next argument
// as its value.
func (l argLevel) needsValue(a string) bool {
	if strings.Contains(a, "=") {
		return false
	}
	name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
	if takes, ok := l.takesValue[name]; ok {
		return takes
	}
	// -abc with short option handling: only its last flag can take a value.
	if l.shortOpts && !strings.HasPrefix(a, "--") && len(name) > 1 {
		for _, r := range name {
			if _, ok := l.takesValue[string(r)]; !ok {
				return false
			}
		}
		return l.takesValue[name[len(name)-1:]]
	}
	return false
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
