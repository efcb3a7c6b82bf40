// Package catalog is the feature registry in the metadata database: `atrium apply`
// stores validated definitions there as numbered versions, and every other command
// and server (run, historical, materialize, serve) loads the latest version from it.
//
// Each apply that changes anything stores the whole catalog as one row (so loading
// the latest definitions is one indexed read of one row) and one row per added,
// changed or removed object with that object's own version number (its history).
package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/spec"
)

// formatVersion is the version of the stored JSON form of the definitions. Load
// refuses rows written by a newer format.
const formatVersion = 1

// Schema is the feature catalog's tables: every applied version of the definitions.
var Schema = meta.Schema{Component: "features", Migrations: []meta.Migration{
	{Version: 1, Name: "create feature catalog", Statements: []string{
		`CREATE TABLE feature_applies (
				version BIGINT PRIMARY KEY,
				applied_at BIGINT NOT NULL,
				format_version BIGINT NOT NULL,
				definitions TEXT NOT NULL,
				summary TEXT NOT NULL
			)`,
		`CREATE TABLE feature_objects (
				kind TEXT NOT NULL,
				name TEXT NOT NULL,
				version BIGINT NOT NULL,
				catalog_version BIGINT NOT NULL,
				applied_at BIGINT NOT NULL,
				definition TEXT,
				PRIMARY KEY (kind, name, version)
			)`,
	}},
}}

// Sentinel errors.
var (
	// ErrNotApplied is returned by Load when no definitions were ever applied.
	ErrNotApplied = errors.New("no feature definitions applied yet (run atrium apply)")
	// ErrConcurrentApply is returned when another apply stored a version first.
	ErrConcurrentApply = errors.New("another apply stored a new catalog version at the same time; run apply again")
)

// Object kinds.
const (
	KindEntity  = "entity"
	KindSource  = "source"
	KindSet     = "feature_set"
	KindService = "feature_service"
	// KindOnDemand is an on-demand set (request-time features).
	KindOnDemand = "on_demand_set"
)

// Op is what an apply does to an object.
type Op string

// Ops.
const (
	Added   Op = "added"
	Changed Op = "changed"
	Removed Op = "removed"
)

// Change is one object an apply adds, changes or removes.
type Change struct {
	Op   Op     `json:"op"`
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Version is the object's version after the apply (for removals, the version
	// recording the removal).
	Version int `json:"version"`
	// Details lists what changed inside a changed object: top-level fields
	// ("ttl") and named list items ("features: +viewers ~clicks -old").
	Details []string `json:"details,omitempty"`
}

// Diff is the difference between registered and new definitions.
type Diff struct {
	// From is the catalog version the diff is against (0 when nothing was applied).
	From int `json:"from_version"`
	// To is the catalog version the apply stored (equal to From when nothing changed).
	To      int      `json:"to_version"`
	Changes []Change `json:"changes"`
}

// Empty reports whether nothing changed.
func (d *Diff) Empty() bool { return len(d.Changes) == 0 }

// Loaded is a catalog version.
type Loaded struct {
	Version   int
	AppliedAt time.Time
	Features  *spec.Features
}

// Load returns the latest applied definitions (ErrNotApplied when there are none).
// It reads one row: cheap enough for a server's start-up or every CLI command.
func Load(ctx context.Context, db *meta.DB) (*Loaded, error) {
	var (
		version, appliedAt, format int64
		defs                       string
	)
	err := db.QueryRow(ctx, `SELECT version, applied_at, format_version, definitions FROM feature_applies
		ORDER BY version DESC LIMIT 1`).Scan(&version, &appliedAt, &format, &defs)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotApplied
	}
	if err != nil {
		return nil, fmt.Errorf("load feature catalog: %w", err)
	}
	if format > formatVersion {
		return nil, fmt.Errorf("load feature catalog v%d: stored format %d is newer than this binary's %d", version, format, formatVersion)
	}
	f, err := spec.DecodeFeaturesJSON([]byte(defs))
	if err != nil {
		return nil, fmt.Errorf("load feature catalog v%d: %w", version, err)
	}
	return &Loaded{Version: int(version), AppliedAt: time.UnixMilli(appliedAt).UTC(), Features: f}, nil
}

