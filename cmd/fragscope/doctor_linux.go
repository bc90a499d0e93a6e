package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/live"
	"github.com/fragscope/fragscope/internal/privs"
	"github.com/fragscope/fragscope/internal/probes"
)

type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }
func (e exitError) ExitCode() int { return e.code }

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check this kernel: BTF, tracefs, privileges, and which mechanism works for every hook",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "also print the verifier's whole log for every program the kernel refused"},
		},
		Action: func(c *cli.Context) error {
			w := os.Stdout
			f := probes.Probe()
			fmt.Fprintf(w, "kernel     %s\n", f.Release)
			fmt.Fprintf(w, "btf        %s\n", okOr(f.BTF))
			fmt.Fprintf(w, "tracefs    %s\n", okOrPath(f.Tracefs, f.TracefsErr))
			fmt.Fprintf(w, "debugfs    %s\n", okOr(statErr("/sys/kernel/debug/extfrag")))
			fmt.Fprintf(w, "kprobes    %s\n", okOr(f.Kprobes))
			fmt.Fprintf(w, "freelists  %s\n", freeListLine(f.FreeListCapture()))
			if f.Lockdown != "" && f.Lockdown != "none" {
				msg := "lockdown=" + f.Lockdown
				if f.Lockdown == "confidentiality" {
					msg += ": BPF programs that read kernel memory are refused and tracefs is empty; boot with lockdown=integrity or none to trace"
				}
				fmt.Fprintf(w, "lockdown   %s\n", msg)
			}
			env := privs.Detect()
			fmt.Fprintf(w, "container  %s\n", containerLine(env))
			fmt.Fprintf(w, "node name  %s\n", nodeNameLine(env))
			if err := privs.Check(); err != nil {
				fmt.Fprintf(w, "fentry     %s\n", okOr(f.Fentry))
				fmt.Fprintf(w, "privileges %v\n", err)
				return exitError{2, "cannot test the hooks without privileges"}
			}

			// Every hook by every mechanism, with its real programs: an
			// empty program is not evidence (5.10 loads one and refused
			// every fexit calling bpf_get_func_ret).
			working := map[probes.Hook]bool{}
			var report []string
			var logs []probes.VerifierLog
			var fentryOK, fentryNo []string
			for _, h := range probes.AllHooks {
				for _, m := range probes.Mechanisms[h] {
					st, l := tryAttach(h, m)
					logs = append(logs, l...)
					if st.Attached {
						working[h] = true
						report = append(report, fmt.Sprintf("%-12s %-10s works (%s)", h, m, st.Target))
					} else {
						report = append(report, fmt.Sprintf("%-12s %-10s no: %s", h, m, strings.TrimPrefix(st.Reason, string(m)+": ")))
					}
					if m == probes.Fentry {
						if st.Attached {
							fentryOK = append(fentryOK, string(h))
						} else {
							fentryNo = append(fentryNo, string(h))
						}
					}
				}
			}
			fmt.Fprintf(w, "fentry     %s\n", fentryLine(f.Fentry, fentryOK, fentryNo))
			fmt.Fprintf(w, "privileges ok\n\n")
			for _, l := range report {
				fmt.Fprintln(w, l)
			}
			if c.Bool("verbose") {
				fmt.Fprintln(w)
				printVerifierLogs(w, logs)
			}
			var missing []probes.Hook
			for _, h := range probes.CoreHooks {
				if !working[h] {
					missing = append(missing, h)
				}
			}
			if len(missing) > 0 {
				return exitError{1, fmt.Sprintf("core hooks cannot attach on this kernel: %v", missing)}
			}
			fmt.Fprintln(w, "\ncore hooks work: fragscope watch will run here")
			return nil
		},
	}
}

// fentryLine sums up the hooks' own fentry/fexit programs: "ok" only when
// every one of them loaded and attached.
func fentryLine(trampolines error, ok, refused []string) string {
	switch {
	case trampolines != nil:
		return "no: " + trampolines.Error()
	case len(refused) == 0:
		return "ok (" + strings.Join(ok, ", ") + ")"
	case len(ok) == 0:
		return "no: every hook's fentry/fexit programs were refused (" + strings.Join(refused, ", ") + ": reasons below)"
	}
	return "partly: " + strings.Join(ok, ", ") + " load; " + strings.Join(refused, ", ") + " refused (reasons below)"
}

// tryAttach really loads and attaches one hook by one mechanism: the only
// answer that cannot be wrong about what this kernel accepts.
func tryAttach(h probes.Hook, m probes.Mechanism) (event.HookStatus, []probes.VerifierLog) {
	set, err := probes.Open(probes.Options{Hooks: []probes.Hook{h}, Modes: map[probes.Hook]probes.Mechanism{h: m}})
	if err != nil {
		return event.HookStatus{Hook: string(h), Reason: err.Error()}, nil
	}
	defer set.Close()
	return set.Status[0], set.Logs
}

func okOr(err error) string {
	if err == nil {
		return "ok"
	}
	return "no: " + err.Error()
}

// freeListLine says whether failures get the kernel's own reading of the
// free lists (at_failure snapshots) or only /proc read after them.
func freeListLine(err error) string {
	if err != nil {
		return "no: " + strings.TrimPrefix(err.Error(), "no free lists captured at failures: ")
	}
	return "ok (read by the kernel at each failure)"
}

func okOrPath(path string, err error) string {
	if err != nil {
		return "no: " + err.Error()
	}
	return "ok (" + path + ")"
}

func statErr(path string) error {
	_, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s missing: mount -t debugfs debugfs /sys/kernel/debug", path)
	}
	return nil
}

// containerLine says what the privilege hints below assumed about where
// fragscope runs.
func containerLine(env privs.Env) string {
	if env.Container == "" {
		return "none"
	}
	return env.Container + " (" + env.Evidence + ")"
}

// nodeNameLine names the node as records will, and warns when inside a
// container that name is the container's own host name.
func nodeNameLine(env privs.Env) string {
	n := live.NodeName("")
	switch {
	case os.Getenv("NODE_NAME") != "":
		return n + " ($NODE_NAME)"
	case env.Container != "":
		return n + " (the host name in this container: the node's only with --network host or --uts host; -e NODE_NAME=\"$(hostname)\" makes sure)"
	}
	return n
}
