package server

import (
	"fmt"
	"net/http"
	"strings"
)

// Route is one endpoint of an API: its net/http pattern, the permission a
// caller needs, and its handler.
//
// Why a table of routes rather than APIs registering handlers on a mux: the
// permission sits on the same line as the pattern it guards, so a reviewer sees
// both at once, and the server (not each API) wraps every handler with the
// access check. An API cannot forget the check, and a route without a declared
// permission is refused when the server is built (New panics, like
// http.ServeMux does on a conflicting pattern: it is a programming error, found
// by every test that builds the server).
type Route struct {
	// Pattern is a Go 1.22 ServeMux pattern ("POST /push"). Patterns must not
	// collide across APIs.
	Pattern string
	// Permission the caller needs. Required: Public for a route anyone may call.
	Permission Permission
	// Handler serves the route.
	Handler http.Handler
}

// Permission names what a route does, for the access check: the guard maps a
// caller's role (and, later, per-resource grants) to the permissions it holds.
// The names are declared here, next to Route, because every API's route table
// uses them and the server's own routes (/metrics) need one too; package auth
// gives them meaning (which role holds which).
type Permission string

// The permissions routes declare. The MLflow ones carry the names users of
// MLflow's basic-auth app know (READ, EDIT, MANAGE); features and served models
// have their own, since pushing rows or moving a serving alias are different
// risks from logging a metric.
const (
	// Public routes need no credential: liveness and readiness probes, and
	// answers that reveal nothing (an unknown MLflow path's 404).
	Public Permission = "public"
	// ReadMetrics is /metrics (route names, counts, latencies).
	ReadMetrics Permission = "metrics:read"
	// Read is MLflow's READ: experiments, runs, models, artifacts.
	Read Permission = "READ"
	// Edit is MLflow's EDIT: create and log runs, experiments, models,
	// versions, tags, artifacts.
	Edit Permission = "EDIT"
	// Manage is MLflow's MANAGE: delete or rename what Edit creates.
	Manage Permission = "MANAGE"
	// Deploy moves what serving follows: registered-model aliases and stages.
	Deploy Permission = "models:deploy"
	// Infer scores requests with served models (Open Inference Protocol,
	// predict, rank): the search backend's service token holds it.
	Infer Permission = "models:infer"
	// ReadFeatures reads online feature vectors.
	ReadFeatures Permission = "features:read"
	// PushFeatures writes rows to the online (and offline) store.
	PushFeatures Permission = "features:push"
	// Materialize runs a materialization inside the server.
	Materialize Permission = "features:materialize"
	// Admin manages users and tokens.
	Admin Permission = "admin"
)

// Permissions lists every declared permission, in the order above.
var Permissions = []Permission{Public, ReadMetrics, Read, Edit, Manage, Deploy, Infer, ReadFeatures, PushFeatures, Materialize, Admin}

// Valid reports whether p is one of Permissions.
func (p Permission) Valid() bool {
	for _, q := range Permissions {
		if p == q {
			return true
		}
	}
	return false
}

// Guard wraps each route's handler with its access check (authentication,
// authorization, audit, request-origin checks). Wrap is called once per route
// when the server is built.
type Guard interface {
	Wrap(rt Route) http.Handler
}

// checkRoutes reports every route that declares no valid permission or no
// handler, one per line.
func checkRoutes(routes []Route) error {
	var problems []string
	for _, rt := range routes {
		switch {
		case !rt.Permission.Valid():
			problems = append(problems, fmt.Sprintf("route %q declares no valid permission (%q)", rt.Pattern, rt.Permission))
		case rt.Handler == nil:
			problems = append(problems, fmt.Sprintf("route %q has no handler", rt.Pattern))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("server: refusing to mount:\n%s", strings.Join(problems, "\n"))
	}
	return nil
}
