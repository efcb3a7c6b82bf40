package main

import (
	"github.com/spf13/cobra"
)

// monitorCommands are the subcommands of `atrium monitor`, one file each
// (monitor_model.go, ...).
var monitorCommands = []func(e *env) *cobra.Command{
	newMonitorModelCmd,
}

func newMonitorCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Monitor models and feature sets: drift, missing values, volume, realized performance",
		Long: `monitor compares what models and pipelines see now with what they were
trained on or saw before (docs/monitoring.md).`,
	}
	for _, build := range monitorCommands {
		cmd.AddCommand(build(e))
	}
	return cmd
}
