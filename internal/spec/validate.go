package spec

import (
	"regexp"
	"strings"
)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// TimestampColumn is the name of the event-time column of every stored feature row.
const TimestampColumn = "timestamp"

// Validate checks what can be checked without reading data: required fields, names,
// references between definitions, types, aggregations, windows and checks. SQL
// expressions are checked by the offline engine (see pipeline.Validate), which
// binds them against the sources' schemas. Every problem is returned at once.
func (f *Features) Validate() Problems {
	var ps Problems
	v := &validator{f: f, ps: &ps}
	seen := map[string]Pos{}
	unique := func(kind, name string, p Pos) {
		key := kind + "\x00" + name
		if prev, dup := seen[key]; dup && name != "" {
			ps.Add(p.File, p.Line, "duplicate %s name %q (first defined at %s:%d), expected unique names", kind, name, prev.File, prev.Line)
			return
		}
		seen[key] = p
	}
	for _, e := range f.Entities {
		v.name(e.Pos, "entity", e.Name)
		unique("entity", e.Name, e.Pos)
		if len(e.JoinKeys) == 0 {
			ps.Add(e.File, e.At("join_keys"), "entity %q: no join_keys, expected a list of key column names", e.Name)
		}
		keys := map[string]bool{}
		for _, k := range e.JoinKeys {
			v.ident(e.File, e.At("join_keys"), "entity "+e.Name+" join key", k)
			if keys[k] {
				ps.Add(e.File, e.At("join_keys"), "entity %q: join key %q is listed twice", e.Name, k)
			}
			if k == TimestampColumn {
				ps.Add(e.File, e.At("join_keys"), "entity %q: join key %q is reserved for event time, expected another name", e.Name, k)
			}
			keys[k] = true
		}
	}
	for _, s := range f.Sources {
		v.name(s.Pos, "source", s.Name)
		unique("source", s.Name, s.Pos)
		switch s.Format {
		case FormatCSV, FormatParquet, FormatJSON:
		case "":
			ps.Add(s.File, s.Line, "source %q: no format, expected csv, parquet or json", s.Name)
		default:
			ps.Add(s.File, s.At("format"), "source %q: unknown format %q, expected csv, parquet or json", s.Name, s.Format)
		}
		if s.Path == "" {
			ps.Add(s.File, s.Line, "source %q: no path, expected a file path or glob (data/events*.csv)", s.Name)
		}
		if s.Timestamp == "" {
			ps.Add(s.File, s.Line, "source %q: no timestamp, expected the name of the event-time column", s.Name)
		}
	}
	for _, fs := range f.FeatureSets {
		v.name(fs.Pos, "feature set", fs.Name)
		unique("feature set or service", fs.Name, fs.Pos)
		v.featureSet(fs)
	}
	v.validateSchedules()
	for _, s := range f.OnDemandSets {
		v.name(s.Pos, "on-demand set", s.Name)
		unique("feature set or service", s.Name, s.Pos)
		v.onDemandSet(s)
	}
	for _, s := range f.Services {
		v.name(s.Pos, "feature service", s.Name)
		unique("feature set or service", s.Name, s.Pos)
		if len(s.Features) == 0 {
			ps.Add(s.File, s.At("features"), "feature service %q: no features, expected a list of references (set or set:feature)", s.Name)
		}
		for _, ref := range s.Features {
			if f.Service(ref) != nil && !strings.Contains(ref, ":") {
				ps.Add(s.File, s.At("features"), "feature service %q: %q is a feature service, expected a set or set:feature", s.Name, ref)
				continue
			}
			if _, err := f.resolveRef(ref, false); err != nil {
				add := ps.Add
				if set, _, _ := strings.Cut(strings.TrimSpace(ref), ":"); f.Set(set) == nil && f.OnDemand(set) == nil {
					add = ps.addDangling
				}
				add(s.File, s.At("features"), "feature service %q: %s", s.Name, err.Error())
			}
		}
	}
	return ps
}

type validator struct {
	f  *Features
	ps *Problems
}

func (v *validator) name(p Pos, kind, name string) {
	if name == "" {
		v.ps.Add(p.File, p.Line, "%s: no name, expected name: <identifier>", kind)
		return
	}
	v.ident(p.File, p.At("name"), kind+" name", name)
}

