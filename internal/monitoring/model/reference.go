package model

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// Lineage tags of a model version (set by atrium train; see the training
// orchestrator).
const (
	// ReferenceProfileTag is the path of the version's training profile,
	// relative to its run's artifact root.
	ReferenceProfileTag = "atrium.reference_profile"
	// DefaultReferenceProfile is that path when the tag is absent.
	DefaultReferenceProfile = "reference/profile.json"
	// TestMetricPrefix prefixes the version's test metrics ("atrium.test.auc").
	TestMetricPrefix = "atrium.test."
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrUnknownModel: no registered model or version of that name.
	ErrUnknownModel = errors.New("unknown model")
	// ErrNoReference: the version has no training profile to compare with.
	ErrNoReference = errors.New("no reference profile")
)

// maxProfileBytes bounds a reference profile read from the artifact store
// (a profile of 50 columns with 5,000-value samples is about 5 MB).
const maxProfileBytes = 256 << 20

// Reference is a version's training profile and where it came from.
type Reference struct {
	Version *registry.ModelVersion
	Profile *profile.Profile
	// Path is the profile's path in the artifact store.
	Path string
	// TestMetrics are the version's atrium.test.<metric> tags, by metric.
	TestMetrics map[string]float64
}

// resolveVersion returns a version of name: the given one, or the newest
// when version is "".
func (m *Monitor) resolveVersion(ctx context.Context, name, version string) (*registry.ModelVersion, error) {
	if version == "" {
		vs, err := m.opts.Registry.GetLatestVersions(ctx, name, nil)
		if err != nil {
			return nil, registryError(err, name, "")
		}
		var newest *registry.ModelVersion
		for i := range vs {
			if newest == nil || versionNumber(vs[i].Version) > versionNumber(newest.Version) {
				newest = &vs[i]
			}
		}
		if newest == nil {
			return nil, fmt.Errorf("%w: model %q has no version", ErrUnknownModel, name)
		}
		return newest, nil
	}
	v, err := m.opts.Registry.GetModelVersion(ctx, name, version)
	if err != nil {
		return nil, registryError(err, name, version)
	}
	return v, nil
}

func versionNumber(v string) int64 {
	var n int64
	fmt.Sscan(v, &n)
	return n
}

func registryError(err error, name, version string) error {
	if errors.Is(err, wire.ErrNotFound) || errors.Is(err, wire.ErrInvalid) {
		what := fmt.Sprintf("model %q", name)
		if version != "" {
			what += " version " + version
		}
		return fmt.Errorf("%w: %s is not registered (%v)", ErrUnknownModel, what, err)
	}
	return fmt.Errorf("model %q: %w", name, err)
}

// LoadReference reads the training profile of a version: the artifact its
// atrium.reference_profile tag names (default reference/profile.json) under
// the artifact root of the version's run. A version without one is
// ErrNoReference with a message saying how to get one.
func (m *Monitor) LoadReference(ctx context.Context, v *registry.ModelVersion) (*Reference, error) {
	ref := &Reference{Version: v, TestMetrics: map[string]float64{}}
	rel := DefaultReferenceProfile
	for _, t := range v.Tags {
		switch {
		case t.Key == ReferenceProfileTag && t.Value != "":
			rel = t.Value
		case strings.HasPrefix(t.Key, TestMetricPrefix):
			var f float64
			if _, err := fmt.Sscan(t.Value, &f); err == nil {
				ref.TestMetrics[strings.TrimPrefix(t.Key, TestMetricPrefix)] = f
			}
		}
	}
	noRef := func(why string) error {
		return fmt.Errorf("%w: model %q version %s %s; `atrium train` records one with every version it registers (artifact %s of the version's run, tag %s)",
			ErrNoReference, v.Name, v.Version, why, DefaultReferenceProfile, ReferenceProfileTag)
	}
	if v.RunID == "" {
		return nil, noRef("has no run")
	}
	ri, err := m.opts.Tracking.RunInfoOf(ctx, v.RunID)
	if errors.Is(err, wire.ErrNotFound) {
		return nil, noRef("names run " + v.RunID + ", which does not exist")
	}
	if err != nil {
		return nil, fmt.Errorf("model %q version %s: run %s: %w", v.Name, v.Version, v.RunID, err)
	}
	root, ok := tracking.ProxiedPath(ri.ArtifactURI)
	if !ok {
		return nil, noRef("keeps its run's artifacts at " + ri.ArtifactURI + ", outside this server's artifact store")
	}
	p, err := artifact.CleanPath(path.Join(root, rel))
	if err != nil {
		return nil, fmt.Errorf("model %q version %s: tag %s: %w", v.Name, v.Version, ReferenceProfileTag, err)
	}
	ref.Path = p
	r, err := m.opts.Artifacts.Get(ctx, p)
	if errors.Is(err, artifact.ErrNotFound) {
		return nil, noRef("has no training profile at " + p)
	}
	if err != nil {
		return nil, fmt.Errorf("read reference profile %s: %w", p, err)
	}
	defer r.Close()
	prof, err := profile.Decode(io.LimitReader(r, maxProfileBytes))
	if err != nil {
		return nil, fmt.Errorf("reference profile %s of model %q version %s: %w", p, v.Name, v.Version, err)
	}
	ref.Profile = prof
	return ref, nil
}

// ReferenceOf reads the training profile of version (the newest when "")
// of the registered model name, as LoadReference does.
func (m *Monitor) ReferenceOf(ctx context.Context, name, version string) (*Reference, error) {
	v, err := m.resolveVersion(ctx, name, version)
	if err != nil {
		return nil, err
	}
	return m.LoadReference(ctx, v)
}

// SaveReference records p as the training profile of a version: it writes
// it to DefaultReferenceProfile under the artifact root of the version's run
// and sets the version's ReferenceProfileTag, which is what LoadReference
// reads. It returns the artifact path.
func (m *Monitor) SaveReference(ctx context.Context, name, version string, p *profile.Profile) (string, error) {
	v, err := m.resolveVersion(ctx, name, version)
	if err != nil {
		return "", err
	}
	if v.RunID == "" {
		return "", fmt.Errorf("model %q version %s has no run to keep its reference profile in", name, v.Version)
	}
	ri, err := m.opts.Tracking.RunInfoOf(ctx, v.RunID)
	if err != nil {
		return "", fmt.Errorf("model %q version %s: run %s: %w", name, v.Version, v.RunID, err)
	}
	root, ok := tracking.ProxiedPath(ri.ArtifactURI)
	if !ok {
		return "", fmt.Errorf("model %q version %s: run artifacts at %s are outside this server's artifact store", name, v.Version, ri.ArtifactURI)
	}
	path := strings.TrimPrefix(root+"/"+DefaultReferenceProfile, "/")
	var b strings.Builder
	if err := p.Encode(&b); err != nil {
		return "", err
	}
	if err := m.opts.Artifacts.Put(ctx, path, strings.NewReader(b.String())); err != nil {
		return "", fmt.Errorf("write reference profile %s: %w", path, err)
	}
	if err := m.opts.Registry.SetModelVersionTag(ctx, name, v.Version, tracking.KV{Key: ReferenceProfileTag, Value: DefaultReferenceProfile}); err != nil {
		return "", fmt.Errorf("tag model %q version %s: %w", name, v.Version, err)
	}
	return path, nil
}
