package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// withCompletion gives app shell completion (urfave's
// --generate-bash-completion protocol, which the scripts of
// `fragscope completion` speak) and the `completion` and `man` commands.
func withCompletion(app *cli.App) *cli.App {
	app.EnableBashCompletion = true
	app.Commands = append(app.Commands, completionCommand(), manCommand())
	completeLeaves(app.Commands)
	return app
}

// completeLeaves makes commands without subcommands suggest only flags,
// and only for a word starting with '-': urfave's default would suggest
// the `help` subcommand it adds to every command, and the shell would then
// not fall back to completing the FILE argument.
func completeLeaves(cmds []*cli.Command) {
	for _, c := range cmds {
		completeLeaves(c.Subcommands)
		if len(c.Subcommands) > 0 || c.BashComplete != nil {
			continue
		}
		flags := cli.DefaultCompleteWithFlags(c)
		c.BashComplete = func(ctx *cli.Context) {
			// Like urfave's default, the word being completed comes just
			// before --generate-bash-completion in os.Args.
			if n := len(os.Args); n > 2 && strings.HasPrefix(os.Args[n-2], "-") {
				flags(ctx)
			}
		}
	}
}

func completionCommand() *cli.Command {
	script := func(shell, text string) *cli.Command {
		return &cli.Command{
			Name:  shell,
			Usage: "print the " + shell + " completion script",
			Action: func(c *cli.Context) error {
				_, err := fmt.Fprintf(c.App.Writer, text, c.App.Name)
				return err
			},
		}
	}
	return &cli.Command{
		Name:  "completion",
		Usage: "print a shell completion script: source <(fragscope completion bash), or zsh",
		// as the app does: `help` would be offered as a shell name
		HideHelpCommand: true,
		Subcommands: []*cli.Command{
			script("bash", bashCompletion),
			script("zsh", zshCompletion),
		},
		// urfave runs this when no subcommand matched.
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("completion needs a shell: fragscope completion bash, or zsh")
			}
			return fmt.Errorf("no completion script for %q: use bash or zsh", c.Args().First())
		},
	}
}

// Both scripts ask the program itself: the words before the cursor, the
// word being completed if it is a flag, then --generate-bash-completion.
// They never ask after a `--` word: urfave then ignores the completion
// flag and would run the command. A bare `--` being completed is sent as
// `-`, for the same reason; it lists every flag. %[1]s is the program name.

const bashCompletion = `# bash completion for %[1]s: source <(%[1]s completion bash)
_%[1]s_complete() {
	local cur=${COMP_WORDS[COMP_CWORD]} w
	local -a ask=("${COMP_WORDS[@]:0:COMP_CWORD}")
	ask[0]=${ask[0]/#\~/$HOME}
	for w in "${ask[@]:1}"; do
		[[ $w == -- ]] && return 0
	done
	if [[ $cur == -- ]]; then
		ask+=(-)
	elif [[ $cur == -* ]]; then
		ask+=("$cur")
	fi
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$("${ask[@]}" --generate-bash-completion 2>/dev/null)" -- "$cur"))
}
complete -o bashdefault -o default -F _%[1]s_complete %[1]s
`

// zshCompletion works both sourced and as an autoloaded _%[1]s in $fpath.
// 0=zsh makes urfave print commands as name:usage for _describe.
const zshCompletion = `#compdef %[1]s
# zsh completion for %[1]s: source <(%[1]s completion zsh) after compinit,
# or save it as _%[1]s in a directory of $fpath.
_%[1]s() {
	local cur=${words[CURRENT]}
	local -a ask opts
	ask=("${(@)words[1,CURRENT-1]}")
	ask[1]=${ask[1]/#\~/$HOME}
	(( ${ask[(I)--]} )) && { _files; return }
	if [[ $cur == -- ]]; then
		ask+=(-)
	elif [[ $cur == -* ]]; then
		ask+=("$cur")
	fi
	opts=("${(@f)$(env 0=zsh "${ask[@]}" --generate-bash-completion 2>/dev/null)}")
	if [[ -n ${opts[1]} ]]; then
		_describe %[1]s opts
	else
		_files
	fi
}
if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
	_%[1]s "$@"
else
	compdef _%[1]s %[1]s
fi
`

func manCommand() *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the man page (roff): fragscope man | man -l -",
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("man takes no arguments: fragscope man | man -l -")
			}
			page, err := c.App.ToMan()
			if err != nil {
				return err
			}
			_, err = io.WriteString(c.App.Writer, page)
			return err
		},
	}
}
