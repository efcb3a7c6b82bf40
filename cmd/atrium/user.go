package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/platform/auth"
)

func newUserCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Add, list and remove users of `atrium serve` (HTTP basic auth with a password)",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	var role string
	var fromStdin bool
	add := &cobra.Command{
		Use:   "add NAME --role reader|editor|admin --password-stdin",
		Short: "Add a user, or set the role and password of an existing one (the password is read from stdin)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return usagef("--role: %v", err)
			}
			// A password on the command line would be in the shell history
			// and in every process listing.
			if !fromStdin {
				return usagef("pass the password on stdin with --password-stdin")
			}
			line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			if err != nil && line == "" {
				return fmt.Errorf("read the password from stdin: %w", err)
			}
			s, err := authStore(e)
			if err != nil {
				return err
			}
			if err := s.SetUser(e.ctx, args[0], r, strings.TrimRight(line, "\r\n")); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "user %s has role %s\n", args[0], r)
			return nil
		},
	}
	add.Flags().StringVar(&role, "role", "", "reader, editor or admin")
	add.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of stdin")
	list := &cobra.Command{
		Use:   "list",
		Short: "List users and their roles",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := authStore(e)
			if err != nil {
				return err
			}
			us, err := s.Users(e.ctx)
			if err != nil {
				return err
			}
			if e.output == "json" {
				if us == nil {
					us = []auth.User{}
				}
				return json.NewEncoder(e.stdout).Encode(us)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tCREATED")
			for _, u := range us {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, u.Role, u.CreatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a user",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := authStore(e)
			if err != nil {
				return err
			}
			return s.DeleteUser(e.ctx, args[0])
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}
