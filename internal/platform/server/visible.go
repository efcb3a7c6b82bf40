package server

import "context"

// The kinds of resources per-resource grants are on, as MLflow names them.
// Package auth gives grants on them; the tracking and registry searches ask
// VisibleFrom about them.
const (
	// ResourceExperiment is an experiment, by id.
	ResourceExperiment = "experiment"
	// ResourceRegisteredModel is a registered model, by name.
	ResourceRegisteredModel = "registered_model"
)

// Visible reports whether the caller of a request may read the resource of
// kind (ResourceExperiment or ResourceRegisteredModel) and id (an
// experiment id, a registered model's name).
type Visible func(kind, id string) bool

type visibleKey struct{}

// WithVisible returns ctx carrying v: searches across every experiment or
// registered model keep only what v accepts. The guard sets it; the APIs,
// which cannot import the guard's package, read it with VisibleFrom.
func WithVisible(ctx context.Context, v Visible) context.Context {
	return context.WithValue(ctx, visibleKey{}, v)
}

// VisibleFrom returns the predicate of ctx for kind, as a function of the
// resource's id, or nil when the caller may read every resource of that kind
// (no guard, an admin, no grant nor default permission restricting it).
func VisibleFrom(ctx context.Context, kind string) func(id string) bool {
	v, _ := ctx.Value(visibleKey{}).(Visible)
	if v == nil {
		return nil
	}
	return func(id string) bool { return v(kind, id) }
}
