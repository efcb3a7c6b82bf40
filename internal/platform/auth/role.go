// Package auth is the access layer of `atrium serve`: tokens and users stored
// hashed in the metadata database, roles mapped to the permissions routes
// declare (server.Route.Permission), the Guard every route goes through
// (request-origin checks, authentication, authorization), and the audit log
// of mutating calls.
package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/atrium-ml/atrium/internal/platform/server"
)

// Errors of the package, classified with errors.Is.
var (
	// ErrUnauthenticated: no credential, or one that is unknown, wrong,
	// expired or revoked (which one is not told to the caller).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: an authenticated caller whose role lacks the
	// route's permission.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrNotFound: no such token or user.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: an argument out of range (an unknown role, an empty name,
	// an empty password).
	ErrInvalid = errors.New("invalid argument")
)

// Role is a named set of permissions, given to a token or a user.
type Role string

// The roles. Each includes the one before it.
const (
	// Reader reads experiments, runs, models, artifacts, features and metrics,
	// and scores requests with served models.
	Reader Role = "reader"
	// Editor also writes: logs runs, creates experiments and model versions,
	// uploads artifacts, pushes features, materializes, and moves serving
	// aliases (MLflow's EDIT, plus deploy and the feature writes).
	Editor Role = "editor"
	// Admin also deletes and renames (MLflow's MANAGE) and manages users and
	// tokens.
	Admin Role = "admin"
)

// Roles lists the roles, least privileged first.
var Roles = []Role{Reader, Editor, Admin}

// rolePermissions is the one table of what each role may do. Public routes
// need no role; every other permission must appear under some role (checked
// by a test), or its routes could be called by nobody.
var rolePermissions = map[Role][]server.Permission{
	Reader: {server.ReadMetrics, server.Read, server.ReadFeatures, server.Infer},
	Editor: {server.ReadMetrics, server.Read, server.ReadFeatures, server.Infer,
		server.Edit, server.Deploy, server.PushFeatures, server.Materialize},
	Admin: {server.ReadMetrics, server.Read, server.ReadFeatures, server.Infer,
		server.Edit, server.Deploy, server.PushFeatures, server.Materialize,
		server.Manage, server.Admin},
}

// Allows reports whether r holds permission p. Public is allowed to every
// role (and to anonymous callers, see Guard).
func (r Role) Allows(p server.Permission) bool {
	return p == server.Public || slices.Contains(rolePermissions[r], p)
}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if _, ok := rolePermissions[r]; !ok {
		names := make([]string, len(Roles))
		for i, r := range Roles {
			names[i] = string(r)
		}
		return "", fmt.Errorf("%w: role %q: want one of %s", ErrInvalid, s, strings.Join(names, ", "))
	}
	return r, nil
}