func (v *validator) ident(file string, line int, what, name string) {
	switch {
	case !identRE.MatchString(name):
		v.ps.Add(file, line, "%s %q: expected an identifier (letters, digits and _, not starting with a digit)", what, name)
	case strings.HasPrefix(strings.ToLower(name), ReservedPrefix):
		v.ps.Add(file, line, "%s %q: names starting with %q are reserved for Atrium's own columns, expected another name", what, name, ReservedPrefix)
	}
}

// ReservedPrefix starts the names of the internal columns of Atrium's SQL plans;
// no entity, key, set or feature may use it.
const ReservedPrefix = "atrium_"

func (v *validator) featureSet(fs *FeatureSet) {
	ps := v.ps
	where := func(key string) int { return fs.At(key) }
	var keys []string
	switch e := v.f.Entity(fs.Entity); {
	case fs.Entity == "":
		ps.Add(fs.File, fs.Line, "feature set %q: no entity, expected one of the entities (%s)", fs.Name, v.entityNames())
	case e == nil:
		ps.addDangling(fs.File, where("entity"), "feature set %q: unknown entity %q, expected one of: %s", fs.Name, fs.Entity, v.entityNames())
	default:
		keys = e.JoinKeys
	}
	switch {
	case fs.Source == "":
		ps.Add(fs.File, fs.Line, "feature set %q: no source, expected one of the sources (%s)", fs.Name, v.sourceNames())
	case v.f.Source(fs.Source) == nil:
		ps.addDangling(fs.File, where("source"), "feature set %q: unknown source %q, expected one of: %s", fs.Name, fs.Source, v.sourceNames())
	}
	if fs.TTL < 0 {
		ps.Add(fs.File, where("ttl"), "feature set %q: negative ttl, expected a duration (0 = no limit)", fs.Name)
	}
	if fs.Aggregated() {
		seenW := map[Duration]bool{}
		for _, w := range fs.Windows {
			if seenW[w] {
				ps.Add(fs.File, where("windows"), "feature set %q: window %s is listed twice", fs.Name, w)
			}
			seenW[w] = true
			if fs.Slide > 0 && w%fs.Slide != 0 {
				ps.Add(fs.File, where("windows"), "feature set %q: window %s is not a multiple of the slide %s, expected windows made of whole slide steps", fs.Name, w, fs.Slide)
			}
		}
		if fs.Slide < Duration(60e9) {
			ps.Add(fs.File, where("slide"), "feature set %q: slide %s is too small, expected at least 1m", fs.Name, fs.Slide)
		}
	} else if fs.Slide != 0 {
		ps.Add(fs.File, where("slide"), "feature set %q: slide without windows, expected windows: [...] too (or no slide for a plain set)", fs.Name)
	}
	if len(fs.Features) == 0 {
		ps.Add(fs.File, where("features"), "feature set %q: no features, expected at least one", fs.Name)
	}
	cols := map[string]bool{TimestampColumn: true}
	for _, k := range keys {
		cols[k] = true
	}
	names := map[string]bool{}
	dupFeature := map[string]bool{}
	for _, ft := range fs.Features {
		dupFeature[ft.Name] = names[ft.Name]
		v.feature(fs, ft, names)
	}
	for _, c := range fs.Columns() {
		if c.Derived || dupFeature[c.Feature] {
			continue // a duplicate feature is reported once, above
		}
		if cols[c.Name] {
			ps.Add(fs.File, fs.Line, "feature set %q: column %q collides with a join key, the timestamp or another column, expected unique column names", fs.Name, c.Name)
		}
		cols[c.Name] = true
	}
	for _, d := range fs.Derived {
		v.name(d.Pos, "derived feature", d.Name)
		if cols[d.Name] {
			ps.Add(d.File, d.At("name"), "feature set %q: derived feature %q collides with a join key, the timestamp or another column, expected a new name", fs.Name, d.Name)
		}
		cols[d.Name] = true
		v.typ(fs, d, "derived feature")
		if d.Expr == "" {
			ps.Add(d.File, d.Line, "feature set %q: derived feature %q has no expr, expected a SQL expression over the set's columns", fs.Name, d.Name)
		}
		v.columnChecks(fs, d, []Column{{Name: d.Name, Type: d.Type}})
	}
	for _, c := range fs.Checks {
		switch c.Kind {
		case RowCount, Freshness, Unique:
		default:
			ps.Add(c.File, c.Line, "feature set %q: check %s applies to a feature, expected it under the feature's checks (set-level checks: row_count, freshness, unique)", fs.Name, c.Kind)
		}
	}
}

