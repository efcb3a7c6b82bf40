package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// Level is a permission on one experiment or registered model, as MLflow's
// basic-auth app names them. Each includes the ones below it. The zero Level
// is "not set" (no grant, no default).
type Level uint8

// The levels, least first.
const (
	// NoPermissions: nothing, not even reading.
	NoPermissions Level = iota + 1
	// LevelRead: get, search, download (MLflow's READ).
	LevelRead
	// LevelEdit: also log, update, upload, move aliases (MLflow's EDIT).
	LevelEdit
	// LevelManage: also delete, rename, restore (MLflow's MANAGE).
	LevelManage
)

var levelNames = map[Level]string{NoPermissions: "NO_PERMISSIONS", LevelRead: "READ", LevelEdit: "EDIT", LevelManage: "MANAGE"}

func (l Level) String() string {
	if n, ok := levelNames[l]; ok {
		return n
	}
	return "unset"
}

// ParseLevel reads READ, EDIT, MANAGE or NO_PERMISSIONS (any case).
func ParseLevel(s string) (Level, error) {
	for l, n := range levelNames {
		if strings.EqualFold(s, n) {
			return l, nil
		}
	}
	return 0, fmt.Errorf("%w: permission %q: want READ, EDIT, MANAGE or NO_PERMISSIONS", ErrInvalid, s)
}

// levelFor is the level a route's permission needs on the resource it acts
// on; 0 for permissions that are not about experiments or models. Moving an
// alias or a stage is an update of the registered model, as in MLflow.
func levelFor(p server.Permission) Level {
	switch p {
	case server.Read:
		return LevelRead
	case server.Edit, server.Deploy:
		return LevelEdit
	case server.Manage:
		return LevelManage
	}
	return 0
}

// Kind is the kind of resource a grant is on.
type Kind string

// The kinds of resources grants are on.
const (
	// KindExperiment: an experiment, by id; its runs, logged models and
	// artifacts go with it.
	KindExperiment Kind = server.ResourceExperiment
	// KindModel: a registered model, by name; its versions and aliases go
	// with it.
	KindModel Kind = server.ResourceRegisteredModel
)

// Resource is one experiment or registered model.
type Resource struct {
	Kind Kind
	// ID is the experiment id or the registered model's name.
	ID string
}

func (r Resource) String() string { return string(r.Kind) + " " + r.ID }

// Grant is a user's permission on one resource.
type Grant struct {
	User       string    `json:"user"`
	Kind       Kind      `json:"kind"`
	Resource   string    `json:"resource"`
	Permission string    `json:"permission"`
	CreatedAt  time.Time `json:"created_at"`
}

// grantsChanged counts the grant changes made in this process: a guard's
// cached grants loaded before the latest change are stale, so a change made
// through the server's own API applies to the next request, while one made
// by another process (`atrium user grant`) applies within the cache's TTL.
var grantsChanged atomic.Int64

// SetGrant gives user the permission level on res, replacing an earlier
// grant. The user must exist.
func (s *Store) SetGrant(ctx context.Context, user string, res Resource, level Level) error {
	if _, ok := levelNames[level]; !ok {
		return fmt.Errorf("%w: permission %d", ErrInvalid, level)
	}
	if res.Kind != KindExperiment && res.Kind != KindModel {
		return fmt.Errorf("%w: resource kind %q: want %s or %s", ErrInvalid, res.Kind, KindExperiment, KindModel)
	}
	if strings.TrimSpace(res.ID) == "" {
		return fmt.Errorf("%w: an empty %s", ErrInvalid, res.Kind)
	}
	defer grantsChanged.Add(1)
	return s.db.InTx(ctx, func(tx *meta.Tx) error {
		var n int64
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM auth_users WHERE name = ?`, user).Scan(&n); err != nil {
			return fmt.Errorf("grant %s on %s: %w", user, res, err)
		}
		if n == 0 {
			return fmt.Errorf("user %q: %w (grants are given to users: `atrium user add` first)", user, ErrNotFound)
		}
		res2, err := tx.Exec(ctx, `UPDATE auth_grants SET permission = ? WHERE user_name = ? AND kind = ? AND resource = ?`, level.String(), user, string(res.Kind), res.ID)
		if err != nil {
			return fmt.Errorf("grant %s on %s: %w", user, res, err)
		}
		if n, err := res2.RowsAffected(); err != nil || n > 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO auth_grants (user_name, kind, resource, permission, created_at) VALUES (?, ?, ?, ?, ?)`,
			user, string(res.Kind), res.ID, level.String(), toMillis(s.now())); err != nil {
			return fmt.Errorf("grant %s on %s: %w", user, res, err)
		}
		return nil
	})
}

// DeleteGrant removes user's grant on res (ErrNotFound if there is none):
// the role and the default permission apply to res again.
func (s *Store) DeleteGrant(ctx context.Context, user string, res Resource) error {
	defer grantsChanged.Add(1)
	r, err := s.db.Exec(ctx, `DELETE FROM auth_grants WHERE user_name = ? AND kind = ? AND resource = ?`, user, string(res.Kind), res.ID)
	if err != nil {
		return fmt.Errorf("revoke %s on %s: %w", user, res, err)
	}
	if n, err := r.RowsAffected(); err != nil {
		return fmt.Errorf("revoke %s on %s: %w", user, res, err)
	} else if n == 0 {
		return fmt.Errorf("user %q has no grant on %s: %w", user, res, ErrNotFound)
	}
	return nil
}

// Grants lists the grants of user ("": of every user), by user, kind and
// resource.
func (s *Store) Grants(ctx context.Context, user string) ([]Grant, error) {
	q := `SELECT user_name, kind, resource, permission, created_at FROM auth_grants`
	var args []any
	if user != "" {
		q += ` WHERE user_name = ?`
		args = append(args, user)
	}
	return meta.Collect(ctx, s.db, q+` ORDER BY user_name, kind, resource`, args, func(row meta.Scanner) (Grant, error) {
		var g Grant
		var kind string
		var created int64
		err := row.Scan(&g.User, &kind, &g.Resource, &g.Permission, &created)
		g.Kind, g.CreatedAt = Kind(kind), fromMillis(created)
		return g, err
	})
}

// Grant returns user's grant on res: its level, or 0 when there is none.
func (s *Store) Grant(ctx context.Context, user string, res Resource) (Level, error) {
	var p string
	err := s.db.QueryRow(ctx, `SELECT permission FROM auth_grants WHERE user_name = ? AND kind = ? AND resource = ?`, user, string(res.Kind), res.ID).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("look up the grant of %s on %s: %w", user, res, err)
	}
	return ParseLevel(p)
}

// userGrants loads every grant of user, for the guard's cache.
func (s *Store) userGrants(ctx context.Context, user string) (map[Resource]Level, error) {
	gs, err := s.Grants(ctx, user)
	if err != nil {
		return nil, err
	}
	m := make(map[Resource]Level, len(gs))
	for _, g := range gs {
		l, err := ParseLevel(g.Permission)
		if err != nil {
			return nil, fmt.Errorf("grant of %s on %s %s: %w", user, g.Kind, g.Resource, err)
		}
		m[Resource{g.Kind, g.Resource}] = l
	}
	return m, nil
}

// userRole returns the role of user name (ErrNotFound if there is none).
func (s *Store) userRole(ctx context.Context, name string) (Role, error) {
	var role string
	err := s.db.QueryRow(ctx, `SELECT role FROM auth_users WHERE name = ?`, name).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("user %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("look up user %s: %w", name, err)
	}
	return Role(role), nil
}
