package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/platform/auth"
)

// authStore opens the metadata database's credential store.
func authStore(e *env) (*auth.Store, error) {
	db, err := e.Meta()
	if err != nil {
		return nil, err
	}
	return auth.NewStore(db), nil
}

func newTokenCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens of `atrium serve`",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	var name, role, expires string
	create := &cobra.Command{
		Use:   "create --name NAME --role reader|editor|admin [--expires 90d]",
		Short: "Create a token and print it (it is shown only once; the server keeps its hash)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return usagef("--role: %v", err)
			}
			ttl, err := parseExpiry(expires)
			if err != nil {
				return usagef("--expires %q: %v", expires, err)
			}
			if name == "" {
				return usagef("--name is required")
			}
			s, err := authStore(e)
			if err != nil {
				return err
			}
			secret, t, err := s.CreateToken(e.ctx, name, r, ttl)
			if err != nil {
				return err
			}
			if e.output == "json" {
				type created struct {
					Secret string `json:"token"`
					auth.Token
				}
				return json.NewEncoder(e.stdout).Encode(created{secret, t})
			}
			fmt.Fprintln(e.stdout, secret)
			when := "never expires"
			if !t.ExpiresAt.IsZero() {
				when = "expires " + t.ExpiresAt.Format(time.RFC3339)
			}
			fmt.Fprintf(e.stderr, "token %s (%s, role %s) %s; it is shown only this once\n", t.ID, t.Name, t.Role, when)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the token is for (shown in `token list` and the audit log)")
	create.Flags().StringVar(&role, "role", "", "reader, editor or admin")
	create.Flags().StringVar(&expires, "expires", "90d", "lifetime: 90d, 12h, 30m, or never")

	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (ids, names, roles, expiry; never secrets)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := authStore(e)
			if err != nil {
				return err
			}
			ts, err := s.Tokens(e.ctx)
			if err != nil {
				return err
			}
			now := time.Now()
			return printList(e, ts, "ID\tNAME\tROLE\tCREATED\tEXPIRES\tSTATUS", func(t auth.Token) string {
				status := "active"
				switch {
				case !t.RevokedAt.IsZero():
					status = "revoked " + t.RevokedAt.Format(time.RFC3339)
				case !t.Active(now):
					status = "expired"
				}
				exp := "never"
				if !t.ExpiresAt.IsZero() {
					exp = t.ExpiresAt.Format(time.RFC3339)
				}
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", t.ID, t.Name, t.Role, t.CreatedAt.Format(time.RFC3339), exp, status)
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke a token by id, or every active token of a name",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := authStore(e)
			if err != nil {
				return err
			}
			n, err := s.RevokeToken(e.ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "revoked %d token(s); a running server stops accepting them within 5 s (its credential cache)\n", n)
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// parseExpiry reads a token lifetime: Go durations ("12h"), days ("90d"),
// or "never" (0).
func parseExpiry(s string) (time.Duration, error) {
	if s == "never" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 100*365 {
			return 0, fmt.Errorf("want a number of days from 1 to 36500")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive duration such as 90d, 12h or 30m, or never")
	}
	return d, nil
}
