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
		Short: "Add, list and remove users of `atrium serve` (HTTP basic auth with a password), and grant them permissions per experiment or model",
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
			return printList(e, us, "NAME\tROLE\tCREATED", func(u auth.User) string {
				return fmt.Sprintf("%s\t%s\t%s", u.Name, u.Role, u.CreatedAt.Format(time.RFC3339))
			})
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
	cmd.AddCommand(add, list, remove, newGrantCmd(e), newRevokeCmd(e), newGrantsCmd(e))
	return cmd
}

// resourceFlags are --experiment ID and --model NAME: exactly one names the
// resource of a grant.
type resourceFlags struct{ experiment, model string }

func (f *resourceFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.experiment, "experiment", "", "an experiment, by id")
	cmd.Flags().StringVar(&f.model, "model", "", "a registered model, by name")
}

func (f *resourceFlags) resource() (auth.Resource, error) {
	switch {
	case (f.experiment == "") == (f.model == ""):
		return auth.Resource{}, usagef("name exactly one resource: --experiment ID or --model NAME")
	case f.experiment != "":
		return auth.Resource{Kind: auth.KindExperiment, ID: f.experiment}, nil
	}
	return auth.Resource{Kind: auth.KindModel, ID: f.model}, nil
}

func newGrantCmd(e *env) *cobra.Command {
	var rf resourceFlags
	var permission string
	cmd := &cobra.Command{
		Use:   "grant USER (--experiment ID | --model NAME) --permission READ|EDIT|MANAGE|NO_PERMISSIONS",
		Short: "Give a user a permission on one experiment or registered model, in place of its role's (MLflow's basic-auth permissions)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := rf.resource()
			if err != nil {
				return err
			}
			level, err := auth.ParseLevel(permission)
			if err != nil {
				return usagef("--permission: %v", err)
			}
			s, err := authStore(e)
			if err != nil {
				return err
			}
			if err := s.SetGrant(e.ctx, args[0], res, level); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "user %s has %s on %s (a running server applies it within 5 s)\n", args[0], level, res)
			return nil
		},
	}
	rf.add(cmd)
	cmd.Flags().StringVar(&permission, "permission", "", "READ, EDIT, MANAGE or NO_PERMISSIONS")
	return cmd
}

func newRevokeCmd(e *env) *cobra.Command {
	var rf resourceFlags
	cmd := &cobra.Command{
		Use:   "revoke USER (--experiment ID | --model NAME)",
		Short: "Remove a user's grant on one experiment or registered model (its role and the default permission apply again)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := rf.resource()
			if err != nil {
				return err
			}
			s, err := authStore(e)
			if err != nil {
				return err
			}
			return s.DeleteGrant(e.ctx, args[0], res)
		},
	}
	rf.add(cmd)
	return cmd
}

func newGrantsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "grants [USER]",
		Short: "List the grants of one user, or of every user",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("grants takes at most one user, got %s", quoteArgs(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := authStore(e)
			if err != nil {
				return err
			}
			user := ""
			if len(args) == 1 {
				user = args[0]
			}
			gs, err := s.Grants(e.ctx, user)
			if err != nil {
				return err
			}
			return printList(e, gs, "USER\tKIND\tRESOURCE\tPERMISSION\tCREATED", func(g auth.Grant) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", g.User, g.Kind, g.Resource, g.Permission, g.CreatedAt.Format(time.RFC3339))
			})
		},
	}
}

// printList writes rows as a JSON list with -o json (an empty one as []),
// else as a table: header, then line(row) for each row (tab-separated
// columns).
func printList[T any](e *env, rows []T, header string, line func(T) string) error {
	if e.output == "json" {
		if rows == nil {
			rows = []T{}
		}
		return json.NewEncoder(e.stdout).Encode(rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, line(r))
	}
	return tw.Flush()
}