func (v *validator) feature(fs *FeatureSet, ft *Feature, names map[string]bool) {
	ps := v.ps
	v.name(ft.Pos, "feature", ft.Name)
	if names[ft.Name] {
		ps.Add(ft.File, ft.At("name"), "feature set %q: feature %q is defined twice, expected unique names", fs.Name, ft.Name)
	}
	names[ft.Name] = true
	v.typ(fs, ft, "feature")
	if ft.Expr == "" {
		ps.Add(ft.File, ft.Line, "feature set %q: feature %q has no expr, expected a SQL expression over the source's columns", fs.Name, ft.Name)
	}
	switch {
	case fs.Aggregated() && len(ft.Aggs) == 0:
		ps.Add(ft.File, ft.Line, "feature set %q: feature %q has no aggs, expected aggs: [...] (one of %s) since the set has windows", fs.Name, ft.Name, aggList())
	case !fs.Aggregated() && len(ft.Aggs) > 0:
		ps.Add(ft.File, ft.At("aggs"), "feature set %q: feature %q has aggs but the set has no windows, expected windows: [...] on the set", fs.Name, ft.Name)
	}
	seen := map[Agg]bool{}
	for _, a := range ft.Aggs {
		switch {
		case !a.Valid():
			ps.Add(ft.File, ft.At("aggs"), "feature %q: unknown aggregation %q, expected one of %s", ft.Name, a, aggList())
		case seen[a]:
			ps.Add(ft.File, ft.At("aggs"), "feature %q: aggregation %s is listed twice", ft.Name, a)
		case a.NeedsNumeric() && ft.Type.Valid() && !ft.Type.Numeric():
			ps.Add(ft.File, ft.At("aggs"), "feature %q: type mismatch: %s needs an int64 or float64 feature, got %s", ft.Name, a, ft.Type)
		}
		seen[a] = true
	}
	var cols []Column
	for _, c := range fs.Columns() {
		if c.Feature == ft.Name || (!fs.Aggregated() && c.Name == ft.Name) {
			cols = append(cols, c)
		}
	}
	v.columnChecks(fs, ft, cols)
}

func (v *validator) typ(fs *FeatureSet, ft *Feature, what string) {
	switch {
	case ft.Type == "":
		v.ps.Add(ft.File, ft.Line, "feature set %q: %s %q has no type, expected one of %s", fs.Name, what, ft.Name, typeList())
	case !ft.Type.Valid():
		v.ps.Add(ft.File, ft.At("type"), "feature set %q: %s %q: unknown type %q, expected one of %s", fs.Name, what, ft.Name, ft.Type, typeList())
	}
}

// columnChecks validates the checks of a feature against its output columns.
func (v *validator) columnChecks(fs *FeatureSet, ft *Feature, cols []Column) {
	for _, c := range ft.Checks {
		switch c.Kind {
		case NotNull, Unique:
		case Between:
			for _, col := range cols {
				if col.Type.Valid() && !col.Type.Numeric() {
					v.ps.Add(c.File, c.Line, "feature %q: type mismatch: between needs numbers, column %s is %s", ft.Name, col.Name, col.Type)
				}
			}
		case InSet:
			for _, col := range cols {
				if col.Type == Timestamp {
					v.ps.Add(c.File, c.Line, "feature %q: in_set does not apply to timestamp column %s", ft.Name, col.Name)
				}
			}
		default:
			v.ps.Add(c.File, c.Line, "feature %q: check %s applies to the whole set, expected it under the feature set's checks", ft.Name, c.Kind)
		}
	}
}

func (v *validator) entityNames() string {
	return orNone(namesOf(v.f.Entities, func(e *Entity) string { return e.Name }))
}

func (v *validator) sourceNames() string {
	return orNone(namesOf(v.f.Sources, func(s *Source) string { return s.Name }))
}

func namesOf[T any](list []*T, name func(*T) string) []string {
	s := make([]string, len(list))
	for i, v := range list {
		s[i] = name(v)
	}
	return s
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none defined)"
	}
	return strings.Join(s, ", ")
}
