//go:build !linux

package main

import (
	"errors"
	"os"

	"github.com/urfave/cli/v2"
)

var errLinuxOnly = errors.New("this command traces the Linux kernel and runs on Linux only")

func watchCommand() *cli.Command {
	return &cli.Command{Name: "watch", Action: func(*cli.Context) error { return errLinuxOnly }}
}

func agentCommand() *cli.Command {
	return &cli.Command{Name: "agent", Action: func(*cli.Context) error { return errLinuxOnly }}
}

func doctorCommand() *cli.Command {
	return &cli.Command{Name: "doctor", Action: func(*cli.Context) error { return errLinuxOnly }}
}

func recordCommand() *cli.Command {
	return &cli.Command{Name: "record", Action: func(*cli.Context) error { return errLinuxOnly }}
}

func topCommand() *cli.Command {
	return &cli.Command{Name: "top", Action: func(*cli.Context) error { return errLinuxOnly }}
}

func isTerminal(*os.File) bool { return false }