// Plan computes the diff of f against the latest applied definitions without storing.
func Plan(ctx context.Context, db *meta.DB, f *spec.Features) (*Diff, error) {
	var d *Diff
	err := db.InTx(ctx, func(tx *meta.Tx) error {
		var err error
		d, _, err = plan(ctx, tx, f)
		return err
	})
	return d, err
}

// Apply stores f as a new catalog version when it differs from the latest one and
// returns the diff. Applying the same definitions again stores nothing.
func Apply(ctx context.Context, db *meta.DB, f *spec.Features) (*Diff, error) {
	defs, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode feature definitions: %w", err)
	}
	var d *Diff
	err = db.InTx(ctx, func(tx *meta.Tx) error {
		var objs map[objKey]string
		var err error
		d, objs, err = plan(ctx, tx, f)
		if err != nil || d.Empty() {
			return err
		}
		d.To = d.From + 1
		now := time.Now().UnixMilli()
		if _, err := tx.Exec(ctx, `INSERT INTO feature_applies (version, applied_at, format_version, definitions, summary) VALUES (?, ?, ?, ?, ?)`,
			d.To, now, formatVersion, string(defs), d.summary()); err != nil {
			if errors.Is(err, meta.ErrConflict) {
				return ErrConcurrentApply
			}
			return err
		}
		for _, c := range d.Changes {
			var def any
			if c.Op != Removed {
				def = objs[objKey{c.Kind, c.Name}]
			}
			if _, err := tx.Exec(ctx, `INSERT INTO feature_objects (kind, name, version, catalog_version, applied_at, definition) VALUES (?, ?, ?, ?, ?, ?)`,
				c.Kind, c.Name, c.Version, d.To, now, def); err != nil {
				if errors.Is(err, meta.ErrConflict) {
					return ErrConcurrentApply
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("apply feature definitions: %w", err)
	}
	return d, nil
}

type objKey struct{ kind, name string }

// objects returns the canonical JSON of every object of f by kind and name.
func objects(f *spec.Features) (map[objKey]string, error) {
	out := map[objKey]string{}
	add := func(kind, name string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", kind, name, err)
		}
		out[objKey{kind, name}] = string(b)
		return nil
	}
	for _, e := range f.Entities {
		if err := add(KindEntity, e.Name, e); err != nil {
			return nil, err
		}
	}
	for _, s := range f.Sources {
		if err := add(KindSource, s.Name, s); err != nil {
			return nil, err
		}
	}
	for _, s := range f.FeatureSets {
		if err := add(KindSet, s.Name, s); err != nil {
			return nil, err
		}
	}
	for _, s := range f.Services {
		if err := add(KindService, s.Name, s); err != nil {
			return nil, err
		}
	}
	for _, s := range f.OnDemandSets {
		if err := add(KindOnDemand, s.Name, s); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// plan diffs f against the newest version of each registered object.
func plan(ctx context.Context, tx *meta.Tx, f *spec.Features) (*Diff, map[objKey]string, error) {
	next, err := objects(f)
	if err != nil {
		return nil, nil, err
	}
	d := &Diff{}
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM feature_applies`).Scan(&d.From); err != nil {
		return nil, nil, fmt.Errorf("read catalog version: %w", err)
	}
	d.To = d.From
	rows, err := tx.Query(ctx, `SELECT o.kind, o.name, o.version, o.definition FROM feature_objects o
		JOIN (SELECT kind, name, MAX(version) AS version FROM feature_objects GROUP BY kind, name) latest
		ON o.kind = latest.kind AND o.name = latest.name AND o.version = latest.version`)
	if err != nil {
		return nil, nil, fmt.Errorf("read registered definitions: %w", err)
	}
	defer rows.Close()
	type registered struct {
		version int
		def     sql.NullString
	}
	prev := map[objKey]registered{}
	for rows.Next() {
		var k objKey
		var r registered
		if err := rows.Scan(&k.kind, &k.name, &r.version, &r.def); err != nil {
			return nil, nil, err
		}
		prev[k] = r
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	for k, def := range next {
		p, ok := prev[k]
		switch {
		case !ok || !p.def.Valid:
			d.Changes = append(d.Changes, Change{Op: Added, Kind: k.kind, Name: k.name, Version: p.version + 1})
		case p.def.String != def:
			d.Changes = append(d.Changes, Change{Op: Changed, Kind: k.kind, Name: k.name, Version: p.version + 1,
				Details: jsonDetails(p.def.String, def)})
		}
	}
	for k, p := range prev {
		if _, ok := next[k]; !ok && p.def.Valid {
			d.Changes = append(d.Changes, Change{Op: Removed, Kind: k.kind, Name: k.name, Version: p.version + 1})
		}
	}
	kindOrder := map[string]int{KindEntity: 0, KindSource: 1, KindSet: 2, KindOnDemand: 3, KindService: 4}
	sort.Slice(d.Changes, func(i, j int) bool {
		a, b := d.Changes[i], d.Changes[j]
		if a.Kind != b.Kind {
			return kindOrder[a.Kind] < kindOrder[b.Kind]
		}
		return a.Name < b.Name
	})
	return d, next, nil
}

// jsonDetails names what differs between two JSON objects: changed top-level fields,
// and for lists of named objects (features, derived, checks) the items added (+),
// changed (~) and removed (-).
func jsonDetails(before, after string) []string {
	var a, b map[string]json.RawMessage
	if json.Unmarshal([]byte(before), &a) != nil || json.Unmarshal([]byte(after), &b) != nil {
		return nil
	}
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if string(a[k]) == string(b[k]) {
			continue
		}
		if items := namedItemDetails(a[k], b[k]); items != "" {
			out = append(out, k+": "+items)
		} else {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func namedItemDetails(before, after json.RawMessage) string {
	named := func(raw json.RawMessage) (map[string]string, []string, bool) {
		var list []map[string]json.RawMessage
		if len(raw) == 0 {
			return map[string]string{}, nil, true
		}
		if json.Unmarshal(raw, &list) != nil {
			return nil, nil, false
		}
		m := map[string]string{}
		var order []string
		for _, item := range list {
			var name string
			if json.Unmarshal(item["name"], &name) != nil || name == "" {
				return nil, nil, false
			}
			b, _ := json.Marshal(item)
			m[name] = string(b)
			order = append(order, name)
		}
		return m, order, true
	}
	a, aOrder, ok1 := named(before)
	b, bOrder, ok2 := named(after)
	if !ok1 || !ok2 {
		return ""
	}
	var parts []string
	for _, n := range bOrder {
		if prev, ok := a[n]; !ok {
			parts = append(parts, "+"+n)
		} else if prev != b[n] {
			parts = append(parts, "~"+n)
		}
	}
	for _, n := range aOrder {
		if _, ok := b[n]; !ok {
			parts = append(parts, "-"+n)
		}
	}
	if len(parts) == 0 {
		return "order"
	}
	return strings.Join(parts, " ")
}

func (d *Diff) summary() string {
	n := map[Op]int{}
	for _, c := range d.Changes {
		n[c.Op]++
	}
	return fmt.Sprintf("%d added, %d changed, %d removed", n[Added], n[Changed], n[Removed])
}

// Summary is a one-line count of the changes.
func (d *Diff) Summary() string { return d.summary() }

// SetVersions returns each feature set's own version as of catalog version
// v (the lineage a training run records: which definition of each set its
// features came from). Removed sets are left out.
func SetVersions(ctx context.Context, db *meta.DB, v int) (map[string]int, error) {
	rows, err := db.Query(ctx, `SELECT name, version, definition FROM feature_objects o
		WHERE kind = ? AND catalog_version <= ? AND version = (SELECT MAX(version) FROM feature_objects i
			WHERE i.kind = o.kind AND i.name = o.name AND i.catalog_version <= ?)`, KindSet, v, v)
	if err != nil {
		return nil, fmt.Errorf("feature set versions: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var name string
		var version int
		var def sql.NullString
		if err := rows.Scan(&name, &version, &def); err != nil {
			return nil, fmt.Errorf("feature set versions: %w", err)
		}
		if def.Valid {
			out[name] = version
		}
	}
	return out, rows.Err()
}
